"""The frozen run configurations, each field declared once; flags, checks, the resume rule and the
hyperparameters are derived from those declarations.

A TrainConfig field is an `option(...)`: its default, help text, flag group, check, choices, whether a
resumed run must keep it (RESUME_FIXED) and whether it is a hyperparameter (HPARAMS). Adding a field
adds its flag, its check, its resume rule and its HParams entry. Only entry points call
`define_*_flags` and `*_config_from_flags`; everything below them takes a config.
"""
import dataclasses
import datetime
import os
import re
import types
from collections.abc import Callable

from absl import flags

from digits.data import datasets
from digits.errors import DigitsError

# The names of the implementations in digits.training.model.ARCHITECTURES,
# digits.training.optimizer.OPTIMIZERS / SCHEDULES and digits.training.distribute.STRATEGIES. They are written
# here because those modules load TensorFlow, and flags are checked before it loads (a typo costs no
# TensorFlow start-up); tests/test_config.py checks that each list is exactly its registry's keys, and the
# registries dispatch by name, so no name lacks an implementation.
ARCHITECTURES = ('cnn', 'simple')
OPTIMIZERS = ('sgd', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine')
STRATEGIES = ('default', 'one_device', 'mirrored', 'multi_worker', 'tpu')
PRECISIONS = ('float32', 'mixed_float16', 'mixed_bfloat16')  # Keras dtype policies
TPU_NEEDED = '--strategy=tpu needs --tpu=<TPU name, grpc://host:port, or local on a TPU VM>'
GROUPS = ('data', 'model', 'optimization', 'run', 'intervals', 'distribution', 'performance')
DATA_DIR_HELP = ('Folder with the four IDX files (gzip-compressed or not) or a Keras-style <dataset>.npz. '
                 'Unset: mnist_10k\'s files ship with digits; the others are downloaded from their source '
                 '(checksum-verified) into ~/.keras/datasets.')
DATASET_HELP = ('mnist_10k (bundled: 10,000 MNIST training images and the official test set), mnist (the '
                'full 60,000, downloaded) or fashion_mnist (downloaded).')


# ------------------------------------------------------------------------------------------------ checks
# Each returns what is wrong with a value (the end of "--name (value) ..."), or None.

def positive(value) -> str | None:
    return None if value > 0 else 'must be positive'  # NaN is not positive either


def non_negative(value) -> str | None:
    return None if value >= 0 else 'must not be negative'


def fraction(value) -> str | None:
    return None if 0 <= value < 1 else 'must be in [0, 1)'


def positive_fraction(value) -> str | None:
    return None if 0 < value <= 1 else 'must be in (0, 1]'


def seed_range(value) -> str | None:
    return None if 0 <= value < 2**31 else 'must be in [0, 2**31)'


def plain_name(value) -> str | None:
    return 'must be a plain name, not a path' if os.sep in value or value in ('.', '..') else None


def option(default, help: str, *, group: str, check: Callable | None = None, choices: tuple | None = None,
           fixed_on_resume: bool = False, hparam: bool = False, flag_default=dataclasses.MISSING):
    """A config field with everything derived from it; flag_default: the flag's, if not the field's."""
    assert group in GROUPS, group
    return dataclasses.field(default=default, metadata=dict(
        help=help, group=group, check=check, choices=choices, fixed_on_resume=fixed_on_resume, hparam=hparam,
        flag_default=default if flag_default is dataclasses.MISSING else flag_default))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on; stored as config.json in the run directory."""
    dataset: str = option(datasets.DEFAULT, DATASET_HELP, group='data', choices=tuple(datasets.DATASETS),
                          fixed_on_resume=True, hparam=True)
    data_dir: str | None = option(None, DATA_DIR_HELP, group='data')
    validation_split: float = option(
        0.0, 'Fraction of the training set held out for tuning; 0 evaluates on the test set.', group='data',
        check=fraction, fixed_on_resume=True)
    augment: bool = option(True, 'Random affine augmentation (rotate, scale, shift).', group='data',
                           fixed_on_resume=True, hparam=True)
    augment_strength: float = option(1.0, 'Scales the ranges of --augment (1: up to 10 degrees, 10% scale and '
                                     '2 px shift; 0.5: half of each).', group='data', check=positive,
                                     fixed_on_resume=True, hparam=True)
    blur: float = option(0.5, 'Fraction of training images also blurred (Gaussian, random sigma up to 1.5 px), '
                         'so that the model reads out-of-focus and low-resolution scans.', group='data',
                         check=fraction, fixed_on_resume=True, hparam=True)
    flip: float = option(0.0, 'Fraction of training images mirrored left-right: for classes that look the same '
                         'mirrored (Fashion-MNIST\'s clothes), not digits.', group='data', check=fraction,
                         fixed_on_resume=True, hparam=True)
    augment_until: float = option(1.0, 'Fraction of the training steps whose images are augmented (--augment, '
                                  '--blur, --flip); the rest train on the images as they are (1: all).',
                                  group='data', check=positive_fraction, fixed_on_resume=True, hparam=True)
    negatives: float | None = option(
        None, 'Marks that are not digits (letters and signs of fonts, scribbles, touching pairs of digits) added '
        'to the training set, as a fraction of it, with the uniform distribution as their target: the model '
        'learns to refuse them. Unset: the dataset\'s own (0.1 for MNIST, 0 for Fashion-MNIST).', group='data',
        check=lambda value: None if value is None else fraction(value), fixed_on_resume=True, hparam=True)
    arch: str = option('cnn', 'Architecture: cnn (default, stronger) or simple (the keras.io "Simple MNIST '
                       'convnet", for comparison with model.fit).', group='model', choices=ARCHITECTURES,
                       fixed_on_resume=True, hparam=True)
    width: int = option(16, 'cnn: channels of the first convolution block; each further block doubles them.',
                        group='model', check=positive, fixed_on_resume=True, hparam=True)
    blocks: int = option(3, 'cnn: convolution blocks, each ending in a 2x2 max-pool.', group='model',
                         check=positive, fixed_on_resume=True, hparam=True)
    convs_per_block: int = option(2, 'cnn: 3x3 convolutions (each with batch norm and ReLU) per block.',
                                  group='model', check=positive, fixed_on_resume=True, hparam=True)
    first_block_convs: int = option(1, 'cnn: 3x3 convolutions in the first block, which works at full '
                                    'resolution and so costs the most (0: --convs_per_block, as the others).',
                                    group='model', check=non_negative, fixed_on_resume=True, hparam=True)
    tta: bool = option(True, 'cnn: test-time augmentation: evaluation and the export read each image and its '
                       'four 1-pixel shifts and average the probabilities (5x the inference cost).', group='model',
                       hparam=True)
    ensemble: int = option(1, 'Train this many models side by side, each on its own batches (data order and '
                           'augmentation) and its own loss; evaluation and the export average their '
                           'probabilities (N times the cost).',
                           group='model', check=positive, fixed_on_resume=True, hparam=True)
    l2: float = option(0.0, 'L2 penalty on conv/dense kernels, added to the loss.', group='model',
                       check=non_negative, fixed_on_resume=True, hparam=True)
    batch_size: int = option(128, 'Global batch size, shared by all replicas.', group='optimization',
                             check=positive, fixed_on_resume=True, hparam=True)
    epochs: int = option(15, 'Passes over the training set (ignored if --train_steps > 0).',
                         group='optimization', check=positive, hparam=True)
    train_steps: int = option(0, 'Total optimizer steps; overrides --epochs if > 0.', group='optimization',
                              check=non_negative, hparam=True)
    optimizer: str = option('adam', 'Optimizer.', group='optimization', choices=OPTIMIZERS,
                            fixed_on_resume=True, hparam=True)
    learning_rate: float = option(0.006, 'Peak learning rate.', group='optimization', check=positive,
                                  hparam=True)
    lr_schedule: str = option('cosine', 'constant, or cosine decay to 0 after --warmup_steps of linear '
                              'warm-up.', group='optimization', choices=SCHEDULES, hparam=True)
    warmup_steps: int = option(100, 'Linear warm-up steps (cosine schedule).', group='optimization',
                               check=non_negative, hparam=True)
    momentum: float = option(0.9, 'Momentum of the sgd optimizer.', group='optimization', check=non_negative)
    weight_decay: float = option(0.0, 'Decoupled weight decay of adamw.', group='optimization',
                                 check=non_negative, hparam=True)
    label_smoothing: float = option(0.0, 'Train against targets (1 - s) * one_hot + s / classes (0: off); '
                                    'evaluation always uses the plain loss.', group='optimization',
                                    check=fraction, hparam=True)
    ema_decay: float = option(0.0, 'Evaluate and export an exponential moving average of the weights with '
                              'this decay per step (e.g. 0.999); 0: off.', group='optimization', check=fraction,
                              fixed_on_resume=True, hparam=True)
    seed: int = option(0, 'Seed for weights, data order and augmentation.', group='run', check=seed_range,
                       fixed_on_resume=True, hparam=True)
    logdir: str = option('logs', 'Root of run directories (tensorboard --logdir).', group='run')
    run_name: str = option('', 'Run directory name under --logdir (default: a timestamp).', group='run',
                           check=plain_name, flag_default=None)
    export_dir: str = option('', 'SavedModel output (default: models/<run_name>).', group='run',
                             flag_default=None)
    steps_per_loop: int = option(50, 'Training steps per tf.function call.', group='intervals', check=positive)
    log_every_steps: int = option(100, 'Progress line and train summaries interval.', group='intervals',
                                  check=positive)
    eval_every_steps: int = option(1000, 'Evaluation interval (and at the end).', group='intervals',
                                   check=positive)
    checkpoint_every_steps: int = option(500, 'Checkpoint interval (and at the end).', group='intervals',
                                         check=positive)
    eval_batch_size: int = option(1000, 'Global batch size of evaluation.', group='intervals', check=positive)
    strategy: str = option('default', 'tf.distribute strategy.', group='distribution', choices=STRATEGIES,
                           hparam=True)
    cpu_replicas: int = option(0, 'Split the host CPU into this many logical devices (0: no).',
                               group='distribution', check=non_negative)
    tpu: str | None = option(None, 'With --strategy=tpu: TPU name, grpc://host:port, or local (on a TPU VM).',
                             group='distribution')
    precision: str = option('float32', 'Compute dtype policy; mixed_float16 adds loss scaling.',
                            group='performance', choices=PRECISIONS, fixed_on_resume=True, hparam=True)
    deterministic: bool = option(False, 'Bit-for-bit reproducible on the same machine (TensorFlow op '
                                 'determinism; slower). Resuming then ends with the same weights.',
                                 group='performance')
    jit_compile: bool = option(False, 'XLA-compile the forward and backward pass (measured slower on CPU: see '
                               'scripts/benchmark.py; try it on GPU / TPU).', group='performance')
    profile_steps: int = option(0, 'Record a TensorFlow profiler trace of this many steps, after the first '
                                'tf.function call, into <run>/train (TensorBoard\'s Profile tab). 0: off.',
                                group='performance', check=non_negative)

    def __post_init__(self):
        if self.negatives is None and self.dataset in datasets.DATASETS:  # the dataset's own, stored resolved
            object.__setattr__(self, 'negatives', datasets.DATASETS[self.dataset].negatives)

    @property
    def run_dir(self) -> str:
        return os.path.join(self.logdir, self.run_name)

    def steps_per_epoch(self, num_train_examples: int) -> int:
        """Optimizer steps in one pass over a training set of this many examples (partial batch dropped)."""
        return num_train_examples // self.batch_size

    def total_steps(self, num_train_examples: int) -> int:
        """The run's length in optimizer steps, for a training set of this many examples."""
        return self.train_steps or self.epochs * self.steps_per_epoch(num_train_examples)


def resume_fixed(config_class=TrainConfig) -> tuple[str, ...]:
    """Fields that decide what a checkpoint means or which examples a step sees: a run cannot resume with
    other values. The rest (intervals, logging, training length, learning rate) may change on resume."""
    return tuple(f.name for f in dataclasses.fields(config_class) if f.metadata['fixed_on_resume'])


def hyperparameters(config_class=TrainConfig) -> tuple[str, ...]:
    """Fields shown in TensorBoard's HParams view, to compare runs."""
    return tuple(f.name for f in dataclasses.fields(config_class) if f.metadata['hparam'])


TRAIN_FIELDS = dataclasses.fields(TrainConfig)
RESUME_FIXED, HPARAMS = resume_fixed(), hyperparameters()


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `python -m digits.evaluate` evaluates, and on which data."""
    model: str | None = None  # An exported SavedModel directory.
    run_dir: str | None = None  # A training run directory (its latest checkpoint).
    dataset: str | None = None  # None: the run's dataset (run_dir) or datasets.DEFAULT.
    data_dir: str | None = None
    batch_size: int = 1000
    output_json: str | None = None
    report_dir: str | None = None  # Also write PNG figures and a Markdown report here.


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """What `python -m digits.predict` classifies, with which export, and where it writes."""
    model: str
    files: tuple[str, ...]
    output_json: str | None = None
    save_preprocessed: str | None = None


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What `python -m digits.serve` serves, where, and how much it accepts."""
    model: str  # An export, or a TF Serving base path (<base>/<version>/saved_model.pb: the highest served).
    host: str = '127.0.0.1'  # Loopback: only this machine can reach the page unless asked otherwise.
    port: int = 8000
    grpc_port: int | None = None  # TF Serving's gRPC API on this port (TF Serving's own: 8500); None: off.
    max_body_mb: float = 4.0  # Larger request bodies get 413; larger gRPC messages RESOURCE_EXHAUSTED.
    threads: int = 16  # Workers of the HTTP server (and of the gRPC server): a bounded pool.
    max_connections: int = 1000  # Connections open at once; more wait to be accepted.
    enable_batching: bool = True  # Join concurrent requests into one model call (TF Serving's flag).
    max_batch_size: int = 32  # Images in one batched call.
    batch_timeout_micros: int = 0  # How long a batch waits for more requests once it has one.
    version_labels: tuple[str, ...] = ('stable',)  # TF Serving version labels naming the version served.
    cors_origin: str | None = None  # Allow pages of this origin ('*': any) to call the APIs; None: none.
    drain_seconds: float = 10.0  # On SIGTERM, requests in flight get this long to finish.


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """What `python -m digits.convert` converts, to what, and the data it checks (and calibrates) on."""
    model: str  # An exported SavedModel directory.
    output: str  # The .tflite file to write.
    quantize: str = 'none'  # none (float32), float16 or int8 (full-integer, calibrated on training images).
    dataset: str | None = None  # None: datasets.DEFAULT (for the check; int8 needs it named, or --data_dir).
    data_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What `python -m digits.sweep` runs: points of a grid or a random search, each a digits.train run."""
    sweep_dir: str  # one run directory per point
    grid: tuple[str, ...] = ()  # FLAG=V1,V2,...
    ranges: tuple[str, ...] = ()  # FLAG=LOW:HIGH[:log], with random
    random: int = 0  # draw this many points (0: every combination of the grid)
    search_seed: int = 0
    parallel: int = 1  # runs at a time
    fit_epoch_seconds: float = 0.0  # 0: measure the unit before (and after) the runs
    best_flagfile: str | None = None
    train_args: tuple[str, ...] = ()  # digits.train flags given to every point
    command: str = ''  # the command line, for the best flagfile's header


# ------------------------------------------------------------------------------------------------- flags

def define_train_flags(fv: flags.FlagValues = flags.FLAGS, config_class=TrainConfig):
    """Flags of `python -m digits.train`, one per TrainConfig field; defaults are the default recipe."""
    for field in dataclasses.fields(config_class):
        define_flag(field, fv)


def define_flag(field: dataclasses.Field, fv: flags.FlagValues):
    """The flag of one config field, of the field's type, registered under its group (for --help)."""
    meta, kind = field.metadata, field.type
    if isinstance(kind, types.UnionType):  # `str | None`: the flag is a string that may stay unset
        kind = next(t for t in kind.__args__ if t is not type(None))
    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
              str: flags.DEFINE_string}[kind]
    if meta['choices']:
        flags.DEFINE_enum(field.name, meta['flag_default'], meta['choices'], meta['help'], flag_values=fv,
                          module_name=meta['group'])
    else:
        define(field.name, meta['flag_default'], meta['help'], flag_values=fv, module_name=meta['group'])


def train_flags_help(fv: flags.FlagValues = flags.FLAGS, config_class=TrainConfig) -> str:
    """digits.train --help: every flag with its help and default, in its group (as docs/commands.md)."""
    lines = []
    for group in GROUPS:
        lines.append(f'\n{group}:')
        for field in dataclasses.fields(config_class):
            if field.metadata['group'] == group:
                lines.append(render_flag(fv[field.name]))
    return '\n'.join(lines)


def sweep_flags_help(fv: flags.FlagValues = flags.FLAGS) -> str:
    """digits.sweep --help: its own flags; every digits.train flag (digits.train --help) is accepted too."""
    return (module_flags_help(fv) + '\n\nand every flag of digits.train (python -m digits.train --help), '
            'given to each run.')


def module_flags_help(fv: flags.FlagValues = flags.FLAGS, modules: tuple[str, ...] = ()) -> str:
    """--help of digits.evaluate, predict and serve: the flags this module defined for them (and those of
    `modules`, e.g. a script's own)."""
    found = [flag for module in (__name__, *modules) for flag in fv.get_flags_for_module(module)]
    return '\n' + '\n'.join(render_flag(flag) for flag in found)


def render_flag(flag) -> str:
    """'  --name: help (default: value)', wrapped as absl wraps its own help."""
    text = f'--{flag.name}: {flag.help}'
    if flag.default not in (None, '', []):
        text += f'\n(default: {flag.default_as_str})'
    return flags.text_wrap(text, indent='    ', firstline_indent='  ')


def define_data_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of an entry point that reads a dataset other than by training (evaluate)."""
    flags.DEFINE_enum('dataset', None, tuple(datasets.DATASETS), f'{DATASET_HELP} Default: the run\'s '
                      f'(--run_dir), else {datasets.DEFAULT}.', flag_values=fv)
    flags.DEFINE_string('data_dir', None, DATA_DIR_HELP, flag_values=fv)


def define_eval_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of `python -m digits.evaluate`."""
    define_data_flags(fv)
    flags.DEFINE_string('model', None, 'Exported SavedModel directory to evaluate.', flag_values=fv)
    flags.DEFINE_string('run_dir', None, 'Training run directory; evaluates its latest checkpoint.',
                        flag_values=fv)
    flags.DEFINE_integer('batch_size', EvalConfig.batch_size, 'Evaluation batch size.', flag_values=fv)
    flags.DEFINE_string('output_json', None, 'Also write {accuracy, loss, num_examples} here.',
                        flag_values=fv)
    flags.DEFINE_string('report_dir', None, 'Also write a report here: confusion matrix, misclassified '
                        'digits, per-class precision / recall, reliability diagram (PNG) and report.md.',
                        flag_values=fv)


def define_predict_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of `python -m digits.predict`; the image files are the positional arguments."""
    flags.DEFINE_string('model', None, 'Exported SavedModel directory (models/<run_name>).', flag_values=fv)
    flags.DEFINE_string('output_json', None, 'Also write the predictions here, as a JSON list.',
                        flag_values=fv)
    flags.DEFINE_string('save_preprocessed', None, 'Write the 28x28 image classified for each file into '
                        'this folder (as <name>.png), to see what the model saw.', flag_values=fv)


def define_serve_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of `python -m digits.serve`."""
    d = ServeConfig
    flags.DEFINE_string('model', None, 'Exported SavedModel directory (models/<run_name>), or a TF Serving base '
                        'path (<base>/<version>/saved_model.pb; the highest version is served).', flag_values=fv)
    flags.DEFINE_string('host', d.host, 'Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every '
                        'interface).', flag_values=fv)
    flags.DEFINE_integer('port', d.port, 'HTTP port: the page, /api/predict and TF Serving\'s REST API (0: any '
                         'free port).', flag_values=fv)
    flags.DEFINE_integer('grpc_port', d.grpc_port, 'Also serve TF Serving\'s gRPC API on this port (TF Serving '
                         'uses 8500; 0: any free port; unset: no gRPC).', flag_values=fv)
    flags.DEFINE_float('max_body_mb', d.max_body_mb, 'Largest request body accepted, in MB; larger ones get 413 '
                       '(gRPC: RESOURCE_EXHAUSTED).', flag_values=fv)
    flags.DEFINE_integer('threads', d.threads, 'Workers answering requests (HTTP, and gRPC alike).', flag_values=fv)
    flags.DEFINE_integer('max_connections', d.max_connections, 'Connections open at once; more wait to be '
                         'accepted.', flag_values=fv)
    flags.DEFINE_bool('enable_batching', d.enable_batching, 'Join concurrent requests into one model call, as TF '
                      'Serving\'s --enable_batching does.', flag_values=fv)
    flags.DEFINE_integer('max_batch_size', d.max_batch_size, 'Images in one batched model call.', flag_values=fv)
    flags.DEFINE_integer('batch_timeout_micros', d.batch_timeout_micros, 'How long a batch waits for more '
                         'requests once it has one (0: it takes what is queued while the model was busy).',
                         flag_values=fv)
    flags.DEFINE_list('version_labels', list(d.version_labels), 'TF Serving version labels naming the version '
                      'served (/v1/models/digits/labels/<label>).', flag_values=fv)
    flags.DEFINE_string('cors_origin', d.cors_origin, 'Let pages of this origin (e.g. https://example.org; *: '
                        'any) call the APIs from a browser; unset: only the page served here.', flag_values=fv)
    flags.DEFINE_float('drain_seconds', d.drain_seconds, 'On SIGTERM, requests in flight get this long to '
                       'finish.', flag_values=fv)


def define_convert_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of `python -m digits.convert`."""
    flags.DEFINE_string('model', None, 'Exported SavedModel directory (models/<run_name>).', flag_values=fv)
    flags.DEFINE_string('output', None, 'The LiteRT file to write (FILE.tflite).', flag_values=fv)
    flags.DEFINE_enum('quantize', ConvertConfig.quantize, ('none', 'float16', 'int8'), 'none: float32; float16: '
                      'half-size weights; int8: full-integer, calibrated on training images of --data_dir.',
                      flag_values=fv)
    define_data_flags(fv)


def define_sweep_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of `python -m digits.sweep`: its own, and every digits.train flag, given to each point."""
    flags.DEFINE_string('sweep_dir', None, 'Folder of the sweep: one run directory per point.', flag_values=fv)
    flags.DEFINE_multi_string('grid', [], 'FLAG=V1,V2,...: values of one digits.train flag; the points '
                              'are every combination', flag_values=fv)
    flags.DEFINE_multi_string('range', [], 'FLAG=LOW:HIGH[:log]: with --random, a number drawn uniformly '
                              '(log: log-uniformly) in [LOW, HIGH]', flag_values=fv)
    flags.DEFINE_integer('random', 0, 'Draw N points at random from the --grid values and --range intervals '
                         '(0: the whole grid).', flag_values=fv)
    flags.DEFINE_integer('search_seed', 0, 'Seed of the random draws.', flag_values=fv)
    flags.DEFINE_integer('parallel', 1, 'Runs at a time (each a process).', flag_values=fv)
    flags.DEFINE_float('fit_epoch_seconds', 0.0, 'The fit-epoch, if already measured on this machine (0: '
                       'measure it before and after the runs).', flag_values=fv)
    flags.DEFINE_string('best_flagfile', None, 'Write the best point as a flagfile here.', flag_values=fv)
    define_train_flags(fv)


def sweep_config_from_flags(values: flags.FlagValues, command: str = '') -> SweepConfig:
    """Builds and validates the SweepConfig; the digits.train flags given explicitly go to every point."""
    if not values['sweep_dir'].value:
        raise DigitsError('--sweep_dir is required: the folder of the sweep, e.g. --sweep_dir=logs/sweep-lr')
    train_args = tuple(values[f.name].serialize() for f in TRAIN_FIELDS if values[f.name].present)
    config = SweepConfig(values['sweep_dir'].value, tuple(values['grid'].value), tuple(values['range'].value),
                         values['random'].value, values['search_seed'].value, values['parallel'].value,
                         values['fit_epoch_seconds'].value, values['best_flagfile'].value, train_args, command)
    if config.random < 0:
        raise DigitsError(f'--random ({config.random}) must not be negative')
    if config.parallel < 1:
        raise DigitsError(f'--parallel ({config.parallel}) must be positive')
    if config.ranges and not config.random:
        raise DigitsError('--range needs --random=N (a grid has no intervals)')
    if not config.grid and not config.ranges:
        raise DigitsError('nothing to sweep: give at least one --grid=FLAG=V1,V2,... (or --random=N --range=...)')
    return config


# --------------------------------------------------------------------------------------- configurations

def serve_config_from_flags(values: flags.FlagValues) -> ServeConfig:
    """Builds and validates the ServeConfig from parsed flags."""
    if not values['model'].value:
        raise DigitsError('--model is required: the exported model to serve, e.g. --model=models/<run_name>')
    config = ServeConfig(**{f.name: values[f.name].value for f in dataclasses.fields(ServeConfig)})
    config = dataclasses.replace(config, version_labels=tuple(config.version_labels))
    problem = serve_config_problem(config)
    if problem:
        raise DigitsError(problem)
    return config


def serve_config_problem(config: ServeConfig) -> str | None:
    """What is wrong with a ServeConfig, naming the flag and its value; None if nothing."""
    for name in ('port', 'grpc_port'):
        value = getattr(config, name)
        if value is not None and not 0 <= value < 65536:
            return f'--{name} ({value}) must be in [0, 65536)'
    if config.grpc_port and config.grpc_port == config.port:
        return f'--grpc_port ({config.grpc_port}) must differ from --port'
    checks = [('max_body_mb', positive), ('threads', positive), ('max_connections', positive),
              ('max_batch_size', positive), ('batch_timeout_micros', non_negative), ('drain_seconds', non_negative)]
    for name, check in checks:
        problem = check(getattr(config, name))
        if problem:
            return f'--{name} ({getattr(config, name)}) {problem}'
    bad = [label for label in config.version_labels if not re.fullmatch(r'[^/:]+', label) or label.isdigit()]
    if bad:
        return f'--version_labels ({",".join(config.version_labels)}) has {bad[0]!r}: a label is a name without / or :'
    return None


def train_config_from_flags(values: flags.FlagValues, now: datetime.datetime | None = None,
                            config_class=TrainConfig) -> TrainConfig:
    """Builds and validates the TrainConfig from parsed flags."""
    kwargs = {f.name: values[f.name].value for f in dataclasses.fields(config_class)}
    kwargs['run_name'] = kwargs['run_name'] or (now or datetime.datetime.now()).strftime('%Y%m%d-%H%M%S')
    kwargs['export_dir'] = kwargs['export_dir'] or os.path.join('models', kwargs['run_name'])
    config = config_class(**kwargs)
    validate_train_config(config)
    return config


def validate_train_config(config: TrainConfig):
    """Raises DigitsError naming the first bad field and its value."""
    for field in dataclasses.fields(config):
        value, check, choices = getattr(config, field.name), field.metadata['check'], field.metadata['choices']
        problem = check(value) if check else None
        if choices and value not in choices:
            problem = f'must be one of {", ".join(choices)}'
        if problem:
            raise DigitsError(f'--{field.name} ({value}) {problem}')
    if config.strategy == 'tpu' and not config.tpu:
        raise DigitsError(TPU_NEEDED)
    if config.negatives and datasets.DATASETS[config.dataset].class_names != datasets.DIGIT_CLASSES:
        raise DigitsError(f'--negatives ({config.negatives}) teaches a digit model to refuse marks that are not '
                          f'digits; {config.dataset}\'s classes are not digits: use --negatives=0')


def check_resumable(config: TrainConfig, stored: dict, stored_path: str):
    """Raises DigitsError naming the first resume_fixed flag whose value differs from the stored run's."""
    stored = upgrade_stored(stored)
    for name in resume_fixed(type(config)):
        before = stored.get(name, getattr(type(config), name))
        if before != getattr(config, name):
            raise DigitsError(f'--{name} ({getattr(config, name)}) differs from the run being resumed '
                              f'({before}, in {stored_path}); pass --{name}={before} to resume it, or '
                              f'use a new --run_name')


def upgrade_stored(stored: dict) -> dict:
    """A config.json of an older digits in today's terms (--model named the architecture then; no run had
    --negatives)."""
    if 'model' in stored and 'arch' not in stored:
        stored = {('arch' if key == 'model' else key): value for key, value in stored.items()}
    if 'negatives' not in stored:  # before digits.training.negatives, no run trained on them
        stored = {**stored, 'negatives': 0.0}
    return stored


def train_config_from_stored(stored: dict) -> TrainConfig:
    """The TrainConfig of a run's config.json (fields it lacks, from an older digits, keep their defaults)."""
    stored = upgrade_stored(stored)
    return TrainConfig(**{f.name: stored[f.name] for f in TRAIN_FIELDS if f.name in stored})


def predict_config_from_flags(values: flags.FlagValues, files: list[str]) -> PredictConfig:
    """Builds and validates the PredictConfig from parsed flags and the file arguments."""
    if not values['model'].value:
        raise DigitsError('--model is required: the exported model to use, e.g. --model=models/<run_name>')
    if not files:
        raise DigitsError('no image files given: python -m digits.predict --model=DIR FILE...')
    return PredictConfig(values['model'].value, tuple(files), values['output_json'].value,
                         values['save_preprocessed'].value)


def convert_config_from_flags(values: flags.FlagValues) -> ConvertConfig:
    """Builds and validates the ConvertConfig from parsed flags."""
    config = ConvertConfig(**{f.name: values[f.name].value for f in dataclasses.fields(ConvertConfig)})
    if not config.model:
        raise DigitsError('--model is required: the export to convert, e.g. --model=models/<run_name>')
    if not config.output or not config.output.endswith('.tflite'):
        raise DigitsError(f'--output ({config.output}) must name a .tflite file, e.g. --output=digits.tflite')
    if config.quantize == 'int8' and not (config.data_dir or config.dataset):
        raise DigitsError('--quantize=int8 calibrates on training images: give them with --data_dir=DIR (or '
                          f'--dataset={datasets.DEFAULT} for the bundled ones)')
    return config


def eval_config_from_flags(values: flags.FlagValues) -> EvalConfig:
    """Builds and validates the EvalConfig from parsed flags."""
    config = EvalConfig(**{f.name: values[f.name].value for f in dataclasses.fields(EvalConfig)})
    if (config.model is None) == (config.run_dir is None):
        raise DigitsError('pass exactly one of --model=<export dir> or --run_dir=<logdir>/<run_name>')
    problem = positive(config.batch_size)
    if problem:
        raise DigitsError(f'--batch_size ({config.batch_size}) {problem}')
    if config.report_dir and config.model and config.model.endswith('.tflite'):
        raise DigitsError(f'--report_dir needs an export (its figures use TensorFlow); --model ({config.model}) is '
                          f'a LiteRT file')
    return config

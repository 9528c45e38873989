"""Every command's frozen configuration, each field declared once; flags, checks, --help, the resume rule and
the hyperparameters are derived from those declarations.

A field is an `option(...)`: its default, help text, check, choices, the line when a required one is
missing, and for digits.train its flag group, whether a resumed run must keep it (RESUME_FIXED) and whether
it is a hyperparameter (HPARAMS). Adding a field adds its flag, its check and its entry in docs/commands.md
(and for training its resume rule and its HParams entry); what spans fields is the config's problem().
Only entry points call `define_flags` / `define_*_flags` and `from_flags` / `*_config_from_flags`;
everything below them takes a config.
"""
import dataclasses
import datetime
import os
import re
import types
import typing
from collections.abc import Callable

from absl import flags

from digits.data import datasets
from digits.errors import DigitsError

# The names of the implementations in digits.training.model.ARCHITECTURES,
# digits.training.optimizer.OPTIMIZERS / SCHEDULES and digits.training.distribute.STRATEGIES. They are written
# here because those modules load TensorFlow, and flags are checked before it loads (a typo costs no
# TensorFlow start-up); tests/test_config.py checks that each list is exactly its registry's keys, and the
# registries dispatch by name, so no name lacks an implementation.
ARCHITECTURES = ('cnn', 'simple', 'line')
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


def option(default, help: str, *, group: str | None = None, check: Callable | None = None,
           choices: tuple | None = None, required: str | None = None, fixed_on_resume: bool = False,
           hparam: bool = False, flag_default=dataclasses.MISSING, flag: str | None = None, comma_list: bool = False):
    """A config field with everything derived from it: its flag (named `flag`, if not the field's; a tuple is
    a repeated flag, or one comma-separated list with comma_list), the flag's default (flag_default, if not
    the field's), the flag's group in --help (digits.train's), the check of its value, the line when a
    required one is missing, and (digits.train's) the resume rule and whether it is a hyperparameter."""
    assert group is None or group in GROUPS, group
    return dataclasses.field(default=default, metadata=dict(
        help=help, group=group, check=check, choices=choices, required=required, fixed_on_resume=fixed_on_resume,
        hparam=hparam, flag=flag, comma_list=comma_list,
        flag_default=(None if default is dataclasses.MISSING else default) if flag_default is dataclasses.MISSING
        else flag_default))


def port_number(value) -> str | None:
    return None if value is None or 0 <= value < 65536 else 'must be in [0, 65536)'


def version_label_problem(labels) -> str | None:
    bad = [label for label in labels if not re.fullmatch(r'[^/:]+', label) or label.isdigit()]
    return f'has {bad[0]!r}: a label is a name without / or :' if bad else None


def tflite_path(value) -> str | None:
    return None if value and value.endswith('.tflite') else 'must name a .tflite file, e.g. --output=digits.tflite'


# The line reader's recipe: configs/lines.cfg trains it alone (--arch=line); the default recipe trains it
# for --line_steps after the digit model (line_reader_config). docs/experiments/2026-12-07-line-reader.md
# measured it.
LINE_RECIPE = dict(arch='line', width=16, batch_size=64, learning_rate=0.006, warmup_steps=100)
LINE_STEPS = 2000
LINE_READER = 'line_reader'  # the line reader's run directory inside the run's, and its export inside the export


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
                       'convnet", for comparison with model.fit), digit models; or line, the line reader, trained '
                       'with CTC on lines of digits composed from the dataset (configs/lines.cfg).', group='model',
                       choices=ARCHITECTURES,
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
    line_steps: int | None = option(
        None, 'After the digit model, train the line reader (configs/lines.cfg\'s recipe) for this many steps and '
        'export it inside the export, as <export>/line_reader: it reads numbers whose digits touch. 0: the digit '
        f'model alone. Unset: {LINE_STEPS} for a dataset of digits, 0 for others.', group='model',
        check=lambda value: None if value is None else non_negative(value), hparam=True)
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
        if self.line_steps is None and self.dataset in datasets.DATASETS:
            digits = datasets.DATASETS[self.dataset].class_names == datasets.DIGIT_CLASSES
            object.__setattr__(self, 'line_steps', LINE_STEPS if digits else 0)

    @property
    def run_dir(self) -> str:
        return os.path.join(self.logdir, self.run_name)

    def problem(self) -> str | None:
        """What no one field's check sees."""
        if self.strategy == 'tpu' and not self.tpu:
            return TPU_NEEDED
        if self.negatives and datasets.DATASETS[self.dataset].class_names != datasets.DIGIT_CLASSES:
            return (f'--negatives ({self.negatives}) teaches a digit model to refuse marks that are not digits; '
                    f'{self.dataset}\'s classes are not digits: use --negatives=0')
        if self.arch == 'line' and self.ensemble > 1:
            return f'--ensemble ({self.ensemble}) trains digit models side by side; --arch=line reads lines alone'
        if (self.arch == 'line' or self.line_steps) and \
                datasets.DATASETS[self.dataset].class_names != datasets.DIGIT_CLASSES:
            what = '--arch=line' if self.arch == 'line' else f'--line_steps ({self.line_steps})'
            return f'{what} trains a reader of lines of digits; {self.dataset}\'s classes are not digits' + (
                '' if self.arch == 'line' else ': use --line_steps=0')
        return None

    def line_reader_config(self) -> 'TrainConfig':
        """The run of the line reader that follows this digit model's (--line_steps): LINE_RECIPE for
        line_steps steps, its run directory and export inside this run's."""
        return dataclasses.replace(
            self, **LINE_RECIPE, train_steps=self.line_steps, line_steps=0, ensemble=1, label_smoothing=0.0,
            ema_decay=0.0, logdir=self.run_dir, run_name=LINE_READER,
            export_dir=os.path.join(self.export_dir, LINE_READER))

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


DATASET_FLAG_HELP = f"{DATASET_HELP} Default: the run's (--run_dir), else {datasets.DEFAULT}."


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `python -m digits.evaluate` evaluates, and on which data."""
    dataset: str | None = option(None, DATASET_FLAG_HELP, choices=tuple(datasets.DATASETS))
    data_dir: str | None = option(None, DATA_DIR_HELP)
    model: str | None = option(None, 'Exported SavedModel directory to evaluate.')
    run_dir: str | None = option(None, 'Training run directory; evaluates its latest checkpoint.')
    batch_size: int = option(1000, 'Evaluation batch size.', check=positive)
    output_json: str | None = option(None, 'Also write {accuracy, loss, num_examples} here.')
    report_dir: str | None = option(None, 'Also write a report here: confusion matrix, misclassified digits, '
                                    'per-class precision / recall, reliability diagram (PNG) and report.md.')

    def problem(self) -> str | None:
        """What no one field's check sees."""
        if (self.model is None) == (self.run_dir is None):
            return 'pass exactly one of --model=<export dir> or --run_dir=<logdir>/<run_name>'
        if self.report_dir and self.model and self.model.endswith('.tflite'):
            return (f'--report_dir needs an export (its figures use TensorFlow); --model ({self.model}) is a '
                    'LiteRT file')
        return None


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """What `python -m digits.predict` classifies, with which export, and where it writes."""
    model: str = option(dataclasses.MISSING, 'Exported SavedModel directory (models/<run_name>).',
                        required='--model is required: the exported model to use, e.g. --model=models/<run_name>')
    files: tuple[str, ...] = dataclasses.field(metadata=dict(  # the command's arguments, not a flag
        required='no image files given: python -m digits.predict --model=DIR FILE...'))
    output_json: str | None = option(None, 'Also write the predictions here, as a JSON list.')
    save_preprocessed: str | None = option(None, 'Write the 28x28 image classified for each file into this '
                                           'folder (as <name>.png), to see what the model saw.')


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What `python -m digits.serve` serves, where, and how much it accepts."""
    model: str = option(dataclasses.MISSING, 'Exported SavedModel directory (models/<run_name>), or a TF Serving '
                        'base path (<base>/<version>/saved_model.pb; the highest version is served).',
                        required='--model is required: the exported model to serve, e.g. --model=models/<run_name>')
    host: str = option('127.0.0.1', 'Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every '
                       'interface).')
    port: int = option(8000, 'HTTP port: the page, /api/predict and TF Serving\'s REST API (0: any free port).',
                       check=port_number)
    grpc_port: int | None = option(None, 'Also serve TF Serving\'s gRPC API on this port (TF Serving uses 8500; '
                                   '0: any free port; unset: no gRPC).', check=port_number)
    max_body_mb: float = option(16.0, 'Largest request body accepted, in MB (a phone\'s photo is 3-8); larger '
                                'ones get 413 (gRPC: RESOURCE_EXHAUSTED).', check=positive)
    threads: int = option(16, 'Workers answering requests (HTTP, and gRPC alike).', check=positive)
    max_connections: int = option(1000, 'Connections open at once; more wait to be accepted.', check=positive)
    enable_batching: bool = option(True, 'Join concurrent requests into one model call, as TF Serving\'s '
                                   '--enable_batching does.')
    max_batch_size: int = option(32, 'Images in one batched model call.', check=positive)
    batch_timeout_micros: int = option(0, 'How long a batch waits for more requests once it has one (0: it takes '
                                       'what is queued while the model was busy).', check=non_negative)
    version_labels: tuple[str, ...] = option(('stable',), 'TF Serving version labels naming the version served '
                                             '(/v1/models/digits/labels/<label>).', check=version_label_problem,
                                             comma_list=True)
    cors_origin: str | None = option(None, 'Let pages of this origin (e.g. https://example.org; *: any) call the '
                                     'APIs from a browser; unset: only the page served here.')
    drain_seconds: float = option(10.0, 'On SIGTERM, requests in flight get this long to finish.',
                                  check=non_negative)

    def problem(self) -> str | None:
        """What no one field's check sees."""
        if self.grpc_port and self.grpc_port == self.port:
            return f'--grpc_port ({self.grpc_port}) must differ from --port'
        return None


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """What `python -m digits.convert` converts, to what, and the data it checks (and calibrates) on."""
    model: str = option(dataclasses.MISSING, 'Exported SavedModel directory (models/<run_name>).',
                        required='--model is required: the export to convert, e.g. --model=models/<run_name>')
    output: str = option(dataclasses.MISSING, 'The LiteRT file to write (FILE.tflite).', check=tflite_path)
    quantize: str = option('none', 'none: float32; float16: half-size weights; int8: full-integer, calibrated on '
                           'training images of --data_dir.', choices=('none', 'float16', 'int8'))
    dataset: str | None = option(None, DATASET_FLAG_HELP, choices=tuple(datasets.DATASETS))
    data_dir: str | None = option(None, DATA_DIR_HELP)

    def problem(self) -> str | None:
        """What no one field's check sees."""
        if self.quantize == 'int8' and not (self.data_dir or self.dataset):
            return ('--quantize=int8 calibrates on training images: give them with --data_dir=DIR (or '
                    f'--dataset={datasets.DEFAULT} for the bundled ones)')
        return None


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What `python -m digits.sweep` runs: points of a grid or a random search, each a digits.train run."""
    sweep_dir: str = option(dataclasses.MISSING, 'Folder of the sweep: one run directory per point.',
                            required='--sweep_dir is required: the folder of the sweep, e.g. '
                            '--sweep_dir=logs/sweep-lr')
    grid: tuple[str, ...] = option((), 'FLAG=V1,V2,...: values of one digits.train flag; the points are every '
                                   'combination')
    ranges: tuple[str, ...] = option((), 'FLAG=LOW:HIGH[:log]: with --random, a number drawn uniformly (log: '
                                     'log-uniformly) in [LOW, HIGH]', flag='range')
    random: int = option(0, 'Draw N points at random from the --grid values and --range intervals (0: the whole '
                         'grid).', check=non_negative)
    search_seed: int = option(0, 'Seed of the random draws.')
    parallel: int = option(1, 'Runs at a time (each a process).', check=positive)
    fit_epoch_seconds: float = option(0.0, 'The fit-epoch, if already measured on this machine (0: measure it '
                                      'before and after the runs).')
    best_flagfile: str | None = option(None, 'Write the best point as a flagfile here.')
    train_args: tuple[str, ...] = ()  # the digits.train flags given, passed to every point
    command: str = ''  # the command line, for the best flagfile's header

    def problem(self) -> str | None:
        """What no one field's check sees."""
        if self.ranges and not self.random:
            return '--range needs --random=N (a grid has no intervals)'
        if not self.grid and not self.ranges:
            return 'nothing to sweep: give at least one --grid=FLAG=V1,V2,... (or --random=N --range=...)'
        return None


# ------------------------------------------------------------------------------------------------- flags

def flag_fields(config_class) -> list[dataclasses.Field]:
    """The fields of a config that are flags (an `option`), in declaration order."""
    return [f for f in dataclasses.fields(config_class) if f.metadata.get('help')]


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get('flag') or field.name


def define_flags(config_class, fv: flags.FlagValues = flags.FLAGS):
    """The flags of a command, one per field of its config."""
    for field in flag_fields(config_class):
        define_flag(field, fv)


def define_train_flags(fv: flags.FlagValues = flags.FLAGS, config_class=TrainConfig):
    """Flags of `python -m digits.train`, one per TrainConfig field; defaults are the default recipe."""
    define_flags(config_class, fv)


def define_data_flags(fv: flags.FlagValues = flags.FLAGS):
    """--dataset and --data_dir as digits.evaluate declares them, for a script that reads a dataset."""
    for field in flag_fields(EvalConfig):
        if field.name in ('dataset', 'data_dir'):
            define_flag(field, fv)


def define_sweep_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of `python -m digits.sweep`: its own, and every digits.train flag, given to each point."""
    define_flags(SweepConfig, fv)
    define_train_flags(fv)


def define_flag(field: dataclasses.Field, fv: flags.FlagValues):
    """The flag of one config field, of the field's type; a digits.train flag under its group (for --help)."""
    meta, kind = field.metadata, field.type
    if isinstance(kind, types.UnionType):  # `str | None`: the flag is a string that may stay unset
        kind = next(t for t in kind.__args__ if t is not type(None))
    name, default, extra = flag_name(field), meta['flag_default'], {'flag_values': fv}
    if meta['group']:
        extra['module_name'] = meta['group']
    if meta['choices']:
        flags.DEFINE_enum(name, default, meta['choices'], meta['help'], **extra)
    elif typing.get_origin(kind) is tuple:
        define = flags.DEFINE_list if meta['comma_list'] else flags.DEFINE_multi_string
        define(name, list(default), meta['help'], **extra)
    else:
        define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
                  str: flags.DEFINE_string}[kind]
        define(name, default, meta['help'], **extra)


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


# --------------------------------------------------------------------------------------- configurations

def from_flags(config_class, values: flags.FlagValues, **given):
    """A command's config from its parsed flags (and the fields that are not flags, `given`), checked."""
    kwargs = {}
    for field in flag_fields(config_class):
        value = values[flag_name(field)].value
        kwargs[field.name] = tuple(value or ()) if typing.get_origin(field.type) is tuple else value
    config = config_class(**kwargs, **given)
    check_config(config)
    return config


def check_config(config):
    """Raises DigitsError for the first required field missing, else the first bad field, naming it and its
    value, else what the config's problem() finds across fields."""
    fields = dataclasses.fields(config)
    for field in fields:
        if field.metadata.get('required') and getattr(config, field.name) in (None, '', ()):
            raise DigitsError(field.metadata['required'])
    for field in fields:
        value, check, choices = getattr(config, field.name), field.metadata.get('check'), field.metadata.get('choices')
        problem = check(value) if check else None
        if choices and value is not None and value not in choices:
            problem = f'must be one of {", ".join(choices)}'
        if problem:
            shown = ','.join(value) if isinstance(value, tuple) else value
            raise DigitsError(f'--{flag_name(field)} ({shown}) {problem}')
    problem = config.problem() if hasattr(config, 'problem') else None
    if problem:
        raise DigitsError(problem)


def train_config_from_flags(values: flags.FlagValues, now: datetime.datetime | None = None,
                            config_class=TrainConfig) -> TrainConfig:
    """The TrainConfig of parsed flags; --run_name defaults to the time, --export_dir to models/<run_name>."""
    run_name = values['run_name'].value or (now or datetime.datetime.now()).strftime('%Y%m%d-%H%M%S')
    export_dir = values['export_dir'].value or os.path.join('models', run_name)
    kwargs = {f.name: values[f.name].value for f in dataclasses.fields(config_class)}
    config = config_class(**{**kwargs, 'run_name': run_name, 'export_dir': export_dir})
    check_config(config)
    return config


def sweep_config_from_flags(values: flags.FlagValues, command: str = '') -> SweepConfig:
    """The SweepConfig of parsed flags; the digits.train flags given explicitly go to every point."""
    train_args = tuple(values[f.name].serialize() for f in TRAIN_FIELDS if values[f.name].present)
    return from_flags(SweepConfig, values, train_args=train_args, command=command)


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

"""Flag definitions, the frozen run configurations, and their validation.

Only entry points call `define_*_flags` and `*_config_from_flags`; everything below them takes a config.
"""
import dataclasses
import datetime
import functools
import os

from absl import flags

from digits.errors import DigitsError

DATASETS = ('mnist', 'fashion_mnist')
MODELS = ('cnn', 'simple')  # Kept in sync with digits.model.MODELS by a test.
OPTIMIZERS = ('sgd', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine')
STRATEGIES = ('default', 'one_device', 'mirrored', 'multi_worker', 'tpu')
PRECISIONS = ('float32', 'mixed_float16', 'mixed_bfloat16')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on; stored as config.json in the run directory."""
    dataset: str = 'mnist'
    data_dir: str | None = None
    model: str = 'cnn'
    batch_size: int = 128
    epochs: int = 30
    train_steps: int = 0  # 0: derived from epochs.
    learning_rate: float = 0.003
    optimizer: str = 'adam'
    lr_schedule: str = 'cosine'
    warmup_steps: int = 200
    momentum: float = 0.9
    weight_decay: float = 0.0
    l2: float = 0.0
    augment: bool = True
    validation_split: float = 0.0
    seed: int = 0
    logdir: str = 'logs'
    run_name: str = ''
    export_dir: str = ''
    steps_per_loop: int = 50
    log_every_steps: int = 100
    eval_every_steps: int = 1000
    checkpoint_every_steps: int = 500
    eval_batch_size: int = 1000
    strategy: str = 'default'
    cpu_replicas: int = 0
    tpu: str | None = None
    precision: str = 'float32'
    deterministic: bool = False
    jit_compile: bool = False
    profile_steps: int = 0
    label_smoothing: float = 0.0
    ema_decay: float = 0.0

    @property
    def run_dir(self) -> str:
        return os.path.join(self.logdir, self.run_name)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `python -m digits.evaluate` evaluates, and on which data."""
    model: str | None = None  # An exported SavedModel directory.
    run_dir: str | None = None  # A training run directory (its latest checkpoint).
    dataset: str | None = None  # None: the run's dataset (run_dir) or mnist.
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


_TRAIN_DEFAULTS = TrainConfig()


def define_data_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags shared by every entry point that reads a dataset."""
    flags.DEFINE_enum('dataset', None, DATASETS, 'Dataset to use (default: mnist, or the run\'s).',
                      flag_values=fv)
    flags.DEFINE_string(
        'data_dir', None, 'Folder with the four IDX files (gzip-compressed or not) or a Keras-style '
        'mnist.npz / fashion_mnist.npz. Unset: download from Keras\' source into ~/.keras/datasets.',
        flag_values=fv)


def define_train_flags(fv: flags.FlagValues = flags.FLAGS):
    """Flags of `python -m digits.train`; defaults are TrainConfig's, the default recipe."""
    d = _TRAIN_DEFAULTS
    integer = functools.partial(flags.DEFINE_integer, flag_values=fv)
    real = functools.partial(flags.DEFINE_float, flag_values=fv)
    enum = functools.partial(flags.DEFINE_enum, flag_values=fv)
    string = functools.partial(flags.DEFINE_string, flag_values=fv)
    define_data_flags(fv)
    enum('model', d.model, MODELS, 'Architecture: cnn (default, stronger) or simple (the keras.io '
         '"Simple MNIST convnet", for comparison with model.fit).')
    integer('batch_size', d.batch_size, 'Global batch size, shared by all replicas.')
    integer('epochs', d.epochs, 'Passes over the training set (ignored if --train_steps > 0).')
    integer('train_steps', d.train_steps, 'Total optimizer steps; overrides --epochs if > 0.')
    real('learning_rate', d.learning_rate, 'Peak learning rate.')
    enum('optimizer', d.optimizer, OPTIMIZERS, 'Optimizer.')
    enum('lr_schedule', d.lr_schedule, SCHEDULES,
         'constant, or cosine decay to 0 after --warmup_steps of linear warm-up.')
    integer('warmup_steps', d.warmup_steps, 'Linear warm-up steps (cosine schedule).')
    real('momentum', d.momentum, 'Momentum of the sgd optimizer.')
    real('weight_decay', d.weight_decay, 'Decoupled weight decay of adamw.')
    real('l2', d.l2, 'L2 penalty on conv/dense kernels, added to the loss.')
    flags.DEFINE_bool('augment', d.augment, 'Random affine augmentation (rotate, scale, shift).',
                      flag_values=fv)
    real('validation_split', d.validation_split,
         'Fraction of the training set held out for tuning; 0 evaluates on the test set.')
    integer('seed', d.seed, 'Seed for weights, data order and augmentation.')
    string('logdir', d.logdir, 'Root of run directories (tensorboard --logdir).')
    string('run_name', None, 'Run directory name under --logdir (default: a timestamp).')
    string('export_dir', None, 'SavedModel output (default: models/<run_name>).')
    integer('steps_per_loop', d.steps_per_loop, 'Training steps per tf.function call.')
    integer('log_every_steps', d.log_every_steps, 'Progress line and train summaries interval.')
    integer('eval_every_steps', d.eval_every_steps, 'Evaluation interval (and at the end).')
    integer('checkpoint_every_steps', d.checkpoint_every_steps, 'Checkpoint interval (and at the end).')
    integer('eval_batch_size', d.eval_batch_size, 'Global batch size of evaluation.')
    enum('strategy', d.strategy, STRATEGIES, 'tf.distribute strategy.')
    integer('cpu_replicas', d.cpu_replicas, 'Split the host CPU into this many logical devices (0: no).')
    string('tpu', None, 'With --strategy=tpu: TPU name, grpc://host:port, or local (on a TPU VM).')
    enum('precision', d.precision, PRECISIONS, 'Compute dtype policy; mixed_float16 adds loss scaling.')
    flags.DEFINE_bool('deterministic', d.deterministic, 'Bit-for-bit reproducible on the same machine '
                      '(TensorFlow op determinism; slower). Resuming then ends with the same weights.',
                      flag_values=fv)
    flags.DEFINE_bool('jit_compile', d.jit_compile, 'XLA-compile the forward and backward pass (measured '
                      'slower on CPU: see scripts/benchmark.py; try it on GPU / TPU).', flag_values=fv)
    real('label_smoothing', d.label_smoothing, 'Train against targets (1 - s) * one_hot + s / 10 (0: off); '
         'evaluation always uses the plain loss.')
    real('ema_decay', d.ema_decay, 'Evaluate and export an exponential moving average of the weights with '
         'this decay per step (e.g. 0.999); 0: off.')
    integer('profile_steps', d.profile_steps, 'Record a TensorFlow profiler trace of this many steps, '
            'after the first tf.function call, into <run>/train (TensorBoard\'s Profile tab). 0: off.')


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


def predict_config_from_flags(values: flags.FlagValues, files: list[str]) -> PredictConfig:
    """Builds and validates the PredictConfig from parsed flags and the file arguments."""
    if not values['model'].value:
        raise DigitsError('--model is required: the exported model to use, e.g. --model=models/<run_name>')
    if not files:
        raise DigitsError('no image files given: python -m digits.predict --model=DIR FILE...')
    return PredictConfig(values['model'].value, tuple(files), values['output_json'].value,
                         values['save_preprocessed'].value)


def train_config_from_flags(values: flags.FlagValues, now: datetime.datetime | None = None) -> TrainConfig:
    """Builds and validates the TrainConfig from parsed flags."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kwargs = {name: values[name].value for name in fields if name in values}
    kwargs['dataset'] = kwargs['dataset'] or 'mnist'
    kwargs['run_name'] = kwargs['run_name'] or (now or datetime.datetime.now()).strftime('%Y%m%d-%H%M%S')
    kwargs['export_dir'] = kwargs['export_dir'] or os.path.join('models', kwargs['run_name'])
    config = TrainConfig(**kwargs)
    validate_train_config(config)
    return config


def eval_config_from_flags(values: flags.FlagValues) -> EvalConfig:
    """Builds and validates the EvalConfig from parsed flags."""
    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    config = EvalConfig(**{name: values[name].value for name in fields})
    if (config.model is None) == (config.run_dir is None):
        raise DigitsError('pass exactly one of --model=<export dir> or --run_dir=<logdir>/<run_name>')
    _check_positive(config, 'batch_size')
    return config


def validate_train_config(config: TrainConfig):
    """Raises DigitsError naming the first bad field and its value."""
    for name in ('batch_size', 'epochs', 'steps_per_loop', 'log_every_steps', 'eval_every_steps',
                 'checkpoint_every_steps', 'eval_batch_size'):
        _check_positive(config, name)
    for name in ('train_steps', 'warmup_steps', 'cpu_replicas', 'weight_decay', 'l2', 'momentum',
                 'profile_steps'):
        if getattr(config, name) < 0:
            raise DigitsError(f'--{name} ({getattr(config, name)}) must not be negative')
    if not config.learning_rate > 0:
        raise DigitsError(f'--learning_rate ({config.learning_rate}) must be positive')
    if not 0 <= config.ema_decay < 1:
        raise DigitsError(f'--ema_decay ({config.ema_decay}) must be in [0, 1)')
    if not 0 <= config.label_smoothing < 1:
        raise DigitsError(f'--label_smoothing ({config.label_smoothing}) must be in [0, 1)')
    if not 0 <= config.validation_split < 1:
        raise DigitsError(f'--validation_split ({config.validation_split}) must be in [0, 1)')
    if not 0 <= config.seed < 2**31:
        raise DigitsError(f'--seed ({config.seed}) must be in [0, 2**31)')
    if config.strategy == 'tpu' and not config.tpu:
        raise DigitsError('--strategy=tpu needs --tpu=<TPU name, grpc://host:port, or local on a TPU VM>')
    if os.sep in config.run_name or config.run_name in ('.', '..'):
        raise DigitsError(f'--run_name ({config.run_name}) must be a plain name, not a path')
    for name, choices in (('dataset', DATASETS), ('model', MODELS), ('optimizer', OPTIMIZERS),
                          ('lr_schedule', SCHEDULES), ('strategy', STRATEGIES),
                          ('precision', PRECISIONS)):
        if getattr(config, name) not in choices:
            raise DigitsError(f'--{name} ({getattr(config, name)}) must be one of {", ".join(choices)}')


# Flags that decide what a checkpoint means or which examples a step sees: a run cannot resume with
# other values. The rest (intervals, logging, training length, learning rate) may change on resume.
RESUME_FIXED = ('dataset', 'model', 'batch_size', 'optimizer', 'precision', 'l2', 'seed',
                'validation_split', 'augment', 'ema_decay')


def check_resumable(config: TrainConfig, stored: dict, stored_path: str):
    """Raises DigitsError naming the first flag in RESUME_FIXED whose value differs from the stored run's."""
    for name in RESUME_FIXED:
        before = stored.get(name, getattr(_TRAIN_DEFAULTS, name))
        if before != getattr(config, name):
            raise DigitsError(f'--{name} ({getattr(config, name)}) differs from the run being resumed '
                              f'({before}, in {stored_path}); pass --{name}={before} to resume it, or '
                              f'use a new --run_name')


def _check_positive(config, name: str):
    value = getattr(config, name)
    if value <= 0:
        raise DigitsError(f'--{name} ({value}) must be positive')

"""Shared fixtures: tiny learnable digits in the real IDX / npz formats, and the real data when present."""
import fcntl
import gzip
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGICAL_CPUS = 4


def pytest_configure(config):
    """Splits the CPU into 4 logical devices before TensorFlow starts, for multi-replica tests (in the
    process that runs them: not in pytest-xdist's controller, which runs none)."""
    if getattr(config.option, 'numprocesses', None) and not os.environ.get('PYTEST_XDIST_WORKER'):
        return
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(LOGICAL_CPUS)])
IDX_NAMES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte',
             't10k-labels-idx1-ubyte')
TINY_TRAIN, TINY_TEST = 640, 203  # 203: no batch size used in the tests divides it.


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n noisy 28x28 uint8 images; class k is a bright 6x5 block at cell k of a 2x5 grid."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        row, col = 4 + 12 * (k // 5), 1 + 5 * (k % 5)
        images[i, row:row + 6, col:col + 5] = 255
    return images, labels


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(d.to_bytes(4, 'big') for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(directory, compress=True, train=None, test=None):
    """Writes the four MNIST IDX files (gzip-compressed or raw) of tiny digits into directory."""
    (x_train, y_train), (x_test, y_test) = train or make_digits(TINY_TRAIN, 1), test or make_digits(TINY_TEST, 2)
    os.makedirs(directory, exist_ok=True)
    for name, array in zip(IDX_NAMES, (x_train, y_train, x_test, y_test)):
        raw = idx_bytes(array)
        path = os.path.join(directory, name + ('.gz' if compress else ''))
        with open(path, 'wb') as f:
            f.write(gzip.compress(raw) if compress else raw)
    return str(directory)


def bomb_bytes(fmt: str, width: int, height: int) -> bytes:
    """A small PNG or JPEG whose header declares width x height pixels: a decompression bomb."""
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.new('L', (40, 40), 255).save(buffer, format=fmt)
    raw = buffer.getvalue()
    if fmt == 'PNG':  # IHDR: width, height at bytes 16-24 (the chunk's CRC is then wrong: never reached)
        return raw[:16] + width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + raw[24:]
    sof = raw.index(b'\xff\xc0')  # baseline JPEG start of frame: length, precision, height, width
    return raw[:sof + 5] + height.to_bytes(2, 'big') + width.to_bytes(2, 'big') + raw[sof + 9:]


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
    """A folder with the four gzip IDX files of tiny digits (640 train, 203 test), one for all workers (the
    shared runs' configs name it)."""
    return once_per_session(tmp_path_factory, 'tiny_idx', write_idx_dir)


def data_dir_from_env(variable: str, what: str, where: str) -> str:
    """The folder named by an environment variable; skips the test when it is unset or missing."""
    path = os.environ.get(variable)
    if not path or not os.path.isdir(path):
        pytest.skip(f'{what} not available: set {variable} to {where}')
    return path


@pytest.fixture(scope='session')
def fashion_data_dir():
    """Fashion-MNIST (via DIGITS_TEST_FASHION; .ci/run installs Debian's dataset-fashion-mnist)."""
    return data_dir_from_env('DIGITS_TEST_FASHION', 'Fashion-MNIST', '/usr/share/datasets/fashion-mnist')


@pytest.fixture(scope='session')
def real_data_dir():
    """Real MNIST: the files bundled with digits (10,000 training images, the official test set)."""
    from digits.data import datasets
    return datasets.MNIST_10K.bundled_dir


def run_module(module: str, *args, cwd=None, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Runs `python -m module args` as a user would (env: extra variables), capturing its output."""
    env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, '-m', module, *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def smoke_config(tmp_dir, data_dir, **overrides):
    """A seconds-long training config on the tiny data, writing everything under tmp_dir; its cnn has
    configs/wide.cfg's shape, on which the tests' margins were measured."""
    from digits import config
    values = dict(data_dir=data_dir, arch='cnn', width=32, blocks=2, first_block_convs=2, tta=False,
                  batch_size=32, train_steps=60, learning_rate=0.003,
                  warmup_steps=5, augment=False, blur=0.0, logdir=os.path.join(tmp_dir, 'logs'),
                  run_name='smoke',
                  export_dir=os.path.join(tmp_dir, 'models', 'smoke'), steps_per_loop=10,
                  log_every_steps=10, eval_every_steps=30, checkpoint_every_steps=20, eval_batch_size=64,
                  line_steps=0)
    values.update(overrides)
    return config.TrainConfig(**values)


def once_per_session(tmp_path_factory, name: str, make):
    """make(folder) once per test session, however many pytest-xdist workers ask: the first computes it
    under a lock in the folder all workers share, and the others load what it pickled there."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        shared = shared.parent  # the workers' temp folders are siblings
    path = shared / f'{name}.pickle'
    with open(shared / f'{name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            folder = shared / f'{name}-output'
            folder.mkdir(exist_ok=True)
            path.write_bytes(pickle.dumps(make(str(folder))))
        return pickle.loads(path.read_bytes())


@pytest.fixture(scope='session')
def smoke_run(tmp_path_factory, tiny_data_dir):
    """One short training run on the tiny data: (config, results, printed lines)."""
    def train(folder):
        from digits.training import experiment
        cfg, lines = smoke_config(folder, tiny_data_dir), []
        return cfg, experiment.train_and_evaluate(cfg, log=lines.append), lines
    return once_per_session(tmp_path_factory, 'smoke', train)


@pytest.fixture(scope='session')
def real_model(real_data_dir, tmp_path_factory):
    """A half-width cnn of configs/wide.cfg's shape (--width=16: 12 s here, against 20 s at width 32) trained
    for 300 steps on the real training images with the default recipe's augmentation, shared by every
    real-data test: (config, results). 98.75% on the test set; every real-data margin in the tests was
    measured on it. Its evaluation batch of 384 does not divide the 10,000 test images."""
    def train(folder):
        from digits.training import experiment
        cfg = smoke_config(folder, real_data_dir, arch='cnn', width=16, batch_size=128, train_steps=300,
                           steps_per_loop=50, log_every_steps=50, warmup_steps=50, eval_every_steps=300,
                           checkpoint_every_steps=300, augment=True, blur=0.5, eval_batch_size=384)
        return cfg, experiment.train_and_evaluate(cfg, log=lambda line: None)
    return once_per_session(tmp_path_factory, 'real_model', train)


LINE_TEST_STEPS = 600  # the shared line reader's training: the tests' margins were measured on it


@pytest.fixture(scope='session')
def line_export(real_model, tmp_path_factory):
    """real_model's run and export, copied, then the line reader trained after it as the default recipe does
    (--line_steps=LINE_TEST_STEPS), into the same export: (config, results)."""
    def train(folder):
        import dataclasses
        import shutil

        from digits.training import experiment
        cfg = dataclasses.replace(real_model[0], logdir=os.path.join(folder, 'logs'), line_steps=LINE_TEST_STEPS,
                                  export_dir=os.path.join(folder, 'models', 'lines'))
        shutil.copytree(real_model[0].run_dir, cfg.run_dir)
        shutil.copytree(real_model[0].export_dir, cfg.export_dir)
        return cfg, experiment.train_and_evaluate(cfg, log=lambda line: None)
    return once_per_session(tmp_path_factory, 'line_export', train)


SERVE_MAX_BODY_MB = 0.5  # the shared server's --max_body_mb: small enough to test cheaply
SERVE_CORS_ORIGIN = 'https://pages.example'


@pytest.fixture(scope='session')
def serving(smoke_run):
    """digits.serve of the smoke model, with gRPC and --cors_origin, shared by the server's tests:
    (base URL, gRPC address). A real process on loopback ports, stopped at the end."""
    from support import traffic
    proc, url, grpc_address = traffic.start_server(
        smoke_run[0].export_dir, f'--max_body_mb={SERVE_MAX_BODY_MB}', '--grpc_port=0',
        f'--cors_origin={SERVE_CORS_ORIGIN}', cwd=ROOT)
    try:
        yield url, grpc_address
    finally:
        traffic.stop_server(proc)

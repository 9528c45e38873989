"""The export against its LiteRT files: size, latency, accuracy and cold start, in one run.

    python scripts/benchmark_litert.py --model=models/latest [--data_dir=DIR]

Converts the export as digits.convert does (float32, float16, int8 calibrated on training images), then
for the SavedModel and each file: its size; its accuracy on every test image; its latency per image at
batch 1 (median of --calls one-image calls) and at batch 64 (median call over 64); and the cold start of
`digits.predict` on one image file (the median of 3 runs, each a new process). The SavedModel and the
files run in this process in turn, on the same machine, so their ratios carry to another machine.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import flags

from digits import cli, config
from digits.errors import DigitsError

FLAGS = flags.FLAGS
flags.DEFINE_string('model', None, 'Exported SavedModel (models/<run_name>, models/latest).')
flags.DEFINE_integer('calls', 300, 'Calls timed at batch 1 (and a tenth of that at batch 64).')
config.define_data_flags()


def latency_ms(model, images: np.ndarray, batch: int, calls: int) -> float:
    """Median milliseconds per image of model(images[i:i + batch]), after a first untimed call."""
    model(images[:batch])
    times = []
    for i in range(calls):
        start = (i * batch) % (len(images) - batch)
        began = time.perf_counter()
        model(images[start:start + batch])
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times) / batch


def cold_start_seconds(model_path: str, image_path: str) -> float:
    """Median wall seconds of `python -m digits.predict --model=... FILE`, each a new process."""
    times = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run([sys.executable, '-m', 'digits.predict', f'--model={model_path}', image_path], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def size_bytes(path: str) -> int:
    """A file's size, or a directory's (every file in it)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv):
    del argv
    if not FLAGS.model:
        raise DigitsError('--model is required: the export to measure, e.g. --model=models/latest')
    from digits.data import arrays
    from digits.export import litert, saved_model
    from support import synthetic
    module = saved_model.load(FLAGS.model)
    data = arrays.load(FLAGS.dataset or 'mnist_10k', FLAGS.data_dir)
    test = data.test.images.astype(np.float32) / 255
    work = tempfile.mkdtemp(prefix='benchmark_litert-')
    image_path = os.path.join(work, 'digit.png')
    with open(image_path, 'wb') as f:
        f.write(synthetic.png_digits(data.test.images[:1])[0])
    paths = {'SavedModel': FLAGS.model}
    models = {'SavedModel': lambda x: {'probabilities': module.serve(x)['probabilities'].numpy()}}
    for quantize in ('none', 'float16', 'int8'):
        name = 'LiteRT float32' if quantize == 'none' else f'LiteRT {quantize}'
        calibration = litert.calibration_images(data.train.images) if quantize == 'int8' else None
        paths[name] = os.path.join(work, f'{quantize}.tflite')
        with open(paths[name], 'wb') as f:
            f.write(litert.convert(module, test.shape[1:], quantize, calibration))
        models[name] = litert.load(paths[name])
    print(f'{"model":<16} {"bytes":>10} {"accuracy":>9} {"ms/image b1":>12} {"ms/image b64":>13} '
          f'{"predict cold s":>15}')
    for name, model in models.items():
        accuracy = litert.accuracy(model, data.test.images, data.test.labels)[0]
        print(f'{name:<16} {size_bytes(paths[name]):>10,} {100 * accuracy:>8.2f}% '
              f'{latency_ms(model, test, 1, FLAGS.calls):>12.3f} '
              f'{latency_ms(model, test, 64, FLAGS.calls // 10):>13.3f} '
              f'{cold_start_seconds(paths[name], image_path):>15.2f}', flush=True)


if __name__ == '__main__':
    cli.run(main, 'benchmark_litert', flags_help=cli.script_flags_help)

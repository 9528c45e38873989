"""LiteRT (formerly TFLite) files of an export: conversion, which needs TensorFlow, and reading, which
needs only ai_edge_litert and numpy.

A file has one signature, as the export's serving_default: images float32 [n, 28, 28] in [0, 1] ->
{'probabilities', 'logits'} [n, classes], test-time shifts and ensembles included (it is the export's own
serve function, traced with its variables frozen into constants; converting the SavedModel directory
instead leaves them uninitialised, and the file reads ~10%). Only LiteRT's builtin ops: no Flex delegate.
"""
import os
import threading

import numpy as np

from digits import atomic
from digits.config import LINE_READER
from digits.data import arrays, datasets, line_format
from digits.errors import DigitsError
from digits.export.signatures import FRAME, SIGNATURES
from digits.native import quiet_native_stderr

# The largest test-accuracy difference from the SavedModel (in points) a file of each kind may have.
TOLERANCE_POINTS = {'none': 0.02, 'float16': 0.02, 'int8': 0.1}
CALIBRATION_IMAGES = 500  # training images (or lines) the int8 ranges are calibrated on
# The line reader's tolerance, in TOLERANCE_POINTS: its 1,000 test lines make a line 0.1 points, so
# that float32 and float16 may differ by one line of 1,000 and int8 by ten.
LINE_TOLERANCE = 10


def convert(module, image_shape: tuple[int, int], quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """A loaded export as the bytes of a .tflite file; calibration: uint8 [n, h, w] training images (int8)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32, name='images')])
    def serve(images):
        return module.serve(images)

    return converted(tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module),
                     quantize, calibration)


def convert_lines(module, quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """A loaded line reader's export as the bytes of a .tflite file taking lines float32 [n, HEIGHT, w] of any
    width (a multiple of FRAME_COLUMNS); calibration: uint8 [n, HEIGHT, w] training lines (int8)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, line_format.HEIGHT, None], tf.float32, name='lines')])
    def serve(lines):
        return module.serve(lines)

    return converted(tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module),
                     quantize, calibration)


def converted(converter, quantize: str, calibration: np.ndarray | None) -> bytes:
    """The converter's file, quantized as asked (int8: calibrated on uint8 inputs, one at a time)."""
    import tensorflow as tf
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == 'float16':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == 'int8':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # every op int8, or fail
        converter.representative_dataset = lambda: ([image[None].astype(np.float32) / 255] for image in calibration)
    try:
        return converter.convert()
    except Exception as e:  # noqa: BLE001 (the converter raises many kinds; each is one line to the user)
        reason = str(e).strip().splitlines()[0]
        raise DigitsError(f'cannot convert the export to LiteRT ({quantize}): {reason}') from None


class LiteModel:
    """A .tflite file's signature as a function: images [n, h, w] -> {output: array}, taking uint8 0-255 or
    floats 0-1 as the export's serve function does; or, a line reader's file (lines=True), lines [n, HEIGHT, w]
    of any width.

    Thread-safe (one call at a time: a LiteRT interpreter is not)."""

    def __init__(self, content: bytes, name: str, lines: bool = False):
        from ai_edge_litert.interpreter import Interpreter
        try:
            self._interpreter = Interpreter(model_content=content)
            signatures = self._interpreter.get_signature_list()
        except (ValueError, RuntimeError) as e:
            raise DigitsError(f'--model ({name}) is not a LiteRT model: {str(e).strip().splitlines()[0]}') from None
        self._input = 'lines' if lines else 'images'
        if len(signatures) != 1 or list(signatures.values())[0]['inputs'] != [self._input]:
            raise DigitsError(f'--model ({name}) has signatures {signatures}; a digits .tflite has one, '
                              f'taking "{self._input}"')
        self._runner = self._interpreter.get_signature_runner()
        shape = [int(d) for d in self._runner.get_input_details()[self._input]['shape_signature'][1:]]
        want = [line_format.HEIGHT, -1] if lines else [FRAME, FRAME]
        if shape != want:
            raise DigitsError(f'--model ({name}) takes {self._input} of shape {shape}; a digits .tflite takes '
                              f'[n, {", ".join("w" if d < 0 else str(d) for d in want)}]')
        self.image_shape = tuple(shape)
        self._lock = threading.Lock()
        with quiet_native_stderr():  # the first call announces LiteRT's CPU delegate
            self(np.zeros((1, shape[0], FRAME), np.float32))

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.asarray(images)
        if images.dtype == np.uint8:
            images = SIGNATURES['serving_uint8'].to_model_input(images)
        width = images.shape[2] if self._input == 'lines' else self.image_shape[1]
        images = images.astype(np.float32).reshape(-1, self.image_shape[0], width)
        with self._lock:  # the runner resizes its input to each new shape
            return {name: np.array(value) for name, value in self._runner(**{self._input: images}).items()}


def load(path: str, lines: bool = False) -> LiteModel:
    """A .tflite file, ready to read digits (lines: a line reader's file); DigitsError if it is not one digits
    can use."""
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as e:
        raise DigitsError(f'--model ({path}) cannot be read: {e.strerror}') from None
    return LiteModel(content, path, lines)


def accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> tuple[float, np.ndarray]:
    """(accuracy, probabilities) of model (uint8 images -> {'probabilities': ...}, as the export's serve
    function and LiteModel take them) on uint8 images."""
    probabilities = np.concatenate([np.asarray(model(images[i:i + batch_size])['probabilities'])
                                    for i in range(0, len(images), batch_size)])
    return float((probabilities.argmax(axis=1) == labels).mean()), probabilities


def calibration_images(train: np.ndarray) -> np.ndarray:
    """The CALIBRATION_IMAGES training images (a seeded sample) that int8's ranges are measured on."""
    pick = np.random.default_rng(0).permutation(len(train))[:CALIBRATION_IMAGES]
    return train[np.sort(pick)]


def convert_export(config, log=print) -> dict:
    """Converts config.model to config.output, having checked the file's test accuracy against the
    SavedModel's: it is written only within TOLERANCE_POINTS. Returns the figures printed."""
    from digits.export import saved_model
    module = saved_model.load(config.model)
    data = arrays.load(config.dataset or 'mnist_10k', config.data_dir)
    calibration = calibration_images(data.train.images) if config.quantize == 'int8' else None
    content = convert(module, data.test.images.shape[1:], config.quantize, calibration)
    saved, saved_probabilities = accuracy(lambda x: {'probabilities': module.serve(x)['probabilities'].numpy()},
                                          data.test.images, data.test.labels)
    lite, lite_probabilities = accuracy(LiteModel(content, config.output), data.test.images, data.test.labels)
    figures = {'litert_accuracy': lite, 'saved_model_accuracy': saved, 'bytes': len(content),
               'max_probability_difference': float(np.abs(lite_probabilities - saved_probabilities).max())}
    log(f'digits.convert: test accuracy on {len(data.test.labels)} images: LiteRT ({config.quantize}) '
        f'{100 * lite:.2f}%, SavedModel {100 * saved:.2f}% (largest probability difference '
        f'{figures["max_probability_difference"]:.2g})')
    if abs(lite - saved) * 100 > TOLERANCE_POINTS[config.quantize]:
        raise DigitsError(f'the LiteRT file reads {100 * lite:.2f}% against the SavedModel\'s {100 * saved:.2f}%, '
                          f'beyond the {TOLERANCE_POINTS[config.quantize]} points allowed for --quantize='
                          f'{config.quantize}: not written')
    atomic.write_bytes(config.output, content)
    log(f'digits.convert: wrote {config.output} ({len(content) / 1024:.0f} KB, {config.quantize})')
    line_dir = os.path.join(config.model, LINE_READER)
    if os.path.isfile(os.path.join(line_dir, 'saved_model.pb')):
        figures[LINE_READER] = convert_line_reader(saved_model.load(line_dir, lines=True), data, config, log)
    return figures


def convert_line_reader(module, data: arrays.Arrays, config, log) -> dict:
    """Converts an export's line reader to line_reader_file(config.output), having checked the share of
    test lines (synthetic_lines.fixed_lines of the test digits) it reads exactly against the SavedModel's."""
    from digits.data import synthetic_lines
    test = synthetic_lines.fixed_lines(data.test, synthetic_lines.EVAL_LINES, seed=0)
    calibration = (synthetic_lines.fixed_lines(data.train, CALIBRATION_IMAGES, seed=1).images
                   if config.quantize == 'int8' else None)
    content = convert_lines(module, config.quantize, calibration)
    output = line_reader_file(config.output)
    saved = line_format.exact_share(np.concatenate([module.serve(test.images[i:i + 500])['probabilities'].numpy()
                                                    for i in range(0, len(test), 500)]), test.labels)
    lite = line_format.exact_share(LiteModel(content, output, lines=True)(test.images)['probabilities'], test.labels)
    log(f'digits.convert: the line reader reads {len(test)} test lines exactly: LiteRT ({config.quantize}) '
        f'{100 * lite:.2f}%, SavedModel {100 * saved:.2f}%')
    allowed = TOLERANCE_POINTS[config.quantize] * LINE_TOLERANCE
    if abs(lite - saved) * 100 > allowed:
        raise DigitsError(f'the line reader\'s LiteRT file reads {100 * lite:.2f}% of the test lines against the '
                          f'SavedModel\'s {100 * saved:.2f}%, beyond the {allowed:g} points allowed for '
                          f'--quantize={config.quantize}: not written')
    atomic.write_bytes(output, content)
    log(f'digits.convert: wrote {output} ({len(content) / 1024:.0f} KB, {config.quantize})')
    return {'litert_exact_lines': lite, 'saved_model_exact_lines': saved, 'bytes': len(content)}


def line_reader_file(tflite: str) -> str:
    """Where the line reader's LiteRT file lies beside a digit model's FILE.tflite: FILE.lines.tflite."""
    return tflite[:-len('.tflite')] + '.lines.tflite'


def evaluate_file(config, log=print) -> dict:
    """digits.evaluate on a .tflite file, without TensorFlow: accuracy and loss on the test set, printed
    as for an export."""
    model = load(config.model)
    dataset = config.dataset or datasets.DEFAULT
    test = arrays.load(dataset, config.data_dir).test
    logits = np.concatenate([model(test.images[i:i + config.batch_size])['logits']
                             for i in range(0, len(test.labels), config.batch_size)]).astype(np.float64)
    labels = test.labels.astype(np.int64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    metrics = {'accuracy': float((logits.argmax(axis=1) == labels).mean()),
               'loss': float((log_norm - logits[np.arange(len(labels)), labels]).mean()),
               'num_examples': int(len(labels))}
    log(f'{config.model}: {dataset} test accuracy {100 * metrics["accuracy"]:.2f}%  loss {metrics["loss"]:.4f}  '
        f'({metrics["num_examples"]} examples)')
    if config.output_json:
        atomic.write_json(config.output_json, metrics)
    return metrics

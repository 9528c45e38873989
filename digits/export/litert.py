"""LiteRT (formerly TFLite) files of an export: conversion, which needs TensorFlow, and reading, which
needs only ai_edge_litert and numpy.

A file has one signature, as the export's serving_default: images float32 [n, 28, 28] in [0, 1] ->
{'probabilities', 'logits'} [n, classes], test-time shifts and ensembles included (it is the export's own
serve function, traced with its variables frozen into constants; converting the SavedModel directory
instead leaves them uninitialised, and the file reads ~10%). Only LiteRT's builtin ops: no Flex delegate.
"""
import threading

import numpy as np

from digits import atomic
from digits.data import arrays, datasets
from digits.errors import DigitsError
from digits.export.signatures import FRAME, SIGNATURES
from digits.native import quiet_native_stderr

# The largest test-accuracy difference from the SavedModel (in points) a file of each kind may have.
TOLERANCE_POINTS = {'none': 0.02, 'float16': 0.02, 'int8': 0.1}
CALIBRATION_IMAGES = 500  # training images the int8 ranges are calibrated on


def convert(module, image_shape: tuple[int, int], quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """A loaded export as the bytes of a .tflite file; calibration: uint8 [n, h, w] training images (int8)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32, name='images')])
    def serve(images):
        return module.serve(images)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module)
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
    floats 0-1 as the export's serve function does.

    Thread-safe (one call at a time: a LiteRT interpreter is not)."""

    def __init__(self, content: bytes, name: str):
        from ai_edge_litert.interpreter import Interpreter
        try:
            self._interpreter = Interpreter(model_content=content)
            signatures = self._interpreter.get_signature_list()
        except (ValueError, RuntimeError) as e:
            raise DigitsError(f'--model ({name}) is not a LiteRT model: {str(e).strip().splitlines()[0]}') from None
        if len(signatures) != 1 or list(signatures.values())[0]['inputs'] != ['images']:
            raise DigitsError(f'--model ({name}) has signatures {signatures}; a digits .tflite has one, '
                              'taking "images"')
        self._runner = self._interpreter.get_signature_runner()
        self.image_shape = tuple(int(d) for d in self._runner.get_input_details()['images']['shape_signature'][1:])
        if self.image_shape != (FRAME, FRAME):
            raise DigitsError(f'--model ({name}) takes images of shape {list(self.image_shape)}; a digits .tflite '
                              f'takes [n, {FRAME}, {FRAME}]')
        self._lock = threading.Lock()
        with quiet_native_stderr():  # the first call announces LiteRT's CPU delegate
            self(np.zeros((1, *self.image_shape), np.float32))

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.asarray(images)
        if images.dtype == np.uint8:
            images = SIGNATURES['serving_uint8'].to_model_input(images)
        images = images.astype(np.float32).reshape(-1, *self.image_shape)
        with self._lock:
            return {name: np.array(value) for name, value in self._runner(images=images).items()}


def load(path: str) -> LiteModel:
    """A .tflite file, ready to read digits; DigitsError if it is not one digits can use."""
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as e:
        raise DigitsError(f'--model ({path}) cannot be read: {e.strerror}') from None
    return LiteModel(content, path)


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
    return figures


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

"""Reads the digits and numbers in people's images with an exported model: digits.Reader, the Python API,
and digits.predict's library side.

    reader = digits.Reader.load('models/latest')   # an export, or a .tflite file (then without TensorFlow)
    reader.read('number.jpg')['text']              # a path, the file's bytes, a PIL image or a numpy array
"""
import os

import numpy as np

from digits import atomic
from digits.config import LINE_READER, PredictConfig
from digits.errors import DigitsError
from digits.reading import images, reader


class Reader:
    """Reads the digits and numbers in images with one model (an export or a LiteRT file): each reading is
    {'text', 'digits': [{'digit', 'probability', 'top3', 'box'}, ...]} (for an image of one digit also its
    'digit', 'probability' and 'top3'), as digits.predict --output_json and the server's /api/predict answer;
    a refused mark is '?' in the text and None as a digit."""

    def __init__(self, model, line_model=None):
        """model: images [n, 28, 28] (uint8, or floats in [0, 1]) -> {'probabilities': [n, 10], ...};
        line_model (optional): the line reader, lines [n, HEIGHT, w] -> {'probabilities': [n, w / FRAME_COLUMNS, 12]},
        which reads the numbers whose digits touch (digits.reading.reader.read_all)."""
        self.model, self.line_model = model, line_model

    @classmethod
    def load(cls, path: str) -> 'Reader':
        """The Reader of an export (models/<run>) or of a .tflite file (read without TensorFlow), with the
        line reader it holds if it has one (<export>/line_reader, or <name>.lines.tflite beside the file)."""
        path = os.fspath(path)
        return cls(load_model(path), load_line_model(path))

    def read(self, image, name: str = 'the image') -> dict:
        """The reading of one image: a path, the bytes of a PNG, JPEG, GIF or BMP file, a PIL image, or a
        numpy array ([h, w] or [h, w, channels], uint8 or floats in [0, 1]); DigitsError says what is wrong."""
        return self.read_many([image], [name])[0]

    def read_many(self, pictures: list, names: list[str] | None = None) -> list[dict]:
        """The readings of several images, in one model call for all of them; DigitsError names the first
        image that cannot be read."""
        return [describe_reading(result) for result in self.readings(pictures, names)]

    def readings(self, pictures: list, names: list[str] | None = None) -> list[list[reader.Reading]]:
        """read_many's readings before they are described: each digit's reader.Reading (its box, its
        probabilities and the 28x28 image the model saw)."""
        names = names or [f"image {i}" for i in range(len(pictures))]
        pages = [as_pixels(picture, name) for picture, name in zip(pictures, names)]
        results = reader.read_all(pages, self.probabilities, names, self.line_probabilities)
        for result in results:
            if isinstance(result, DigitsError):
                raise result
        return results

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.model(batch)['probabilities']

    @property
    def line_probabilities(self):
        """The line reader as read_all takes it, or None without one."""
        return self.line_model and (lambda lines: self.line_model(lines)['probabilities'])


def as_pixels(image, name: str) -> np.ndarray:
    """Any image Reader.read takes as float32 [h, w, c] in [0, 1]."""
    from PIL import Image
    if isinstance(image, (str, os.PathLike)):
        return images.read_image(os.fspath(image))
    if isinstance(image, (bytes, bytearray)):
        return images.decode_image(bytes(image), name)
    if isinstance(image, Image.Image):
        return images.pixels_of(image)
    if isinstance(image, np.ndarray) and image.ndim in (2, 3) and image.size:
        pixels = image[..., None] if image.ndim == 2 else image
        if pixels.dtype == np.uint8:
            return pixels.astype(np.float32) / 255
        if np.issubdtype(pixels.dtype, np.floating) and 0 <= pixels.min() and pixels.max() <= 1:
            return pixels.astype(np.float32)
        raise DigitsError(f'{name}: an array of pixels must be uint8, or floats in [0, 1] (got {pixels.dtype}, '
                          f'{pixels.min()} to {pixels.max()})')
    raise DigitsError(f'{name}: cannot read a {type(image).__name__}: give a path, the bytes of an image file, '
                      'a PIL image or a numpy array [h, w] or [h, w, channels]')


def classify_files(config: PredictConfig, log=print, warn=print) -> tuple[list[dict], list[str]]:
    """Readings of the files that could be read, and one error line per file that could not.

    Each reading: {'file', 'text', 'digits': [{'digit', 'probability', 'top3', 'box'}, ...]}, and for an image
    of one digit also its 'digit', 'probability' and 'top3'.
    """
    loaded = Reader.load(config.model)
    if config.save_preprocessed:
        atomic.check_writable(config.save_preprocessed, f'--save_preprocessed ({config.save_preprocessed})')
    decoded = {}
    for path in config.files:
        try:
            decoded[path] = images.read_image(path)
        except DigitsError as e:
            decoded[path] = e
    readable = [path for path in config.files if not isinstance(decoded[path], DigitsError)]
    read = dict(zip(readable, reader.read_all([decoded[p] for p in readable], loaded.probabilities, readable,
                                              loaded.line_probabilities)))
    predictions, errors = [], []
    for path in config.files:  # one model call read every file; report them in the order given
        readings = read.get(path, decoded[path])
        if isinstance(readings, DigitsError):
            errors.append(str(readings))
            warn(f'error: {readings}')
            continue
        predictions.append({'file': path, **describe_reading(readings)})
        log(format_prediction(predictions[-1]))
        if config.save_preprocessed:
            for name, reading in zip(preprocessed_names(path, len(readings)), readings):
                images.write_png(os.path.join(config.save_preprocessed, name), reading.image)
    if config.output_json:
        atomic.write_json(config.output_json, predictions)
    return predictions, errors


def load_model(model: str, lines: bool = False):
    """model as a function: images [n, 28, 28] (uint8, or floats in [0, 1]) -> {'probabilities', 'logits'}
    as numpy. A .tflite file runs on LiteRT alone (TensorFlow is never imported); anything else is an
    export (the closure keeps its variables alive)."""
    if model.endswith('.tflite'):
        from digits.export import litert
        return litert.load(model)
    from digits.export import saved_model
    module = saved_model.load(model, lines)
    return lambda images: {name: value.numpy() for name, value in module.serve(images).items()}


def load_line_model(model: str):
    """The line reader that comes with model, as a function (see load_model), or None: an export's
    <export>/line_reader, or a .tflite file's <name>.lines.tflite."""
    if model.endswith('.tflite'):
        from digits.export import litert
        path = litert.line_reader_file(model)
        return litert.load(path, lines=True) if os.path.isfile(path) else None
    path = os.path.join(model, LINE_READER)
    return load_model(path, lines=True) if os.path.isfile(os.path.join(path, 'saved_model.pb')) else None


def describe_reading(readings: list) -> dict:
    """{'text', 'digits': [...]} of an image's readings (reader.Reading), with the single-digit fields
    ('digit', 'probability', 'top3') when the image holds one digit."""
    digits = [{**describe(r.probabilities), 'digit': r.digit, 'box': list(r.box)} for r in readings]
    single = {k: digits[0][k] for k in ('digit', 'probability', 'top3')} if len(digits) == 1 else {}
    return {**single, 'text': reader.text_of(readings), 'digits': digits}


def describe(probabilities: np.ndarray) -> dict:
    """{'digit', 'probability', 'top3': [{'digit', 'probability'} x 3]} from one image's [classes] probabilities
    (the most probable digit's; describe_reading sets 'digit' to None for a refused mark)."""
    order = np.argsort(-probabilities)[:3]
    top3 = [{'digit': int(k), 'probability': float(probabilities[k])} for k in order]
    return {'digit': top3[0]['digit'], 'probability': top3[0]['probability'], 'top3': top3}


def format_prediction(p: dict) -> str:
    """'seven.png: 7 (99.1%)  next 1 (0.5%), 2 (0.2%)' for one digit, 'a.png: ? (not read as a digit; at most 4
    (31.0%), ...)' for a refused mark; 'photo.jpg: 2026  (2 99.9%, 0 99.8%, ...)' for a number, '?' refused."""
    if 'digit' in p:
        top = ', '.join(f'{t["digit"]} ({100 * t["probability"]:.1f}%)' for t in p['top3'][p['digit'] is not None:])
        if p['digit'] is None:
            return f'{p["file"]}: {reader.REFUSED} (not read as a digit; at most {top})'
        return f'{p["file"]}: {p["digit"]} ({100 * p["probability"]:.1f}%)  next {top}'
    each = ', '.join(f'{reader.REFUSED if d["digit"] is None else d["digit"]} {100 * d["probability"]:.1f}%'
                     for d in p['digits'])
    return f'{p["file"]}: {p["text"]}  ({each})'


def preprocessed_names(path: str, count: int) -> list[str]:
    """What --save_preprocessed calls the 28x28 images of path: <name>.png, or <name>-1.png ... for a number."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return [f'{stem}.png'] if count == 1 else [f'{stem}-{i + 1}.png' for i in range(count)]

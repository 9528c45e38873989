"""Classifies a user's own digit images with an exported model (the library side of digits.predict)."""
import os

import numpy as np

from digits import export, images, run_dir
from digits.config import PredictConfig
from digits.errors import DigitsError


def classify_files(config: PredictConfig, log=print, warn=print) -> tuple[list[dict], list[str]]:
    """Predictions for the files that could be read, and one error line per file that could not.

    Each prediction: {'file', 'digit', 'probability', 'top3': [{'digit', 'probability'} x 3]}.
    """
    module = export.load(config.model)
    if config.save_preprocessed:
        run_dir.check_writable(config.save_preprocessed, f'--save_preprocessed ({config.save_preprocessed})')
    digits, errors, paths = [], [], []
    for path in config.files:
        try:
            digits.append(images.load_digit(path))
            paths.append(path)
        except DigitsError as e:
            errors.append(str(e))
            warn(f'error: {e}')
    predictions = []
    if digits:
        batch = np.stack(digits)  # [n, 28, 28] uint8
        probabilities = module.serve(batch)['probabilities'].numpy()
        for path, digit, probs in zip(paths, digits, probabilities):
            predictions.append({'file': path, **describe(probs)})
            log(format_prediction(predictions[-1]))
            if config.save_preprocessed:
                images.write_png(preprocessed_path(config.save_preprocessed, path), digit)
    if config.output_json:
        run_dir.write_json(config.output_json, predictions)
    return predictions, errors


def describe(probabilities: np.ndarray) -> dict:
    """{'digit', 'probability', 'top3': [{'digit', 'probability'} x 3]} from one image's [classes] probabilities."""
    order = np.argsort(-probabilities)[:3]
    top3 = [{'digit': int(k), 'probability': float(probabilities[k])} for k in order]
    return {'digit': top3[0]['digit'], 'probability': top3[0]['probability'], 'top3': top3}


def format_prediction(p: dict) -> str:
    """'seven.png: 7 (99.1%)  next 1 (0.5%), 2 (0.2%)'."""
    others = ', '.join(f'{t["digit"]} ({100 * t["probability"]:.1f}%)' for t in p['top3'][1:])
    return f'{p["file"]}: {p["digit"]} ({100 * p["probability"]:.1f}%)  next {others}'


def preprocessed_path(directory: str, path: str) -> str:
    """Where --save_preprocessed puts the 28x28 image of path: <dir>/<file name without extension>.png."""
    return os.path.join(directory, os.path.splitext(os.path.basename(path))[0] + '.png')

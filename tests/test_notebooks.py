"""notebooks/: each notebook runs top to bottom in a real Jupyter kernel, on the tiny data and smoke run."""
import os

import nbformat
from conftest import ROOT
from nbclient import NotebookClient


def execute(name: str) -> nbformat.NotebookNode:
    """Runs notebooks/<name> in a fresh python3 kernel from notebooks/ (as Jupyter would); returns it."""
    notebook = nbformat.read(os.path.join(ROOT, 'notebooks', name), as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name='python3',
                   resources={'metadata': {'path': os.path.join(ROOT, 'notebooks')}}).execute()
    return notebook


def outputs(notebook) -> tuple[str, int]:
    """All printed text, and the number of images displayed."""
    text, images = [], 0
    for cell in notebook.cells:
        for output in cell.get('outputs', []):
            text.append(output.get('text', ''))
            images += 'image/png' in output.get('data', {})
    return ''.join(text), images


def test_explore_data_notebook(tiny_data_dir, monkeypatch):
    monkeypatch.setenv('DIGITS_DATA_DIR', tiny_data_dir)
    text, images = outputs(execute('explore_data.ipynb'))
    assert 'train: images (640, 28, 28) uint8' in text and 'test: images (203, 28, 28) uint8' in text
    assert 'batch: (32, 28, 28, 1)' in text
    assert images == 3  # examples, class means, augmented batch


def test_analyze_run_notebook(smoke_run, monkeypatch):
    cfg, results, _ = smoke_run
    monkeypatch.setenv('DIGITS_DATA_DIR', cfg.data_dir)
    monkeypatch.setenv('DIGITS_RUN_DIR', cfg.run_dir)
    monkeypatch.setenv('DIGITS_MODEL_DIR', cfg.export_dir)
    text, images = outputs(execute('analyze_run.ipynb'))
    assert f'test accuracy {100 * results["test_accuracy"]:.2f}% on 203 examples' in text
    assert "'train/loss'" in text and 'expected calibration error' in text
    assert images == 5  # curves, confusion, mistakes, per-class, reliability

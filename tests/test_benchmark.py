"""scripts/benchmark.py runs every contestant and reports consistent figures (it times nothing here)."""
import importlib.util
import json
import os
import subprocess
import sys

import keras

from conftest import ROOT


def test_benchmark_reports_each_contestant_and_the_ratios(tiny_data_dir, tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, 'scripts/benchmark.py', f'--data_dir={tiny_data_dir}', '--steps=10',
         '--steps_per_loop=5', '--repeats=2', f'--json={out}'],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    rates = summary['images_per_sec']
    assert set(rates) == {'digits', 'digits_1step', 'digits_xla', 'keras_fit', 'keras_fit_nojit',
                          'keras_fit_arrays', 'pipeline', 'bare_step'}
    assert all(len(summary['repeats'][name]) == 2 and rate > 0 for name, rate in rates.items())
    best_fit = max(rates['keras_fit'], rates['keras_fit_nojit'], rates['keras_fit_arrays'])
    assert summary['digits_vs_best_fit'] == rates['digits'] / best_fit
    assert summary['pipeline_vs_digits'] == rates['pipeline'] / rates['digits']
    assert summary['bare_step_vs_best_fit'] == rates['bare_step'] / best_fit
    assert summary['digits_vs_bare_step'] == rates['digits'] / rates['bare_step']
    assert f'digits / best model.fit   {summary["digits_vs_best_fit"]:.2f}x' in proc.stdout


def test_benchmark_rejects_bad_arguments_in_one_line():
    proc = subprocess.run([sys.executable, 'scripts/benchmark.py', '--steps=30', '--steps_per_loop=20'],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        'benchmark: error: --steps (30) must be a multiple of --steps_per_loop (20)')


def test_benchmark_runs_its_contestants_in_bfloat16(tiny_data_dir, tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, 'scripts/benchmark.py', f'--data_dir={tiny_data_dir}', '--steps=4', '--steps_per_loop=2',
         '--repeats=1', '--precision=mixed_bfloat16', '--only=digits,keras_fit,bare_step', f'--json={out}'],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary['precision'] == 'mixed_bfloat16'
    assert set(summary['images_per_sec']) == {'digits', 'keras_fit', 'bare_step'}
    assert ', mixed_bfloat16, ' in proc.stdout.splitlines()[0]


def test_keras_contestant_computes_in_the_requested_precision_and_restores_the_policy():
    spec = importlib.util.spec_from_file_location('benchmark', os.path.join(ROOT, 'scripts', 'benchmark.py'))
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    model = benchmark.keras_io_convnet('mixed_bfloat16')
    assert model.layers[0].compute_dtype == 'bfloat16' and model.layers[0].variable_dtype == 'float32'
    assert model.layers[-1].compute_dtype == 'float32'  # the softmax
    assert keras.mixed_precision.dtype_policy().name == 'float32'
    assert benchmark.keras_io_convnet('float32').layers[0].compute_dtype == 'float32'

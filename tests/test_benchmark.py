"""scripts/benchmark.py runs every contestant and reports consistent figures (it times nothing here)."""
import json
import os
import subprocess
import sys

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
    assert set(rates) == {'digits', 'digits_xla', 'keras_fit', 'keras_fit_nojit', 'keras_fit_arrays', 'pipeline'}
    assert all(len(summary['repeats'][name]) == 2 and rate > 0 for name, rate in rates.items())
    best_fit = max(rates['keras_fit'], rates['keras_fit_nojit'], rates['keras_fit_arrays'])
    assert summary['digits_vs_best_fit'] == rates['digits'] / best_fit
    assert summary['pipeline_vs_digits'] == rates['pipeline'] / rates['digits']
    assert f'digits / best model.fit   {summary["digits_vs_best_fit"]:.2f}x' in proc.stdout


def test_benchmark_rejects_bad_arguments_in_one_line():
    proc = subprocess.run([sys.executable, 'scripts/benchmark.py', '--steps=30', '--steps_per_loop=20'],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        'benchmark: error: --steps (30) must be a multiple of --steps_per_loop (20)')

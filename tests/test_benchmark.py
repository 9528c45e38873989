"""support.benchmark (scripts/benchmark.py's library), in-process: every contestant runs, the summary's
arithmetic, argument errors; and the script as a user runs it.

It times nothing: a benchmark's figures are for scripts, never for tests (machines differ 3-4x).
"""
import json
import os
import subprocess
import sys

import keras
import pytest
from conftest import ROOT

from digits.errors import DigitsError
from support import benchmark


def tiny(data_dir, **kwargs) -> benchmark.BenchmarkConfig:
    return benchmark.BenchmarkConfig(**{'data_dir': data_dir, 'steps': 2, 'steps_per_loop': 2, 'repeats': 1,
                                        **kwargs})


def test_benchmark_runs_every_contestant_and_reports_consistent_ratios(tiny_data_dir, tmp_path, capsys):
    """XLA (digits_xla) is a DigitsLoop with jit_compile, whose step test_distribute checks; compiling it
    here would cost more than the rest together."""
    names = tuple(name for name in benchmark.CONTESTANTS if name != 'digits_xla')
    out = tmp_path / 'bench.json'
    benchmark.run_benchmark(tiny(tiny_data_dir, only=names, json=str(out)))
    summary = json.loads(out.read_text())
    rates = summary['images_per_sec']
    assert set(rates) == set(names)
    assert all(len(summary['repeats'][name]) == 1 and rate > 0 for name, rate in rates.items())
    best_fit = max(rates['keras_fit'], rates['keras_fit_nojit'], rates['keras_fit_arrays'])
    assert summary['digits_vs_best_fit'] == rates['digits'] / best_fit
    assert summary['bare_step_vs_best_fit'] == rates['bare_step'] / best_fit
    assert f'digits / best model.fit   {summary["digits_vs_best_fit"]:.2f}x' in capsys.readouterr().out


def test_summary_is_medians_and_their_ratios():
    cfg = benchmark.BenchmarkConfig(steps=10, steps_per_loop=5)
    rates = {'digits': [100.0, 300.0, 200.0], 'keras_fit': [50.0, 150.0, 100.0], 'keras_fit_arrays': [80.0] * 3,
             'pipeline': [4000.0] * 3, 'bare_step': [250.0] * 3}
    summary = benchmark.summarize(rates, cfg)
    assert summary['images_per_sec'] == {'digits': 200.0, 'keras_fit': 100.0, 'keras_fit_arrays': 80.0,
                                         'pipeline': 4000.0, 'bare_step': 250.0}
    assert summary['digits_vs_best_fit'] == 2.0 and summary['digits_vs_fit_arrays'] == 2.5
    assert summary['pipeline_vs_digits'] == 20.0 and summary['digits_vs_bare_step'] == 0.8
    assert summary['bare_step_vs_best_fit'] == 2.5
    assert 'digits_vs_best_fit' not in benchmark.summarize({'digits': [1.0], 'pipeline': [2.0]}, cfg)


def test_benchmark_runs_its_contestants_in_bfloat16(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    benchmark.run_benchmark(tiny(tiny_data_dir, steps=4, precision='mixed_bfloat16',
                                 only=('digits', 'keras_fit', 'bare_step'), json=str(out)))
    summary = json.loads(out.read_text())
    assert summary['precision'] == 'mixed_bfloat16'
    assert set(summary['images_per_sec']) == {'digits', 'keras_fit', 'bare_step'}
    assert ', mixed_bfloat16, ' in capsys.readouterr().out.splitlines()[0]
    assert keras.mixed_precision.dtype_policy().name == 'float32'  # nothing leaked to later tests


def test_benchmark_measures_the_cnn_variants_it_is_given(tiny_data_dir, tmp_path):
    out = tmp_path / 'bench.json'
    benchmark.run_benchmark(tiny(tiny_data_dir, only=('bare_step',), cnn=('8x3x1x1', '4x2x2x1'), json=str(out)))
    assert set(json.loads(out.read_text())['images_per_sec']) == {'bare_step', 'cnn_8x3x1x1', 'cnn_4x2x2x1'}
    assert conv_filters(benchmark.create_cnn('8x3x1x1', 'float32')) == [8, 16, 32]
    assert conv_filters(benchmark.create_cnn('4x2x3x3', 'float32')) == [4, 4, 4, 8, 8, 8]
    assert conv_filters(benchmark.create_cnn('4x2x3x1', 'float32')) == [4, 8, 8, 8]


def conv_filters(net) -> list[int]:
    """The output channels of a cnn's convolutions, in order."""
    return [layer.filters for layer in net.blocks.layers if isinstance(layer, keras.layers.Conv2D)]


@pytest.mark.parametrize('spec', ['32x2', '32x2x2', '32x0x2x1', 'ax2x2x1', '16x3x2x0', '16x3x2x1x1'])
def test_benchmark_refuses_a_malformed_cnn(spec):
    with pytest.raises(DigitsError, match=rf'^--cnn \({spec}\) must be WIDTHxBLOCKSxCONVSxFIRST \(--width, '):
        benchmark.check_config(benchmark.BenchmarkConfig(cnn=(spec,)))


def test_the_script_is_quiet_and_its_errors_are_one_line():
    """As a user runs it: --help and --helpfull exit 0 with no TensorFlow start-up lines; a bad value is one line."""
    script = os.path.join(ROOT, 'scripts', 'benchmark.py')
    for flag in ('--help', '--helpfull'):
        shown = subprocess.run([sys.executable, script, flag], capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0 and shown.stderr == '' and '--cnn' in shown.stdout
    bad = subprocess.run([sys.executable, script, '--steps=30', '--steps_per_loop=20'], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr == 'benchmark: error: --steps (30) must be a multiple of --steps_per_loop (20)\n'

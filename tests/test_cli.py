"""The entry points run as a user runs them: python -m digits.train / digits.evaluate, scripts/."""
import glob
import json
import os
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from conftest import ROOT, TINY_TEST, run_module

TF_NOISE = ('I0000', 'W0000', 'E0000', 'WARNING: All log messages')


def error_lines(stderr: str) -> list[str]:
    """stderr without TensorFlow's C++ start-up lines (printed before any setting applies)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(TF_NOISE)
            and not line.startswith('To enable the following instructions')]


@pytest.fixture(scope='module')
def cli_run(tmp_path_factory, tiny_data_dir):
    """python -m digits.train --flagfile=configs/smoke.cfg on the tiny data; returns (tmp, results)."""
    tmp = tmp_path_factory.mktemp('cli')
    started = time.time()
    proc = run_module('digits.train', '--flagfile=configs/smoke.cfg', f'--data_dir={tiny_data_dir}',
                      f'--logdir={tmp}/logs', '--run_name=e2e', f'--export_dir={tmp}/models/e2e')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == '', proc.stderr[-3000:]  # TensorFlow's start-up chatter is silenced (cli.load_tensorflow)
    with open(tmp / 'logs' / 'e2e' / 'results.json') as f:
        results = json.load(f)
    results['test_seconds'] = time.time() - started  # the whole process, as the test saw it
    return tmp, results, proc.stdout


def test_train_prints_progress_and_writes_outputs(cli_run, tiny_data_dir):
    tmp, results, stdout = cli_run
    assert 'train  step' in stdout and 'done   test accuracy' in stdout
    assert results['test_examples'] == TINY_TEST
    assert os.path.isfile(tmp / 'models' / 'e2e' / 'saved_model.pb')
    assert os.path.isfile(tmp / 'logs' / 'e2e' / 'config.json')
    assert os.readlink(tmp / 'models' / 'latest') == 'e2e'  # models/latest: the newest export beside it
    # The default's marks that are not digits (--negatives=0.1) are counted apart from the digits.
    assert stdout.splitlines()[0].startswith(f'digits: mnist_10k (read from {tiny_data_dir}): 640 train + 64 not '
                                             f'digits / ')
    assert (results['dataset'], results['data_source'], results['train_examples'], results['train_negatives']) == (
        'mnist_10k', f'read from {tiny_data_dir}', 640, 64)
    # Time to first step counts from the process start (imports included), so it exceeds nothing of
    # the process's own and falls inside the time the test waited for it.
    assert 0 < results['time_to_first_step'] < results['test_seconds']
    assert results['wall_seconds'] < results['test_seconds']


def test_start_clock_ignores_the_shell_commands_before_it():
    """`bash -c 'a; python ...'` execs python in the shell's own process: what `a` took is not start-up."""
    started = time.time()
    probe = f"{sys.executable} -c 'import digits; print(digits.PROCESS_START)'"
    proc = subprocess.run(['bash', '-c', f'sleep 2; {probe}'], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    assert float(proc.stdout) - started >= 2  # the clock started after the sleep, not with the shell


@pytest.mark.parametrize('source', ['model', 'run_dir'])
def test_evaluate_reproduces_results_exactly(cli_run, tiny_data_dir, source):
    tmp, results, _ = cli_run
    target = f'--model={tmp}/models/e2e' if source == 'model' else f'--run_dir={tmp}/logs/e2e'
    out = tmp / f'eval-{source}.json'
    proc = run_module('digits.evaluate', target, f'--data_dir={tiny_data_dir}', f'--output_json={out}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        metrics = json.load(f)
    assert metrics['num_examples'] == TINY_TEST
    assert metrics['accuracy'] == results['test_accuracy']  # exactly: same model, same examples
    assert metrics['loss'] == pytest.approx(results['test_loss'], rel=1e-6)
    assert f'({TINY_TEST} examples)' in proc.stdout


def test_evaluate_runs_script_prints_a_table(cli_run, tiny_data_dir):
    tmp, results, _ = cli_run
    proc = run_module_script('scripts/evaluate_runs.py', f'--logdir={tmp}/logs', f'--data_dir={tiny_data_dir}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith('| e2e ')]
    assert len(rows) == 1 and f'{100 * results["test_accuracy"]:.2f}%' in rows[0] and 'export' in rows[0]


def console_scripts() -> list[str]:
    """The digits-* commands pyproject.toml installs."""
    import tomllib
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        return sorted(tomllib.load(f)['project']['scripts'])


def test_every_installed_command_has_help_that_exits_0():
    """digits-train, -evaluate, -predict, -serve, -convert and -sweep as pip installs them: --help and
    --helpfull exit 0 with the command's own text and nothing on stderr."""
    assert console_scripts() == ['digits-convert', 'digits-evaluate', 'digits-predict', 'digits-serve', 'digits-sweep',
                                 'digits-train']
    for command in console_scripts():
        for flag in ('--help', '--helpfull'):
            proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), command), flag], capture_output=True,
                                  text=True, timeout=120, cwd='/')
            assert proc.returncode == 0 and proc.stderr == '', (command, flag, proc.stderr[-2000:])
            assert 'python -m digits.' in proc.stdout and '--' in proc.stdout, (command, flag)


SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, 'scripts', '*.py')))


@pytest.mark.parametrize('script', SCRIPTS)
def test_every_script_has_quiet_help_that_exits_0(script):
    """The developer tools start as quietly as the commands: --help exits 0, nothing on stderr."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', script), '--help'], capture_output=True,
                          text=True, timeout=120, cwd='/')
    assert proc.returncode == 0 and proc.stderr == '' and '--' in proc.stdout, (script, proc.stderr[-2000:])


def run_module_script(path, *args):
    import subprocess
    return subprocess.run([sys.executable, os.path.join(ROOT, path), *args], capture_output=True, text=True,
                          timeout=300, cwd='/')


@pytest.mark.parametrize('module,args,message', [
    ('digits.train', ['--batch_size=-3'], '--batch_size (-3) must be positive'),
    ('digits.train', ['--arch=resnet'], "flag --arch=resnet: value should be one of <cnn|simple|line>"),
    ('digits.train', ['--model=cnn'], '--model is --arch in digits.train (--model names an export in evaluate, '
                                      'predict and serve)'),
    ('digits.train', ['--epochs=many'], "flag --epochs=many: invalid literal for int() with base 10: 'many'"),
    ('digits.train', ['--no_such_flag'], 'Unknown command line flag'),
    ('digits.train', ['extra'], 'unexpected arguments: extra'),
    ('digits.evaluate', [], 'pass exactly one of --model=<export dir> or --run_dir'),
])
def test_flag_errors_are_one_line_without_tensorflow(module, args, message):
    proc = run_module(module, *args, timeout=60)
    lines = proc.stderr.strip().splitlines()  # exactly one line: TensorFlow is not even imported
    assert proc.returncode == 2
    assert len(lines) == 1 and lines[0].startswith(f'{module}: error: ') and message in lines[0], lines


@pytest.mark.parametrize('module,args,message', [
    ('digits.train', ['--data_dir=/nonexistent'], '--data_dir (/nonexistent) is not a directory'),
    ('digits.evaluate', ['--model=/nonexistent'], '--model (/nonexistent) is not an exported SavedModel'),
    ('digits.evaluate', ['--run_dir=/nonexistent'], 'cannot read /nonexistent/config.json'),
])
def test_runtime_errors_are_one_line(tmp_path, module, args, message):
    proc = run_module(module, *args, f'--logdir={tmp_path}', timeout=120) if module == 'digits.train' \
        else run_module(module, *args, timeout=120)
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f'{module}: error: ') and message in lines[0], lines
    assert not os.listdir(tmp_path)  # a run that failed before training leaves no run folder


def test_bad_data_file_is_one_line(tmp_path, tiny_data_dir):
    import shutil
    shutil.copytree(tiny_data_dir, tmp_path / 'data')
    (tmp_path / 'data' / 't10k-labels-idx1-ubyte.gz').write_bytes(b'\x1f\x8bgarbage')
    proc = run_module('digits.train', f'--data_dir={tmp_path}/data', f'--logdir={tmp_path}/logs', timeout=120)
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and 't10k-labels-idx1-ubyte.gz: cannot read' in lines[0]


def test_evaluate_writes_a_report(cli_run, tiny_data_dir):
    tmp, results, _ = cli_run
    report = tmp / 'report'
    proc = run_module('digits.evaluate', f'--model={tmp}/models/e2e', f'--data_dir={tiny_data_dir}',
                      f'--report_dir={report}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (report / 'report.md').read_text()
    assert f'accuracy **{100 * results["test_accuracy"]:.2f}%** on {TINY_TEST} examples' in text
    for name in ('confusion.png', 'errors.png', 'per_class.png', 'reliability.png'):
        assert f']({name})' in text
        image = tf.io.decode_png((report / name).read_bytes()).numpy()
        assert image.shape[0] > 100 and image.shape[1] > 300 and image.std() > 10, name
    assert text.count('\n| ') == 12  # header, separator, 10 classes


def test_error_after_tensorflow_loads_is_the_only_stderr_line(cli_run, tmp_path):
    proc = run_module('digits.evaluate', f'--model={cli_run[0]}/models/e2e', f'--data_dir={tmp_path / "missing"}')
    assert proc.returncode == 2
    missing = tmp_path / 'missing'
    assert proc.stderr.splitlines() == [f'digits.evaluate: error: --data_dir ({missing}) is not a directory']


def test_tensorflow_messages_come_back_when_asked_for(cli_run, tmp_path):
    proc = run_module('digits.evaluate', f'--model={cli_run[0]}/models/e2e', f'--data_dir={tmp_path / "missing"}',
                      env={'TF_CPP_MIN_LOG_LEVEL': '0'})
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) > 1
    assert proc.stderr.splitlines()[-1].startswith('digits.evaluate: error: --data_dir')

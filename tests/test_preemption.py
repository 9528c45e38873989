"""digits.training.preemption: SIGTERM / SIGINT save a checkpoint and stop, in-process and as a user's process."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from conftest import ROOT

from digits.errors import Interrupted
from digits.training import preemption
from support import local_cluster


def test_signal_stop_saves_at_the_current_step_and_raises():
    saved = []
    before = signal.getsignal(signal.SIGTERM)
    with preemption.SignalStop() as stop:
        stop.check(10, saved.append)
        assert saved == []  # no signal yet: nothing happens
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(Interrupted, match=r'SIGTERM: checkpoint saved at step 20') as info:
            stop.check(20, lambda step: saved.append(step) or f'ckpt-{step}')
    assert saved == [20] and info.value.exit_code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back


def start_training(tmp_path, data_dir, *extra):
    """digits.train on the tiny data, long enough to be interrupted, printing unbuffered."""
    args = [sys.executable, '-m', 'digits.train', f'--data_dir={data_dir}', '--arch=simple', '--line_steps=0',
            '--batch_size=32', '--steps_per_loop=5', '--log_every_steps=5', '--checkpoint_every_steps=100000',
            f'--logdir={tmp_path}/logs', '--run_name=r', f'--export_dir={tmp_path}/models/r', *extra]
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc, prefix: str, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix) or not line:
            return line
    raise AssertionError(f'no line starting with {prefix!r} within {timeout}s')


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_and_exits_cleanly(tmp_path, tiny_data_dir, signum):
    proc = start_training(tmp_path, tiny_data_dir, '--train_steps=100000')
    try:
        assert wait_for_line(proc, 'train  step').startswith('train  step')
        proc.send_signal(signum)
        # Generous for a slow machine: the run stops at the end of its current 5-step call.
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = [line for line in stderr.splitlines() if line.startswith('digits.train:')]
    assert proc.returncode == 128 + signum, stderr[-2000:]
    assert len(lines) == 1 and 'Traceback' not in stderr, stderr[-2000:]
    step = int(lines[0].split('checkpoint saved at step ')[1].split()[0])
    assert lines[0].startswith(f'digits.train: {signal.Signals(signum).name}: checkpoint saved at step {step}')
    latest = tf.train.latest_checkpoint(tmp_path / 'logs' / 'r' / 'checkpoints')
    assert latest.endswith(f'ckpt-{step}')  # the only checkpoint: the interval was never reached

    if signum == signal.SIGINT:
        return  # resuming is the same after either signal: the SIGTERM case checks it
    # The same command, shortened, resumes from that step and finishes.
    proc = start_training(tmp_path, tiny_data_dir, f'--train_steps={step + 10}')
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    assert f'resumed from step {step}' in stdout
    with open(tmp_path / 'logs' / 'r' / 'results.json') as f:
        assert json.load(f)['global_step'] == step + 10


def test_sigterm_to_one_worker_stops_all_workers_at_the_same_checkpoint(tmp_path, tiny_data_dir):
    """multi_worker: TensorFlow's PreemptionCheckpointHandler spreads one worker's SIGTERM to all."""
    ports, procs = local_cluster.free_ports(2), []
    args = [sys.executable, '-m', 'digits.train', '--strategy=multi_worker', '--arch=simple', '--line_steps=0',
            f'--data_dir={tiny_data_dir}', '--batch_size=32', '--train_steps=100000', '--steps_per_loop=5',
            '--log_every_steps=5', '--checkpoint_every_steps=100000', f'--logdir={tmp_path}/logs',
            '--run_name=mw', f'--export_dir={tmp_path}/models/mw']
    try:
        for index in range(2):
            env = dict(os.environ, PYTHONUNBUFFERED='1',
                       TF_CONFIG=local_cluster.tf_config(ports, index))
            procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        assert wait_for_line(procs[1], 'train  step').startswith('train  step')
        procs[1].send_signal(signal.SIGTERM)
        stderrs = [p.communicate(timeout=90)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    lines = [[line for line in err.splitlines() if line.startswith('digits.train:')] for err in stderrs]
    assert [p.returncode for p in procs] == [143, 143], stderrs[0][-2000:] + stderrs[1][-2000:]
    steps = {int(ls[0].split('checkpoint saved at step ')[1].split()[0]) for ls in lines}
    assert len(steps) == 1, lines  # both workers saved at the same step
    latest = tf.train.latest_checkpoint(tmp_path / 'logs' / 'mw' / 'checkpoints')
    assert latest.endswith(f'ckpt-{steps.pop()}')
    assert not [f for f in os.listdir(tmp_path / 'logs' / 'mw') if f.startswith('.worker')]

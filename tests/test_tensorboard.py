"""A real `tensorboard` server on a loopback port serves a smoke run's scalars, images and hparams."""
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def server(smoke_run):
    """`tensorboard --logdir <smoke logdir>` on 127.0.0.1; yields its base URL; always stopped."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, '-m', 'tensorboard.main', f'--logdir={smoke_run[0].logdir}', '--host=127.0.0.1',
         f'--port={port}', '--load_fast=false', '--reload_interval=1'],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield f'http://127.0.0.1:{port}', proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(url: str, body: dict | None = None):
    """GET (or POST body as JSON) and decode the JSON answer."""
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={'Content-Type': 'application/json', 'X-XSRF-Protected': '1'})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(url: str, proc, ready, timeout: float = 60):
    """Polls url until ready(answer) is true (the server loads the event files in the background)."""
    deadline, answer = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f'tensorboard exited: {proc.stderr.read().decode()[-2000:]}')
        try:
            answer = get(url)
            if ready(answer):
                return answer
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    pytest.fail(f'{url} not ready after {timeout}s; last answer {answer}')


def test_tensorboard_serves_the_run(server):
    base, proc = server
    runs = wait_for(f'{base}/data/runs', proc, lambda r: {'smoke/train', 'smoke/eval'} <= set(r))
    assert 'smoke' in runs  # the session directory, holding the hparams
    scalars = wait_for(f'{base}/data/plugin/scalars/tags', proc, lambda t: 'eval/accuracy' in t.get('smoke/eval', {}))
    assert {'train/loss', 'train/learning_rate', 'train/grad_norm'} <= set(scalars['smoke/train'])
    assert 'eval/class_accuracy/7' in scalars['smoke/eval']
    images = get(f'{base}/data/plugin/images/tags')
    assert 'train/inputs' in images['smoke/train']
    assert {'eval/confusion_matrix', 'eval/worst_errors'} <= set(images['smoke/eval'])
    experiment = get(f'{base}/data/plugin/hparams/experiment', {'experimentName': ''})
    names = {info['name'] for info in experiment['hparamInfos']}
    assert {'arch', 'batch_size', 'learning_rate', 'optimizer'} <= names
    metrics = {(m['name'].get('group', ''), m['name']['tag']) for m in experiment['metricInfos']}
    assert ('eval', 'eval/accuracy') in metrics

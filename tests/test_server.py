"""python -m digits.serve as a user runs it: a real server process on a loopback port, always stopped.

Every endpoint, every bad request (the server still answering afterwards), a bounded load test."""
import base64
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, bomb_bytes, make_digits, start_server, stop
from digits import export, images, reader, synthetic, traffic

MAX_BODY_MB = 0.5


@pytest.fixture(scope='module')
def server(smoke_run):
    proc, url = start_server(smoke_run[0].export_dir, f'--max_body_mb={MAX_BODY_MB}')
    try:
        yield url
    finally:
        if proc.poll() is None:
            stop(proc)


def request(url: str, body: bytes | None = None, method: str | None = None) -> tuple[int, bytes, str]:
    """(status, body, content type) of one request; 4xx and 5xx answers are returned, not raised."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method=method), timeout=30) as response:
            return response.status, response.read(), response.headers['Content-Type']
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers['Content-Type']


@pytest.fixture(scope='module')
def digits_and_expected(smoke_run):
    """PNG files of tiny test digits and what the export reads in each (the same code, in-process)."""
    module = export.load(smoke_run[0].export_dir)
    bodies = synthetic.png_digits(make_digits(24, 9)[0])  # dark on white, enlarged
    probabilities = lambda batch: module.serve(batch)['probabilities'].numpy()
    readings = [reader.read(images.decode_image(body, 'test'), probabilities, 'test') for body in bodies]
    assert all(len(r) == 1 for r in readings)
    return bodies, np.stack([r[0].probabilities for r in readings])


def test_the_page_and_only_its_files_are_served(server):
    status, page, content_type = request(server + '/')
    assert status == 200 and content_type.startswith('text/html')
    for element in ('id="pad"', 'id="clear"', 'id="digit"', 'id="bars"', 'id="seen"', '/static/app.js'):
        assert element.encode() in page
    assert b'http' not in page.replace(b'http-equiv', b'')  # nothing from a CDN: the page works offline
    for name, kind in (('app.js', 'text/javascript'), ('style.css', 'text/css')):
        status, _, content_type = request(f'{server}/static/{name}')
        assert status == 200 and content_type.startswith(kind)
    for path in ('/static/server.py', '/static/..%2fserver.py', '/static/%2e%2e/%2e%2e/README.md', '/digits/server.py',
                 '/static/', '/etc/passwd'):
        status, body, content_type = request(server + path)
        assert status == 404 and content_type == 'application/json' and 'error' in json.loads(body), path


def digit_read(probabilities: np.ndarray) -> int | None:
    """The digit the reader answers for these probabilities: None when no digit is more likely than not."""
    return int(probabilities.argmax()) if probabilities.max() >= reader.REFUSE_BELOW else None


def test_api_predict_reads_an_image_file(server, digits_and_expected):
    bodies, expected = digits_and_expected
    status, body, content_type = request(server + '/api/predict', bodies[0])
    answer = json.loads(body)
    assert status == 200 and content_type == 'application/json'
    assert answer['digit'] == digit_read(expected[0])
    assert answer['probabilities'] == pytest.approx(expected[0].tolist(), abs=1e-6)
    assert [t['digit'] for t in answer['top3']] == list(np.argsort(-expected[0])[:3])
    assert answer['probability'] == answer['top3'][0]['probability']
    seen = Image.open(io.BytesIO(base64.b64decode(answer['image'].split(',', 1)[1])))
    assert answer['image'].startswith('data:image/png;base64,') and seen.size == (28, 28)


def test_api_predict_reads_a_number_digit_by_digit(server, smoke_run):
    """A number's answer: its text and each digit's fields and box, as the reader reads it in-process; the
    single-digit fields are left out (they describe one digit)."""
    page = np.concatenate([synthetic.render_strokes(synthetic.STROKES[d], 16) for d in (2, 0, 2, 6)], axis=1)
    body = io.BytesIO()
    Image.fromarray((page[..., 0] * 255).astype(np.uint8)).save(body, format='PNG')
    module = export.load(smoke_run[0].export_dir)
    want = reader.read(page, lambda batch: module.serve(batch)['probabilities'].numpy(), 'pad')
    status, answer, _ = request(server + '/api/predict', body.getvalue())
    answer = json.loads(answer)
    assert status == 200 and len(want) == len(answer['digits']) == 4 and 'digit' not in answer
    assert answer['text'] == reader.text_of(want)
    for got, expected in zip(answer['digits'], want):
        assert got['box'] == list(expected.box) and got['digit'] == expected.digit
        assert got['probabilities'] == pytest.approx(expected.probabilities.tolist(), abs=1e-6)
        assert got['image'].startswith('data:image/png;base64,') and len(got['top3']) == 3


def test_tf_serving_status_and_predict(server, digits_and_expected, smoke_run):
    status, body, _ = request(server + '/v1/models/digits')
    assert status == 200
    assert json.loads(body)['model_version_status'][0]['state'] == 'AVAILABLE'
    digits = make_digits(3, 4)[0].astype(np.float32) / 255
    module = export.load(smoke_run[0].export_dir)  # kept: its serve function needs its variables
    want = module.serve(digits)['probabilities'].numpy()
    for instances in (digits.tolist(), digits[..., None].tolist(), [{'images': d.tolist()} for d in digits]):
        status, body, _ = request(server + '/v1/models/digits:predict', json.dumps({'instances': instances}).encode())
        assert status == 200
        np.testing.assert_allclose(json.loads(body)['predictions'], want, atol=1e-6)


@pytest.mark.parametrize('path,body,method,status,message', [
    ('/api/predict', b'this is not an image', None, 400, 'not a PNG, JPEG, GIF or BMP image'),
    ('/api/predict', b'', 'POST', 400, 'the file is empty'),
    ('/api/predict', bomb_bytes('PNG', 50000, 50000), None, 413, 'too large to decode: 50000x50000 pixels'),
    ('/api/predict', b'x' * int(MAX_BODY_MB * 1e6 + 1), None, 413, 'larger than the server accepts'),
    ('/api/predict', None, 'GET', 405, 'GET is not allowed on /api/predict (allowed: POST)'),
    ('/', b'{}', 'DELETE', 405, 'DELETE is not allowed on /'),
    ('/v1/models/digits:predict', b'{"instances": [1, 2', None, 400, 'the body is not JSON'),
    ('/v1/models/digits:predict', b'{"inputs": []}', None, 400, 'expected {"instances": [...]}'),
    ('/v1/models/digits:predict', b'{"instances": [[1, 2, 3]]}', None, 400, 'instances have shape [3]'),
    ('/v1/models/digits:predict', b'{"instances": [[[1, "a"]]]}', None, 400, 'array of numbers'),
    ('/v1/models/nope:predict', b'{}', None, 404, 'no such path: /v1/models/nope:predict'),
])
def test_bad_requests_get_a_4xx_and_one_line_and_the_server_goes_on(server, path, body, method, status, message):
    got, answer, content_type = request(server + path, body, method)
    assert got == status and content_type == 'application/json'
    error = json.loads(answer)['error']
    assert message in error and '\n' not in error, error
    assert request(server + '/v1/models/digits')[0] == 200  # still serving


def test_eight_clients_at_once_all_get_correct_answers(server, digits_and_expected):
    bodies, expected = digits_and_expected
    load = traffic.run_load(server + '/api/predict', bodies, clients=8, requests=40, timeout=30)
    for c, client in enumerate(load['results']):
        assert len(client) == 40
        for i, (status, answer, _) in enumerate(client):
            assert status == 200 and answer['digit'] == digit_read(expected[(c + i * 8) % len(bodies)])
    figures = traffic.summarize(load)
    assert figures['requests'] == figures['ok'] == 320 and figures['median_ms'] <= figures['p99_ms']


def test_sigterm_stops_the_server_cleanly(smoke_run):
    proc, url = start_server(smoke_run[0].export_dir)
    assert request(url + '/')[0] == 200
    stdout, stderr = stop(proc)
    assert proc.returncode == 0 and 'digits.serve: stopped' in stdout, stderr[-2000:]


@pytest.mark.parametrize('args,message', [
    ([], '--model is required'), (['--model=m', '--port=70000'], '--port (70000) must be in [0, 65536)'),
    (['--model=m', '--max_body_mb=0'], '--max_body_mb (0.0) must be positive'),
    (['--model=/nonexistent'], '--model (/nonexistent) is not an exported SavedModel')])
def test_usage_errors_are_one_line(args, message):
    proc = subprocess.run([sys.executable, '-m', 'digits.serve', *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f'digits.serve: error: {message}'), lines

"""python -m digits.serve as a user runs it: a real server process on loopback ports, always stopped.

The page and /api/predict, TF Serving's REST API at every path, in both formats and both signatures,
every bad request (the server still answering afterwards), CORS, concurrent clients (batched: the same
answers as one call each), stalled connections, SIGTERM under load. gRPC: test_grpc_service.py."""
import base64
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import ROOT, SERVE_CORS_ORIGIN, SERVE_MAX_BODY_MB, bomb_bytes, make_digits
from PIL import Image

from digits.export import saved_model
from digits.reading import drawing, images, prediction, reader
from support import synthetic, traffic

MAX_BODY_MB = SERVE_MAX_BODY_MB
TF_SERVING_PATHS = ('/v1/models/digits', '/v1/models/digits/versions/1', '/v1/models/digits/labels/stable')


@pytest.fixture(scope='module')
def server(serving):
    return serving[0]


@pytest.fixture(scope='module')
def export_module(smoke_run):
    """The export read in-process: what every answer is compared with."""
    return saved_model.load(smoke_run[0].export_dir)


def request(url: str, body: bytes | None = None, method: str | None = None) -> tuple[int, bytes, str]:
    """(status, body, content type) of one request; 4xx and 5xx answers are returned, not raised."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method=method), timeout=30) as response:
            return response.status, response.read(), response.headers['Content-Type']
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers['Content-Type']


@pytest.fixture(scope='module')
def digits_and_expected(export_module):
    """PNG files of tiny test digits and what the export reads in each (the same code, in-process)."""
    module = export_module
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
    for path in ('/static/server.py', '/static/..%2fserver.py', '/static/%2e%2e/%2e%2e/README.md',
                 '/digits/serving/server.py', '/static/', '/etc/passwd'):
        status, body, content_type = request(server + path)
        assert status == 404 and content_type == 'application/json' and 'error' in json.loads(body), path


def digit_read(probabilities: np.ndarray) -> int | None:
    """The digit the reader answers for these probabilities: None when they say the mark is no digit."""
    return None if reader.is_refused(probabilities) else int(probabilities.argmax())


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


def test_api_predict_reads_a_number_digit_by_digit(server, export_module):
    """A number's answer: its text and each digit's fields and box, as the reader reads it in-process; the
    single-digit fields are left out (they describe one digit)."""
    page = np.concatenate([drawing.render_strokes(drawing.STROKES[d], 16) for d in (2, 0, 2, 6)], axis=1)
    body = io.BytesIO()
    Image.fromarray((page[..., 0] * 255).astype(np.uint8)).save(body, format='PNG')
    want = reader.read(page, lambda batch: export_module.serve(batch)['probabilities'].numpy(), 'pad')
    status, answer, _ = request(server + '/api/predict', body.getvalue())
    answer = json.loads(answer)
    assert status == 200 and len(want) == len(answer['digits']) == 4 and 'digit' not in answer
    assert answer['text'] == reader.text_of(want)
    for got, expected in zip(answer['digits'], want):
        assert got['box'] == list(expected.box) and got['digit'] == expected.digit
        assert got['probabilities'] == pytest.approx(expected.probabilities.tolist(), abs=1e-6)
        assert got['image'].startswith('data:image/png;base64,') and len(got['top3']) == 3


def in_process(module, signature: str, pixels: np.ndarray) -> dict:
    """What the export's own signature answers: {output: array}."""
    import tensorflow as tf
    outputs = module.signatures[signature](images=tf.constant(pixels))
    return {name: value.numpy() for name, value in outputs.items()}


@pytest.mark.parametrize('path', TF_SERVING_PATHS)
def test_tf_serving_status_and_metadata_at_each_path(server, path):
    status, body, _ = request(server + path)
    assert status == 200 and json.loads(body) == {'model_version_status': [
        {'version': '1', 'state': 'AVAILABLE', 'status': {'error_code': 'OK', 'error_message': ''}}]}
    status, body, _ = request(server + path + '/metadata')
    metadata = json.loads(body)
    assert status == 200 and metadata['model_spec'] == {'name': 'digits', 'version': '1', 'signature_name': ''}
    signatures = metadata['metadata']['signature_def']['signature_def']
    for name, dtype in (('serving_default', 'DT_FLOAT'), ('serving_uint8', 'DT_UINT8')):
        assert signatures[name]['inputs']['images']['dtype'] == dtype
        assert sorted(signatures[name]['outputs']) == ['logits', 'probabilities']
        assert signatures[name]['method_name'] == 'tensorflow/serving/predict'


@pytest.mark.parametrize('signature', ['serving_default', 'serving_uint8'])
def test_tf_serving_predict_rows_and_columns_match_the_export(server, export_module, signature):
    """Both formats, plain and named inputs, 28x28 and 28x28x1, at each path: the export's own answers."""
    digits = make_digits(3, 4)[0]
    pixels = digits if signature == 'serving_uint8' else digits.astype(np.float32) / 255
    want = in_process(export_module, signature, pixels)
    bodies = [{'instances': pixels.tolist()}, {'instances': [{'images': p[..., None].tolist()} for p in pixels]},
              {'inputs': pixels[..., None].tolist()}, {'inputs': {'images': pixels.tolist()}}]
    for i, body in enumerate(bodies):
        body = {'signature_name': signature, **body} if signature != 'serving_default' or i % 2 else body
        path = TF_SERVING_PATHS[i % len(TF_SERVING_PATHS)]
        status, answer, _ = request(f'{server}{path}:predict', json.dumps(body).encode())
        answer = json.loads(answer)
        assert status == 200, answer
        got = ({name: [row[name] for row in answer['predictions']] for name in want} if 'instances' in body
               else answer['outputs'])
        assert sorted(got) == ['logits', 'probabilities']
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-5)


@pytest.mark.parametrize('path,body,method,status,message', [
    ('/api/predict', b'this is not an image', None, 400, 'not a PNG, JPEG, GIF or BMP image'),
    ('/api/predict', b'', 'POST', 400, 'the file is empty'),
    ('/api/predict', bomb_bytes('PNG', 50000, 50000), None, 413, 'too large to decode: 50000x50000 pixels'),
    ('/api/predict', b'x' * int(MAX_BODY_MB * 1e6 + 1), None, 413, 'larger than the server accepts'),
    ('/api/predict', None, 'GET', 405, 'GET is not allowed on /api/predict (allowed: POST)'),
    ('/', b'{}', 'DELETE', 405, 'DELETE is not allowed on /'),
    ('/v1/models/digits:predict', b'{"instances": [1, 2', None, 400, 'the body is not JSON'),
    ('/v1/models/digits:predict', b'{"instance": []}', None, 400, 'one of "instances" (row format) or "inputs"'),
    ('/v1/models/digits:predict', b'{"instances": [[1, 2, 3]]}', None, 400, '"images" has shape [1, 3]'),
    ('/v1/models/digits:predict', b'{"instances": [[[1, "a"]]]}', None, 400, 'nested lists of numbers'),
    ('/v1/models/digits:predict', b'{"inputs": {"pixels": [[0]]}}', None, 400, 'one input, "images"'),
    ('/v1/models/digits:predict', json.dumps({'instances': [[[1.5] * 28] * 28]}).encode(), None, 400,
     'must be in [0, 1] (found 1.5 to 1.5)'),
    ('/v1/models/digits:predict', json.dumps({'signature_name': 'serving_uint8', 'instances': [[[0.5] * 28] * 28]})
     .encode(), None, 400, 'of serving_uint8 must be integers 0-255'),
    ('/v1/models/digits:predict', json.dumps({'signature_name': 'serving_uint8', 'instances': [[[256] * 28] * 28]})
     .encode(), None, 400, 'of serving_uint8 must be in [0, 255]'),
    ('/v1/models/digits:predict', b'{"signature_name": "serving_int8", "instances": [0]}', None, 400,
     '"serving_int8" not found in signature def (known: serving_default, serving_uint8)'),
    ('/v1/models/nope:predict', b'{}', None, 404, 'Servable not found for request: Latest(nope)'),
    ('/v1/models/digits/versions/2', None, None, 404, 'Servable not found for request: Specific(digits, 2)'),
    ('/v1/models/digits/labels/canary/metadata', None, None, 404, 'Unrecognized servable version label: canary'),
    ('/v1/models/digits:classify', b'{}', None, 501, 'this model answers :predict'),
    ('/v1/models/digits:predict', None, 'GET', 400, 'Malformed request: GET /v1/models/digits:predict'),
])
def test_bad_requests_get_a_4xx_and_one_line_and_the_server_goes_on(server, path, body, method, status, message):
    got, answer, content_type = request(server + path, body, method)
    assert got == status and content_type == 'application/json'
    error = json.loads(answer)['error']
    assert message in error and '\n' not in error, error
    assert request(server + '/v1/models/digits')[0] == 200  # still serving


def raw_exchange(server: str, data: bytes) -> bytes:
    """What the server answers to bytes sent on a fresh connection, until it closes it."""
    with socket.create_connection(('127.0.0.1', int(server.rsplit(':', 1)[1])), timeout=30) as connection:
        connection.sendall(data)
        answer = b''
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize('data,status,message', [
    (b'GARBAGE\r\nno header\r\n\r\n', b'400', 'Bad Request'),
    (b'POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n', b'413',
     'larger than the server accepts'),  # refused before the body comes
])
def test_malformed_http_gets_one_line_of_json_too(server, data, status, message):
    """The HTTP server's own refusals (before the app sees a request) look like the app's."""
    head, _, body = raw_exchange(server, data).partition(b'\r\n\r\n')
    assert head.split(b' ')[1] == status and b'Content-Type: application/json' in head
    assert message in json.loads(body)['error'] and b'\n' not in body
    assert request(server + '/v1/models/digits')[0] == 200


def test_a_body_over_the_limit_sent_whole_before_reading_gets_its_413(server):
    """urllib (as requests) sends the whole body before it reads: 16x --max_body_mb gets the 413 and its one
    line of JSON, not a reset connection (the server reads and drops the rest of the body before closing)."""
    for _ in range(3):
        status, answer, content_type = request(server + '/api/predict', b'x' * int(16 * MAX_BODY_MB * 1e6))
        assert status == 413 and content_type == 'application/json'
        assert 'larger than the server accepts' in json.loads(answer)['error']
    assert request(server + '/v1/models/digits')[0] == 200


def test_cors_lets_the_one_origin_in(server):
    with urllib.request.urlopen(urllib.request.Request(server + '/v1/models/digits', method='OPTIONS'),
                                timeout=30) as preflight:
        assert preflight.status == 204 and 'POST' in preflight.headers['Access-Control-Allow-Methods']
        assert preflight.headers['Access-Control-Allow-Origin'] == SERVE_CORS_ORIGIN
    with urllib.request.urlopen(server + '/v1/models/digits', timeout=30) as response:
        assert response.headers['Access-Control-Allow-Origin'] == SERVE_CORS_ORIGIN


def test_eight_clients_at_once_all_get_correct_answers(server, digits_and_expected):
    bodies, expected = digits_and_expected
    load = traffic.run_load(lambda: traffic.http_sender(server + '/api/predict', 30, 'image/png'), bodies,
                            clients=8, requests=40)
    for c, client in enumerate(load['results']):
        assert len(client) == 40
        for i, (status, answer, _) in enumerate(client):
            assert status == 200 and answer['digit'] == digit_read(expected[(c + i * 8) % len(bodies)])
    figures = traffic.summarize(load)
    assert figures['requests'] == figures['ok'] == 320 and figures['median_ms'] <= figures['p99_ms']


def one_digit_requests(export_module, n: int) -> tuple[list[bytes], np.ndarray]:
    """n REST predict bodies of one digit each, and the export's probabilities for each digit alone."""
    pixels = make_digits(n, 6)[0].astype(np.float32) / 255
    want = np.concatenate([in_process(export_module, 'serving_default', p[None])['probabilities'] for p in pixels])
    return [json.dumps({'instances': p[None].tolist()}).encode() for p in pixels], want


def test_batched_concurrent_requests_get_what_one_call_each_gives(server, export_module):
    """32 clients of one digit each: joined into batches by the server, answered as the export answers
    each digit on its own."""
    bodies, want = one_digit_requests(export_module, 64)
    load = traffic.run_load(lambda: traffic.http_sender(server + '/v1/models/digits:predict', 30), bodies,
                            clients=32, requests=6)
    for c, client in enumerate(load['results']):
        for i, (status, answer, _) in enumerate(client):
            assert status == 200, answer
            np.testing.assert_allclose(answer['predictions'][0]['probabilities'], want[(c + i * 32) % 64], atol=1e-5)


def test_page_and_tf_serving_requests_batched_together_are_each_read_right(server, digits_and_expected,
                                                                          export_module):
    """The page's images (read as uint8 frames) and TF Serving's floats share batches: each still gets its
    own answer."""
    bodies, expected = digits_and_expected
    rest_bodies, want = one_digit_requests(export_module, 16)
    loads = {}
    threads = [threading.Thread(target=lambda: loads.update(page=traffic.run_load(
                   lambda: traffic.http_sender(server + '/api/predict', 30, 'image/png'), bodies, clients=4,
                   requests=12))),
               threading.Thread(target=lambda: loads.update(rest=traffic.run_load(
                   lambda: traffic.http_sender(server + '/v1/models/digits:predict', 30), rest_bodies, clients=4,
                   requests=12)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for c, client in enumerate(loads['page']['results']):
        for i, (status, answer, _) in enumerate(client):
            assert status == 200 and answer['probabilities'] == pytest.approx(
                expected[(c + i * 4) % len(bodies)].tolist(), abs=1e-5)
    for c, client in enumerate(loads['rest']['results']):
        for i, (status, answer, _) in enumerate(client):
            assert status == 200
            np.testing.assert_allclose(answer['predictions'][0]['probabilities'], want[(c + i * 4) % 16], atol=1e-5)


def test_stalled_connections_do_not_hold_up_other_clients(server, export_module):
    """200 connections, half idle and half with a request sent only in part, stay open while another
    client's 20 requests are all answered."""
    port = int(server.rsplit(':', 1)[1])
    stalled = []
    try:
        for i in range(200):
            connection = socket.create_connection(('127.0.0.1', port), timeout=10)
            if i % 2:
                connection.sendall(b'POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n'
                                   b'\r\n{"instances": [')
            stalled.append(connection)
        bodies, want = one_digit_requests(export_module, 20)
        load = traffic.run_load(lambda: traffic.http_sender(server + '/v1/models/digits:predict', 10), bodies,
                                clients=1, requests=20, timeout=10)
        assert [status for status, _, _ in load['results'][0]] == [200] * 20
        assert max(seconds for _, _, seconds in load['results'][0]) < 10
    finally:
        for connection in stalled:
            connection.close()


# How a request the stopping server never read ends for its client: the port closed, or the connection.
NOT_READ = ('ConnectionRefusedError', 'ConnectionResetError', 'BrokenPipeError', 'RemoteDisconnected')


def test_sigterm_under_load_lets_requests_in_flight_finish(smoke_run, export_module):
    """SIGTERM while 8 clients send 256 digits a request (uint8: a short body): the requests in flight are
    answered (after the signal), right; later ones are refused (the port is closed) or reset; the server exits 0."""
    proc, url, _ = traffic.start_server(smoke_run[0].export_dir, cwd=ROOT)
    pixels = make_digits(256, 7)[0]
    want = in_process(export_module, 'serving_uint8', pixels)['probabilities']
    answered_at, answered = [], threading.Event()

    def sender():
        send = traffic.http_sender(url + '/v1/models/digits:predict', 30)

        def send_and_note(body):
            answer = send(body)
            answered_at.append(time.monotonic())
            answered.set()
            return answer
        return send_and_note

    results = {}
    loading = threading.Thread(target=lambda: results.update(traffic.run_load(
        sender, [json.dumps({'signature_name': 'serving_uint8', 'instances': pixels.tolist()}).encode()],
        clients=8, requests=20)))
    try:
        loading.start()
        assert answered.wait(60)
        signalled = time.monotonic()
        stdout, stderr = traffic.stop_server(proc)
        loading.join(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and 'digits.serve: stopped' in stdout, stderr[-2000:]
    assert any(at > signalled for at in answered_at)  # in flight at the signal, answered after it
    flat = [r for client in results['results'] for r in client]
    for status, answer, _ in flat:
        if status == 200:
            np.testing.assert_allclose([p['probabilities'] for p in answer['predictions']], want, atol=1e-5)
        else:
            assert status == 0 and answer['error'].startswith(NOT_READ), answer


@pytest.mark.parametrize('args,message', [
    ([], '--model is required'), (['--model=m', '--port=70000'], '--port (70000) must be in [0, 65536)'),
    (['--model=m', '--max_body_mb=0'], '--max_body_mb (0.0) must be positive'),
    (['--model=m', '--threads=0'], '--threads (0) must be positive'),
    (['--model=m', '--port=8500', '--grpc_port=8500'], '--grpc_port (8500) must differ from --port'),
    (['--model=/nonexistent'], '--model (/nonexistent) is not an exported SavedModel')])
def test_usage_errors_are_one_line(args, message):
    proc = subprocess.run([sys.executable, '-m', 'digits.serve', *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f'digits.serve: error: {message}'), lines


def test_api_predict_reads_numbers_written_fast_with_the_exports_line_reader(line_export, tmp_path):
    """digits.serve on an export holding a line reader: /api/predict reads numbers whose digits touch as
    digits.Reader reads them (the line reader's digits, boxes and probabilities), and TF Serving's predict
    still answers the digit model's probabilities."""
    from test_predict import write_touching_numbers
    export = line_export[0].export_dir
    paths, _ = write_touching_numbers(str(tmp_path), 4, seed=2)
    want = prediction.Reader.load(export).read_many(paths)
    proc, url, _ = traffic.start_server(export, cwd=ROOT)
    try:
        for path, expected in zip(paths, want):
            with open(path, 'rb') as f:
                status, answer, _ = request(url + '/api/predict', f.read())
            answer = json.loads(answer)
            assert status == 200 and answer['text'] == expected['text']
            assert [d['box'] for d in answer['digits']] == [d['box'] for d in expected['digits']]
        status, body, _ = request(url + '/v1/models/digits:predict',
                                  json.dumps({'instances': np.zeros((1, 28, 28)).tolist()}).encode())
        assert status == 200 and len(json.loads(body)['predictions'][0]['probabilities']) == 10
    finally:
        stdout, stderr = traffic.stop_server(proc)
    assert 'digits.serve: stopped' in stdout and 'Traceback' not in stderr, stderr[-2000:]

"""The HTTP app of digits.serve: a page to write digits on, a JSON API to read them, and TensorFlow
Serving's REST API, all from one loaded export; and the server that runs it (with TF Serving's gRPC API
beside it, digits.serving.grpc_service).

  GET  /                           the page (digits/serving/static/: index.html, app.js, style.css; no CDN)
  GET  /static/<file>              the page's own files, and nothing else whatever the path says
  POST /api/predict                an image file (PNG, JPEG, GIF, BMP) of a digit or a number, read as
                                   digits.predict reads files -> {text, digits: [{digit, probability, top3,
                                   box, probabilities, image}, ...]} (+ the one digit's fields at the top)
  GET  /v1/models/digits[/versions/<n>|/labels/<label>]            TF Serving's model status
  GET  /v1/models/digits[/versions/<n>|/labels/<label>]/metadata   its signature_def map
  POST /v1/models/digits[/versions/<n>|/labels/<label>]:predict    {"signature_name"?, "instances": [...]}
                                   -> {"predictions": [{"probabilities", "logits"}, ...]}, or
                                   {"inputs": ...} -> {"outputs": {"probabilities", "logits"}}

Every error is JSON {"error": "..."} with a 4xx status (TF Serving's own for its API; 413 for a body over
--max_body_mb or an image declaring too many pixels); the server keeps serving. Every model call goes
through one function, batched (digits.serving.batching) unless --noenable_batching.
"""
import base64
import json
import os
import signal
import socket
import threading
import time

import numpy as np
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from digits.errors import DigitsError
from digits.reading import images, prediction
from digits.serving import tf_serving

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
CONTENT_TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                 '.css': 'text/css; charset=utf-8'}


def load_static() -> dict:
    """{file name: (bytes, content type)} of the page's files, read once: the only files ever served."""
    files = {}
    for name in sorted(os.listdir(STATIC_DIR)):
        extension = os.path.splitext(name)[1]
        if extension in CONTENT_TYPES:
            with open(os.path.join(STATIC_DIR, name), 'rb') as f:
                files[name] = (f.read(), CONTENT_TYPES[extension])
    return files


class DigitsApp:
    """A WSGI app around one model function (thread-safe: called from many threads at once)."""

    def __init__(self, servable: tf_serving.Servable, model: tf_serving.Model, *, max_body_bytes: int,
                 cors_origin: str | None = None, line_model=None):
        """line_model (optional): the export's line reader (digits.reading.prediction.load_line_model), which
        /api/predict's digits.Reader reads numbers whose digits touch with; TF Serving's APIs serve `model`
        alone."""
        self._servable, self._model, self._cors_origin = servable, model, cors_origin
        as_input = tf_serving.SIGNATURES['serving_uint8'].to_model_input  # the reader's uint8 frames
        self._reader = prediction.Reader(lambda frames: model(as_input(frames)), line_model)
        self._files = load_static()
        self.max_body_bytes = max_body_bytes
        self._request_class = type('LimitedRequest', (Request,), {'max_content_length': max_body_bytes})
        self._urls = Map([
            Rule('/', endpoint='page', methods=['GET']),
            Rule('/static/<name>', endpoint='static', methods=['GET']),
            Rule('/api/predict', endpoint='predict', methods=['POST']),
            Rule('/v1/models/<path:rest>', endpoint='tf_serving_api', methods=['GET', 'POST']),
        ])

    def __call__(self, environ, start_response):
        request = self._request_class(environ)
        if request.method == 'OPTIONS' and self._cors_origin:
            response = Response(status=204, headers=preflight_headers())
        else:
            response = self.answer(request)
        if self._cors_origin:
            response.headers.update({'Access-Control-Allow-Origin': self._cors_origin, 'Vary': 'Origin'})
        return response(environ, start_response)

    def answer(self, request) -> Response:
        """The response to one request, errors included."""
        try:
            endpoint, args = self._urls.bind_to_environ(request.environ).match()
            return getattr(self, endpoint)(request, **args)
        except HTTPException as e:
            return json_response({'error': describe_http_error(e, request)}, e.code)
        except images.ImageTooLarge as e:
            return json_response({'error': str(e)}, 413)
        except tf_serving.ServingError as e:
            return json_response({'error': str(e)}, tf_serving.HTTP_STATUS[e.code])
        except DigitsError as e:
            return json_response({'error': str(e)}, 400)

    def page(self, request):
        return self.static(request, 'index.html')

    def static(self, request, name: str):
        if name not in self._files:
            raise NotFound()
        content, content_type = self._files[name]
        return Response(content, content_type=content_type, headers={'Cache-Control': 'no-cache'})

    def predict(self, request):
        """An image file -> the digits read, each with its probabilities and the 28x28 image the model saw
        (a PNG data URL); for an image of one digit, that digit's fields at the top level too."""
        [readings] = self._reader.readings([request.get_data(cache=False)], ['the request body'])
        answer = prediction.describe_reading(readings)
        for digit, reading in zip(answer['digits'], readings):
            digit.update(probabilities=reading.probabilities.tolist(), image=png_data_url(reading.image))
        if len(readings) == 1:
            answer.update(probabilities=answer['digits'][0]['probabilities'], image=answer['digits'][0]['image'])
        return json_response(answer)

    def tf_serving_api(self, request, rest: str):
        """TF Serving's REST API: the path read as its regexes read it, then status, metadata or predict."""
        parsed = tf_serving.parse_rest_path(request.path)
        verb = parsed and parsed[3]
        if not parsed or (request.method == 'GET') != (verb in ('status', 'metadata')):
            raise tf_serving.ServingError('INVALID_ARGUMENT', f'Malformed request: {request.method} {request.path}')
        name, version, label, verb = parsed
        tf_serving.check_model(self._servable, name, version, label)
        if verb == 'status':
            return json_response(tf_serving.status_json(self._servable))
        if verb == 'metadata':
            return json_response(tf_serving.metadata_json(self._servable))
        if verb != 'predict':
            raise tf_serving.ServingError('UNIMPLEMENTED', f':{verb} needs a {verb} signature; this model '
                                                           f'answers :predict')
        _, pixels, format_ = tf_serving.parse_rest_predict(parse_json(request.get_data(cache=False)))
        return json_response(tf_serving.rest_predict_answer(self._model(pixels), format_))


def png_data_url(digit: np.ndarray) -> str:
    """A uint8 [28, 28] digit as a data:image/png URL, for the page to show."""
    return 'data:image/png;base64,' + base64.b64encode(images.png_bytes(digit)).decode('ascii')


def parse_json(body: bytes):
    """A request body's JSON; INVALID_ARGUMENT if it is not JSON."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise tf_serving.ServingError('INVALID_ARGUMENT', f'the body is not JSON ({e})') from None


def preflight_headers() -> dict:
    """What a browser's CORS preflight asks to know (with --cors_origin)."""
    return {'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type',
            'Access-Control-Max-Age': '600'}


def describe_http_error(error: HTTPException, request) -> str:
    """One line for a routing or size error."""
    if isinstance(error, RequestEntityTooLarge):
        return f'the body is larger than the server accepts ({request.max_content_length:,} bytes; --max_body_mb)'
    if error.code == 405:
        return f'{request.method} is not allowed on {request.path} (allowed: {", ".join(sorted(error.valid_methods))})'
    if error.code == 404:
        return f'no such path: {request.path}'
    if isinstance(error, BadRequest):
        return f'bad request: {error.description}'
    return error.description or error.name


def json_response(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type='application/json')


# Waitress closes a connection idle this long (no request in it): idle and half-sent connections hold
# no worker, only a socket, until then.
CHANNEL_TIMEOUT_SECONDS = 60
# After a 413, the rest of the refused body is read and dropped before the connection closes, so that a
# client that sends the whole body before it reads (Python's urllib and requests do) gets the answer, not
# a reset: at most this many bytes more (four bodies of the default --max_body_mb), for at most this long.
LINGER_BYTES, LINGER_SECONDS = 64_000_000, 10.0


def warm_up(app: DigitsApp, model: tf_serving.Model, max_batch_size: int):
    """Runs every batch size the batcher can form, and the page's path, before the port opens: the first
    call of a shape builds its kernels, and no client should wait for that."""
    from werkzeug.test import Client

    from digits.reading import drawing
    for size in range(1, max_batch_size + 1):
        model(np.zeros((size, images.FRAME, images.FRAME), np.float32))
    page = drawing.render_strokes(drawing.STROKES[8], 16)[..., 0]
    answer = Client(app).post('/api/predict', data=images.png_bytes(np.round(page * 255).astype(np.uint8)))
    assert answer.status_code == 200, answer.get_data(as_text=True)


class JsonErrorTask(ErrorTask):
    """Waitress's own refusals (a malformed request, a body over --max_body_mb) as the app's: one line of
    JSON."""

    def execute(self):
        error = self.request.error
        message = (f'the body is larger than the server accepts ({self.channel.server.adj.max_request_body_size:,} '
                   f'bytes; --max_body_mb)' if error.code == 413 else f'{error.reason}: {error.body}')
        body = json.dumps({'error': message}).encode()
        self.status = f'{error.code} {error.reason}'
        self.channel.refused_body = error.code == 413
        self.response_headers.append(('Content-Type', 'application/json'))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class DrainingChannel(HTTPChannel):
    """A connection that reads no new request once the server drains (its answers still go out), and that
    lingers after refusing a body: its answer sent and its sending side shut, it reads the rest of the body
    and drops it, up to LINGER_BYTES or LINGER_SECONDS, then closes."""
    error_task_class = JsonErrorTask
    refused_body = False
    linger_left, linger_until = 0, 0.0

    def readable(self):
        if self.linger_until:
            return True
        return not getattr(self.server, 'draining', False) and super().readable()

    def writable(self):
        if self.linger_until:  # a client that stops sending without closing is closed when time is up
            return time.monotonic() > self.linger_until
        return super().writable()

    def handle_write(self):
        if self.linger_until:
            return super().handle_close()
        return super().handle_write()

    def handle_close(self):
        if self.refused_body and not self.linger_until and self.connected and not self.total_outbufs_len:
            self.start_lingering()
            return
        super().handle_close()

    def start_lingering(self):
        try:
            self.socket.shutdown(socket.SHUT_WR)  # the answer is out: the client reads it, then its EOF
        except OSError:
            return super().handle_close()
        self.will_close = False
        self.linger_left = LINGER_BYTES
        self.linger_until = time.monotonic() + LINGER_SECONDS

    def handle_read(self):
        if not self.linger_until:
            return super().handle_read()
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except OSError:
            data = b''
        self.linger_left -= len(data)
        if not data or self.linger_left <= 0 or time.monotonic() > self.linger_until:
            self.refused_body = False
            super().handle_close()


def make_http_server(app: DigitsApp, config):
    """Waitress on config.host:config.port: a bounded pool of workers; requests are read (and answers
    written) by its event loop, so a slow or stalled client holds a socket, never a worker."""
    import logging

    import waitress
    logging.getLogger('waitress.queue').setLevel(logging.ERROR)  # 'Task queue depth' under load is expected
    try:
        server = waitress.create_server(
            app, host=config.host, port=config.port, threads=config.threads, connection_limit=config.max_connections,
            channel_timeout=CHANNEL_TIMEOUT_SECONDS, max_request_body_size=app.max_body_bytes,
            asyncore_use_poll=True, ident='digits.serve', clear_untrusted_proxy_headers=True)
    except OSError as e:
        raise DigitsError(f'cannot listen on --host={config.host} --port={config.port}: {e.strerror}') from None
    server.channel_class = DrainingChannel
    return server


def run_until_signal(server):
    """Runs waitress's event loop until SIGTERM or SIGINT."""
    from waitress import wasyncore
    stopping = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stopping.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping.is_set():
            wasyncore.loop(timeout=0.2, map=server._map, use_poll=True, count=1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def close(server, seconds: float):
    """Ends waitress: its workers get `seconds` to finish, then every connection is closed."""
    from waitress import wasyncore
    server.task_dispatcher.shutdown(timeout=seconds)
    wasyncore.close_all(server._map)


def drain(server, seconds: float):
    """Stops accepting and reading requests, then serves until no answer is due (or seconds pass)."""
    from waitress import wasyncore
    server.draining = True
    wasyncore.dispatcher.close(server)  # the listening socket only; open connections stay
    deadline = time.monotonic() + seconds
    while any(busy(channel) for channel in list(server._map.values())) and time.monotonic() < deadline:
        wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)


def busy(channel) -> bool:
    """A connection with a whole request not yet answered, or an answer not yet sent."""
    return bool(getattr(channel, 'requests', None) or getattr(channel, 'total_outbufs_len', 0))


def serve(config, log=print):
    """Loads config.model and serves it (HTTP, and gRPC with config.grpc_port) until SIGTERM or SIGINT."""
    from digits.serving import batching
    servable = tf_serving.find_servable(config.model, config.version_labels)
    model = prediction.load_model(servable.export_dir)
    batcher = batching.Batcher(model, max_batch_size=config.max_batch_size,
                               batch_timeout_micros=config.batch_timeout_micros) if config.enable_batching else None
    predict = batcher.predict if batcher else model
    app = DigitsApp(servable, predict, max_body_bytes=int(config.max_body_mb * 1e6), cors_origin=config.cors_origin,
                    line_model=prediction.load_line_model(servable.export_dir))
    warm_up(app, model, config.max_batch_size if batcher else 1)
    http = make_http_server(app, config)
    grpc_server = None
    try:
        if config.grpc_port is not None:
            from digits.serving import grpc_service  # TF Serving's stubs: TensorFlow's protos
            grpc_server, grpc_port = grpc_service.start(
                servable, predict, host=config.host, port=config.grpc_port, threads=config.threads,
                max_message_bytes=app.max_body_bytes)
        log(f'digits.serve: reading digits with {config.model} (version {servable.version}) at '
            f'http://{config.host}:{http.effective_port}/'
            + (f' and gRPC {config.host}:{grpc_port}' if grpc_server else '') + ' (Ctrl-C to stop)')
        run_until_signal(http)
        # Both stop taking requests at once; those in flight get config.drain_seconds to finish.
        grpc_stopped = grpc_server.stop(grace=config.drain_seconds) if grpc_server else None
        drain(http, config.drain_seconds)
        if grpc_stopped:
            grpc_stopped.wait()
    finally:
        if grpc_server:
            grpc_server.stop(grace=None)
        close(http, config.drain_seconds)
        if batcher:
            batcher.stop()
    log('digits.serve: stopped')

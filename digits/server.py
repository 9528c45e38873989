"""The HTTP app of digits.serve: a page to write digits on, a JSON API to read them, and TensorFlow
Serving's REST predict API, all from one loaded export.

  GET  /                           the page (digits/static/: index.html, app.js, style.css; no CDN)
  GET  /static/<file>              the page's own files, and nothing else whatever the path says
  POST /api/predict                an image file (PNG, JPEG, GIF, BMP) of a digit or a number, read as
                                   digits.predict reads files -> {text, digits: [{digit, probability, top3,
                                   box, probabilities, image}, ...]} (+ the one digit's fields at the top)
  GET  /v1/models/digits           TF Serving's model status
  POST /v1/models/digits:predict   TF Serving's REST predict: {"instances": [28x28 or 28x28x1 floats in
                                   [0, 1], ...]} -> {"predictions": [[p0, ..., p9], ...]}

Every error is JSON {"error": "..."} with a 4xx status (413 for a body over --max_body_mb or an image
declaring too many pixels); the server keeps serving.
"""
import base64
import json
import os

import numpy as np
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from digits import classify, images, reader
from digits.errors import DigitsError

MODEL_NAME = 'digits'  # the name TF Serving clients address: /v1/models/digits
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
CONTENT_TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                 '.css': 'text/css; charset=utf-8'}
MAX_INSTANCES = 1024  # per TF Serving request: a batch the model answers in well under a second


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
    """A WSGI app around an export's serve function (thread-safe: a tf.function called from many threads)."""

    def __init__(self, module, *, max_body_bytes: int):
        self._module = module  # its serve function needs the module (and so its variables) alive
        self._files = load_static()
        self._request_class = type('LimitedRequest', (Request,), {'max_content_length': max_body_bytes})
        self._urls = Map([
            Rule('/', endpoint='page', methods=['GET']),
            Rule('/static/<name>', endpoint='static', methods=['GET']),
            Rule('/api/predict', endpoint='predict', methods=['POST']),
            Rule(f'/v1/models/{MODEL_NAME}', endpoint='model_status', methods=['GET']),
            Rule(f'/v1/models/{MODEL_NAME}:predict', endpoint='tf_serving_predict', methods=['POST']),
        ])

    def __call__(self, environ, start_response):
        request = self._request_class(environ)
        try:
            endpoint, args = self._urls.bind_to_environ(environ).match()
            response = getattr(self, endpoint)(request, **args)
        except HTTPException as e:
            response = json_response({'error': describe_http_error(e, request)}, e.code)
        except images.ImageTooLarge as e:
            response = json_response({'error': str(e)}, 413)
        except DigitsError as e:
            response = json_response({'error': str(e)}, 400)
        return response(environ, start_response)

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
        image = images.decode_image(request.get_data(cache=False), 'the request body')
        readings = reader.read(image, lambda batch: self._module.serve(batch)['probabilities'].numpy(),
                               'the request body')
        answer = classify.describe_reading(readings)
        for digit, reading in zip(answer['digits'], readings):
            digit.update(probabilities=reading.probabilities.tolist(), image=png_data_url(reading.image))
        if len(readings) == 1:
            answer.update(probabilities=answer['digits'][0]['probabilities'], image=answer['digits'][0]['image'])
        return json_response(answer)

    def model_status(self, request):
        """What TF Serving answers for a loaded model (GetModelStatus)."""
        return json_response({'model_version_status': [
            {'version': '1', 'state': 'AVAILABLE', 'status': {'error_code': 'OK', 'error_message': ''}}]})

    def tf_serving_predict(self, request):
        """TF Serving's row format: each instance a 28x28 (or 28x28x1) digit, floats in [0, 1]."""
        batch = parse_instances(request.get_data(cache=False))
        return json_response({'predictions': self._module.serve(batch)['probabilities'].numpy().tolist()})


def png_data_url(digit: np.ndarray) -> str:
    """A uint8 [28, 28] digit as a data:image/png URL, for the page to show."""
    return 'data:image/png;base64,' + base64.b64encode(images.png_bytes(digit)).decode('ascii')


def parse_instances(body: bytes) -> np.ndarray:
    """float32 [n, 28, 28] from a TF Serving request body; DigitsError says what is wrong with it.

    28x28 is the MNIST-style digit (images.FRAME) that the page and /api/predict also give the model."""
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DigitsError(f'the body is not JSON ({e})') from None
    instances = request.get('instances') if isinstance(request, dict) else None
    if not isinstance(instances, list) or not instances:
        raise DigitsError('expected {"instances": [...]}: a non-empty list of 28x28 (or 28x28x1) digits')
    if len(instances) > MAX_INSTANCES:
        raise DigitsError(f'{len(instances)} instances; at most {MAX_INSTANCES} per request')
    instances = [i['images'] if isinstance(i, dict) and 'images' in i else i for i in instances]
    try:
        batch = np.asarray(instances, dtype=np.float32)
    except (ValueError, TypeError):
        raise DigitsError('each instance must be a 28x28 (or 28x28x1) array of numbers') from None
    side = images.FRAME
    if batch.shape[1:] not in ((side, side), (side, side, 1)) or not np.isfinite(batch).all():
        raise DigitsError(f'instances have shape {list(batch.shape[1:])}; each must be a {side}x{side} (or '
                          f'{side}x{side}x1) array of finite numbers in [0, 1]')
    return batch.reshape(-1, side, side)


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


def serve(config, log=print):
    """Loads config.model and serves it on config.host:config.port until SIGTERM or SIGINT."""
    import logging
    import signal
    import threading
    from werkzeug.serving import make_server
    from digits import export
    logging.getLogger('werkzeug').setLevel(logging.WARNING)  # a line per request would bury ours; errors stay
    app = DigitsApp(export.load(config.model), max_body_bytes=int(config.max_body_mb * 1e6))
    try:
        server = make_server(config.host, config.port, app, threaded=True)
    except OSError as e:
        raise DigitsError(f'cannot listen on --host={config.host} --port={config.port}: {e.strerror}') from None
    stop = lambda signum, frame: threading.Thread(target=server.shutdown).start()
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    log(f'digits.serve: reading digits with {config.model} at http://{config.host}:{server.server_port}/ '
        f'(Ctrl-C to stop)')
    try:
        server.serve_forever()
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log('digits.serve: stopped')

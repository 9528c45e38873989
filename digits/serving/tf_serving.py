"""TensorFlow Serving's API for a digits export, shared by its REST (digits.serving.server) and gRPC
(digits.serving.grpc_service) front ends: which model, version and signature a request names, its images
checked against the signature, and the answers, built as TF Serving's own protos.

Answers follow TF Serving (tensorflow_serving/model_servers/http_rest_api_*.cc, util/json_tensor.cc): the
export has two outputs, so a row-format answer is a list of {"probabilities", "logits"} objects and a
columnar one an object of two lists; metadata is the SavedModel's own SignatureDefMap.
"""
import dataclasses
import os
import re
from collections.abc import Callable

import numpy as np

from digits.errors import DigitsError
from digits.export.signatures import DEFAULT_SIGNATURE, SIGNATURES, Signature
from digits.reading import images

MODEL_NAME = 'digits'  # the name clients address: /v1/models/digits, ModelSpec.name
INPUT_NAME = 'images'  # the signatures' one input
MAX_IMAGES = 1024  # per request: a batch the model answers in well under a second
Model = Callable[[np.ndarray], dict[str, np.ndarray]]  # float32 [n, 28, 28] -> {output name: [n, ...]}
# TF Serving's HTTP status for each canonical error code (http_server.cc, ToHTTPStatusCode).
HTTP_STATUS = {'INVALID_ARGUMENT': 400, 'NOT_FOUND': 404, 'RESOURCE_EXHAUSTED': 429, 'UNIMPLEMENTED': 501,
               'UNAVAILABLE': 503}


class ServingError(DigitsError):
    """A request TF Serving would refuse: its canonical code (a grpc.StatusCode name) and one line."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Servable:
    """The one model served: its version (and labels naming it) and its SavedModel's signatures (None for
    a LiteRT file, which has none to show)."""
    export_dir: str
    version: int
    labels: tuple[str, ...]
    signature_defs: object  # a tensorflow_serving SignatureDefMap


def find_servable(model: str, labels: tuple[str, ...]) -> Servable:
    """--model as an export or a LiteRT file (served as version 1), or a TF Serving base path (its highest
    version)."""
    if model.endswith('.tflite'):
        return Servable(model, 1, labels, None)
    if os.path.isfile(os.path.join(model, 'saved_model.pb')):
        export_dir, version = model, 1
    else:
        versions = [int(v) for v in (os.listdir(model) if os.path.isdir(model) else ())
                    if v.isdigit() and os.path.isfile(os.path.join(model, v, 'saved_model.pb'))]
        if not versions:
            raise DigitsError(f'--model ({model}) is not an exported SavedModel (no saved_model.pb) nor a TF '
                              f'Serving base path (<base>/<version>/saved_model.pb)')
        version = max(versions)
        export_dir = os.path.join(model, str(version))
    return Servable(export_dir, version, labels, read_signature_defs(export_dir))


def read_signature_defs(export_dir: str):
    """The SavedModel's SignatureDefMap, as TF Serving's GetModelMetadata returns it."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as f:
        saved_model.ParseFromString(f.read())
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in saved_model.meta_graphs[0].signature_def.items():
        signature_defs.signature_def[name].CopyFrom(signature_def)
    return signature_defs


def check_model(servable: Servable, name: str, version: int | None = None, label: str | None = None):
    """NOT_FOUND (TF Serving's words) unless the request names this model and its version or a label."""
    if name != MODEL_NAME:
        wanted = f'Specific({name}, {version})' if version is not None else f'Latest({name})'
        raise ServingError('NOT_FOUND', f'Servable not found for request: {wanted} (this server serves '
                                        f'"{MODEL_NAME}")')
    if version is not None and label is not None:
        raise ServingError('INVALID_ARGUMENT', 'a request names a version or a label, not both')
    if version is not None and version != servable.version:
        raise ServingError('NOT_FOUND', f'Servable not found for request: Specific({name}, {version}) (the version '
                                        f'served is {servable.version})')
    if label is not None and label not in servable.labels:
        raise ServingError('NOT_FOUND', f'Unrecognized servable version label: {label} (known: '
                                        f'{", ".join(servable.labels) or "none"})')


def find_signature(name: str) -> Signature:
    """The signature a request names ('' for the default); INVALID_ARGUMENT naming the known ones."""
    if name in ('', None):
        name = DEFAULT_SIGNATURE
    if name not in SIGNATURES:
        raise ServingError('INVALID_ARGUMENT', f'Serving signature name: "{name}" not found in signature def '
                                               f'(known: {", ".join(SIGNATURES)})')
    return SIGNATURES[name]


def check_pixels(pixels: np.ndarray, signature: Signature) -> np.ndarray:
    """pixels as the model's float32 [n, 28, 28] in [0, 1]; INVALID_ARGUMENT for a wrong shape or value."""
    side = images.FRAME
    if pixels.ndim not in (3, 4) or pixels.shape[1:3] != (side, side) or pixels.shape[3:] not in ((), (1,)):
        raise ServingError('INVALID_ARGUMENT', f'"{INPUT_NAME}" has shape {list(pixels.shape)}; it must be [n, {side}, '
                                               f'{side}] or [n, {side}, {side}, 1]')
    if not 0 < len(pixels) <= MAX_IMAGES:
        raise ServingError('INVALID_ARGUMENT', f'{len(pixels)} images; 1 to {MAX_IMAGES} per request')
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > signature.top:
        raise ServingError('INVALID_ARGUMENT', f'"{INPUT_NAME}" of {signature.name} must be in [0, {signature.top:g}] '
                                               f'(found {pixels.min():g} to {pixels.max():g})')
    if signature.dtype == np.uint8 and (pixels != np.round(pixels)).any():
        raise ServingError('INVALID_ARGUMENT', f'"{INPUT_NAME}" of {signature.name} must be integers 0-255')
    return signature.to_model_input(pixels.reshape(-1, side, side).astype(signature.dtype))


def status_json(servable: Servable) -> dict:
    """GetModelStatus as TF Serving's REST API prints it: the one version, AVAILABLE."""
    return {'model_version_status': [{'version': str(servable.version), 'state': 'AVAILABLE',
                                      'status': {'error_code': 'OK', 'error_message': ''}}]}


def status_response(servable: Servable):
    """GetModelStatus as its proto (gRPC)."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_status_pb2
    return json_format.ParseDict(status_json(servable), get_model_status_pb2.GetModelStatusResponse())


def model_spec(servable: Servable, signature_name: str = ''):
    """The ModelSpec an answer carries: this model, the version served."""
    from tensorflow_serving.apis import model_pb2
    spec = model_pb2.ModelSpec(name=MODEL_NAME, signature_name=signature_name)
    spec.version.value = servable.version
    return spec


def metadata_response(servable: Servable):
    """GetModelMetadata: the SavedModel's signature_def map under metadata['signature_def']."""
    from tensorflow_serving.apis import get_model_metadata_pb2
    check_metadata(servable)
    response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=model_spec(servable))
    response.metadata['signature_def'].Pack(servable.signature_defs)
    return response


def check_metadata(servable: Servable):
    """UNIMPLEMENTED for a LiteRT file: it has no SavedModel signature_def to show."""
    if servable.signature_defs is None:
        raise ServingError('UNIMPLEMENTED', f'{servable.export_dir} is a LiteRT file: it has no SavedModel '
                                            f'signature_def to show (serve the export for metadata)')


def to_json(message) -> dict:
    """A proto as TF Serving's REST API prints it (every field, proto names)."""
    from google.protobuf import json_format
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def metadata_json(servable: Servable) -> dict:
    """GET .../metadata: as TF Serving assembles it, the Any unpacked to the SignatureDefMap."""
    check_metadata(servable)
    return {'model_spec': to_json(model_spec(servable)),
            'metadata': {'signature_def': to_json(servable.signature_defs)}}


def parse_rest_predict(request) -> tuple[Signature, np.ndarray, str]:
    """A parsed REST predict body -> (signature, model input, 'row' or 'columnar')."""
    if not isinstance(request, dict):
        raise ServingError('INVALID_ARGUMENT', 'the body must be a JSON object: {"instances": [...]} or '
                                               '{"inputs": ...}')
    signature = find_signature(request.get('signature_name', ''))
    if ('instances' in request) == ('inputs' in request):
        raise ServingError('INVALID_ARGUMENT', 'the body must hold one of "instances" (row format) or "inputs" '
                                               '(columnar format)')
    if 'instances' in request:
        return signature, check_pixels(rows_to_array(request['instances']), signature), 'row'
    return signature, check_pixels(named_to_array(request['inputs']), signature), 'columnar'


def rows_to_array(instances) -> np.ndarray:
    """The row format: a list of images, or of {"images": image} objects."""
    if not isinstance(instances, list) or not instances:
        raise ServingError('INVALID_ARGUMENT', '"instances" must be a non-empty list')
    return to_array([named_to_value(i) if isinstance(i, dict) else i for i in instances])


def named_to_array(inputs) -> np.ndarray:
    """The columnar format: a tensor, or {"images": tensor}."""
    return to_array(named_to_value(inputs) if isinstance(inputs, dict) else inputs)


def named_to_value(named: dict):
    """The value of {"images": value}; INVALID_ARGUMENT for any other name."""
    if set(named) != {INPUT_NAME}:
        raise ServingError('INVALID_ARGUMENT', f'inputs are named {sorted(named)}; this model has one input, '
                                               f'"{INPUT_NAME}"')
    return named[INPUT_NAME]


def to_array(value) -> np.ndarray:
    """Nested JSON lists of numbers as an array; INVALID_ARGUMENT for ragged lists or other values."""
    try:
        array = np.asarray(value)
    except ValueError:
        array = None
    if array is None or array.dtype.kind not in 'iuf':
        raise ServingError('INVALID_ARGUMENT', f'"{INPUT_NAME}" must be nested lists of numbers, each image '
                                               f'{images.FRAME}x{images.FRAME}')
    return array


def rest_predict_answer(outputs: dict[str, np.ndarray], format_: str) -> dict:
    """{"predictions": [{output: row}, ...]} (row format) or {"outputs": {output: rows}} (columnar)."""
    lists = {name: value.tolist() for name, value in sorted(outputs.items())}
    if format_ == 'row':
        return {'predictions': [dict(zip(lists, row)) for row in zip(*lists.values())]}
    return {'outputs': lists}


def parse_rest_path(path: str) -> tuple[str, int | None, str | None, str] | None:
    """(model name, version, label, verb) of a /v1/models/... path as TF Serving's regexes read it;
    verb is predict, classify, regress, metadata or status; None if the path is not one of TF Serving's."""
    match = REST_VERB.fullmatch(path) or REST_GET.fullmatch(path)
    if not match:
        return None
    name, version, label, verb = match.groups()
    return name, int(version) if version else None, label, (verb or 'status').lower()


_VERSION = r'(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?'
REST_VERB = re.compile(rf'(?i)/v1/models/([^/:]+){_VERSION}:(classify|regress|predict)')
REST_GET = re.compile(rf'(?i)/v1/models/([^/:]+){_VERSION}(?:/(metadata))?')

"""TensorFlow Serving's gRPC API (digits.serve --grpc_port): PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus, on the generated stubs of the tensorflow-serving-api
package, so TF Serving's own clients (its tutorial's mnist_client.py) work unchanged. Classify, Regress
and MultiInference answer UNIMPLEMENTED (the export's signatures are predict signatures).
"""
import contextlib
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from digits.errors import DigitsError
from digits.serving import tf_serving


def check_spec(servable: tf_serving.Servable, spec) -> None:
    """The request's ModelSpec names this model (and its version or label, if any)."""
    version = spec.version.value if spec.HasField('version') else None
    label = spec.version_label if spec.WhichOneof('version_choice') == 'version_label' else None
    tf_serving.check_model(servable, spec.name, version, label)


def input_pixels(request, signature: tf_serving.Signature) -> np.ndarray:
    """The request's one input tensor, of the signature's dtype, as the model's input."""
    if set(request.inputs) != {tf_serving.INPUT_NAME}:
        raise tf_serving.ServingError('INVALID_ARGUMENT', f'inputs are named {sorted(request.inputs)}; this model '
                                                          f'has one input, "{tf_serving.INPUT_NAME}"')
    tensor = request.inputs[tf_serving.INPUT_NAME]
    want = tf.as_dtype(signature.dtype).as_datatype_enum
    if tensor.dtype != want:
        got, takes = tf.as_dtype(tensor.dtype).name, tf.as_dtype(want).name
        raise tf_serving.ServingError('INVALID_ARGUMENT',
                                      f'"{tf_serving.INPUT_NAME}" is {got}; {signature.name} takes {takes}')
    try:
        pixels = tf.make_ndarray(tensor)
    except (ValueError, TypeError) as e:
        raise tf_serving.ServingError('INVALID_ARGUMENT',
                                      f'"{tf_serving.INPUT_NAME}" is not a valid tensor: {e}') from None
    return tf_serving.check_pixels(pixels, signature)


def chosen_outputs(request, names) -> list[str]:
    """The outputs the request's output_filter keeps (all of them when it is empty)."""
    unknown = sorted(set(request.output_filter) - set(names))
    if unknown:
        raise tf_serving.ServingError('INVALID_ARGUMENT', f'output_filter names {unknown}; the outputs are '
                                                          f'{sorted(names)}')
    return list(request.output_filter) or sorted(names)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata on one servable; every model call goes through `model`."""

    def __init__(self, servable: tf_serving.Servable, model: tf_serving.Model):
        self._servable, self._model = servable, model

    def Predict(self, request, context):  # noqa: N802 (the generated servicer's names)
        with errors_as_status(context):
            check_spec(self._servable, request.model_spec)
            signature = tf_serving.find_signature(request.model_spec.signature_name)
            outputs = self._model(input_pixels(request, signature))
            response = predict_pb2.PredictResponse(
                model_spec=tf_serving.model_spec(self._servable, signature.name))
            for name in chosen_outputs(request, outputs):
                response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
            return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        with errors_as_status(context):
            check_spec(self._servable, request.model_spec)
            if list(request.metadata_field) != ['signature_def']:
                raise tf_serving.ServingError('INVALID_ARGUMENT', f'metadata_field is {list(request.metadata_field)}'
                                                                  f'; the one supported is ["signature_def"]')
            return tf_serving.metadata_response(self._servable)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus of the one servable."""

    def __init__(self, servable: tf_serving.Servable):
        self._servable = servable

    def GetModelStatus(self, request, context):  # noqa: N802
        with errors_as_status(context):
            check_spec(self._servable, request.model_spec)
            return tf_serving.status_response(self._servable)


@contextlib.contextmanager
def errors_as_status(context):
    """Ends the call with a ServingError's canonical code and message (context.abort raises)."""
    try:
        yield
    except tf_serving.ServingError as e:
        context.abort(getattr(grpc.StatusCode, e.code), str(e))


def start(servable: tf_serving.Servable, model: tf_serving.Model, *, host: str, port: int, threads: int,
          max_message_bytes: int) -> tuple[grpc.Server, int]:
    """A started gRPC server and its port (port 0: any free one)."""
    options = [('grpc.max_receive_message_length', max_message_bytes), ('grpc.max_send_message_length', -1),
               ('grpc.so_reuseport', 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix='grpc'), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(servable, model), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(servable), server)
    try:
        bound = server.add_insecure_port(f'{host}:{port}')
    except RuntimeError:
        bound = 0
    if not bound:
        raise DigitsError(f'cannot listen on --host={host} --grpc_port={port} (in use, or not an address here)')
    server.start()
    return server, bound

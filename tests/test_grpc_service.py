"""TensorFlow Serving's gRPC API of digits.serve, through the tensorflow-serving-api package's own stubs
(as TF Serving's clients call it), against the shared server process (conftest.serving)."""
import grpc
import numpy as np
import pytest
import tensorflow as tf
from conftest import SERVE_MAX_BODY_MB, make_digits
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from digits.export import saved_model
from support import traffic


@pytest.fixture(scope='module')
def channel(serving):
    with grpc.insecure_channel(serving[1]) as channel:
        yield channel


@pytest.fixture(scope='module')
def predictions(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope='module')
def export_module(smoke_run):
    return saved_model.load(smoke_run[0].export_dir)


def predict_request(pixels: np.ndarray, signature: str = '', name: str = 'digits',
                    **spec) -> predict_pb2.PredictRequest:
    """A PredictRequest as TF Serving's mnist_client.py builds one."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = name, signature
    if 'version' in spec:
        request.model_spec.version.value = spec['version']
    if 'label' in spec:
        request.model_spec.version_label = spec['label']
    request.inputs['images'].CopyFrom(tf.make_tensor_proto(pixels))
    return request


@pytest.mark.parametrize('signature,spec', [('', {}), ('serving_default', {'version': 1}),
                                            ('serving_uint8', {'label': 'stable'})])
def test_predict_matches_the_export(predictions, export_module, signature, spec):
    digits = make_digits(5, 8)[0]
    pixels = digits if signature == 'serving_uint8' else digits.astype(np.float32) / 255
    want = export_module.signatures[signature or 'serving_default'](images=tf.constant(pixels))
    response = predictions.Predict(predict_request(pixels, signature, **spec), timeout=30)
    assert response.model_spec.name == 'digits' and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == (signature or 'serving_default')
    assert sorted(response.outputs) == ['logits', 'probabilities']
    for name in ('logits', 'probabilities'):
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[name]), want[name].numpy(), atol=1e-5)


def test_output_filter_keeps_the_outputs_asked_for(predictions):
    request = predict_request(np.zeros((2, 28, 28, 1), np.float32))
    request.output_filter.append('probabilities')
    response = predictions.Predict(request, timeout=30)
    assert list(response.outputs) == ['probabilities']
    assert tf.make_ndarray(response.outputs['probabilities']).shape == (2, 10)


def test_metadata_and_status(channel, predictions):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = 'digits'
    request.metadata_field.append('signature_def')
    response = predictions.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata['signature_def'].Unpack(signatures)
    assert signatures.signature_def['serving_default'].inputs['images'].dtype == tf.float32.as_datatype_enum
    assert signatures.signature_def['serving_uint8'].inputs['images'].dtype == tf.uint8.as_datatype_enum
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = 'digits'
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=30)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


@pytest.mark.parametrize('request_,code,message', [
    (predict_request(np.zeros((1, 28, 28), np.float32), name='mnist'), 'NOT_FOUND', 'Latest(mnist)'),
    (predict_request(np.zeros((1, 28, 28), np.float32), version=3), 'NOT_FOUND', 'Specific(digits, 3)'),
    (predict_request(np.zeros((1, 28, 28), np.float32), label='canary'), 'NOT_FOUND', 'version label: canary'),
    (predict_request(np.zeros((1, 28, 28), np.float64)), 'INVALID_ARGUMENT',
     'is float64; serving_default takes float32'),
    (predict_request(np.zeros((1, 28, 28), np.float32), 'serving_uint8'), 'INVALID_ARGUMENT', 'takes uint8'),
    (predict_request(np.zeros((1, 27, 28), np.float32)), 'INVALID_ARGUMENT', 'has shape [1, 27, 28]'),
    (predict_request(np.full((1, 28, 28), 2, np.float32)), 'INVALID_ARGUMENT', 'must be in [0, 1]'),
    (predict_request(np.zeros((1, 28, 28), np.float32), 'serving_bf16'), 'INVALID_ARGUMENT', 'known: serving_default'),
    (predict_request(np.zeros((int(SERVE_MAX_BODY_MB * 1e6) // 3136 + 1, 28, 28), np.float32)),
     'RESOURCE_EXHAUSTED', 'larger than max'),
])
def test_bad_requests_get_tf_servings_status_codes_and_the_server_goes_on(predictions, request_, code, message):
    with pytest.raises(grpc.RpcError) as error:
        predictions.Predict(request_, timeout=30)
    assert error.value.code() == getattr(grpc.StatusCode, code) and message in error.value.details()
    assert '\n' not in error.value.details()
    predictions.Predict(predict_request(np.zeros((1, 28, 28), np.float32)), timeout=30)  # still serving


def test_classify_is_unimplemented(predictions):
    with pytest.raises(grpc.RpcError) as error:
        predictions.Classify(classification_pb2.ClassificationRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_eight_grpc_clients_at_once_get_the_exports_answers(serving, export_module):
    pixels = make_digits(32, 9)[0].astype(np.float32) / 255
    want = np.concatenate([export_module.serve(p[None])['probabilities'].numpy() for p in pixels])
    load = traffic.run_load(lambda: traffic.grpc_sender(serving[1], 30), [predict_request(p[None]) for p in pixels],
                            clients=8, requests=16)
    for c, client in enumerate(load['results']):
        for i, (status, answer, _) in enumerate(client):
            assert status == 200, answer
            np.testing.assert_allclose(answer['probabilities'][0], want[(c + i * 8) % 32], atol=1e-5)

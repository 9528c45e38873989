"""digits.training.fit_epoch: the keras.io convnet it times, and the unit's arithmetic."""
import keras
import numpy as np

from digits.training import fit_epoch, model


def test_the_timed_model_is_the_keras_io_convnet_as_simple_is():
    convnet = fit_epoch.keras_io_convnet()
    assert convnet.count_params() == model.create('simple').count_params() == 34826
    assert convnet.layers[-1].activation is keras.activations.softmax  # keras.io's, not logits


def test_keras_io_convnet_computes_in_the_requested_precision_and_restores_the_policy():
    convnet = fit_epoch.keras_io_convnet('mixed_bfloat16')
    assert convnet.layers[0].compute_dtype == 'bfloat16' and convnet.layers[0].variable_dtype == 'float32'
    assert convnet.layers[-1].compute_dtype == 'float32'  # the softmax
    assert keras.mixed_precision.dtype_policy().name == 'float32'


def test_measure_seconds_times_epochs_after_the_first_and_scales_to_10000_images(monkeypatch):
    epochs_seen = []

    class Clock(fit_epoch.EpochClock):  # the real callback, with the seconds it measured replaced
        def on_epoch_end(self, epoch, logs=None):
            epochs_seen.append(epoch)
            self.seconds.append([9.0, 1.0, 3.0, 2.0][epoch])  # the first (tracing) epoch must not count

    monkeypatch.setattr(fit_epoch, 'EpochClock', Clock)
    images, labels = np.zeros((50, 28, 28), np.uint8), np.arange(50) % 10
    assert fit_epoch.measure_seconds(images, labels, epochs=4, num_images=500) == 2.0 * 10_000 / 500
    assert epochs_seen == [0, 1, 2, 3]


def test_measure_seconds_really_trains():
    rng = np.random.default_rng(0)
    seconds = fit_epoch.measure_seconds(rng.integers(0, 256, (64, 28, 28), np.uint8), np.arange(64) % 10,
                                        epochs=2, num_images=256)
    assert seconds > 0

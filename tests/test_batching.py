"""digits.serving.batching: concurrent callers share model calls and each gets its own rows, or the call's error."""
import threading
import time

import numpy as np
import pytest

from digits.serving import batching


class SlowModel:
    """Doubles its input, taking `seconds` per call; records each call's batch size."""

    def __init__(self, seconds: float = 0.02, fail: bool = False):
        self.seconds, self.fail, self.sizes = seconds, fail, []

    def __call__(self, images):
        self.sizes.append(len(images))
        time.sleep(self.seconds)
        if self.fail:
            raise ValueError('the model failed')
        return {'double': images * 2, 'sum': images.reshape(len(images), -1).sum(axis=1)}


def call_concurrently(predict, inputs: list[np.ndarray]) -> list:
    """predict(x) for each x from its own thread, all released at once; the answers (or errors) in order."""
    answers, barrier = [None] * len(inputs), threading.Barrier(len(inputs))

    def call(i):
        barrier.wait()
        try:
            answers[i] = predict(inputs[i])
        except Exception as e:  # noqa: BLE001 (the test looks at it)
            answers[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_concurrent_callers_share_calls_and_each_gets_its_own_rows():
    model = SlowModel()
    batcher = batching.Batcher(model, max_batch_size=64, batch_timeout_micros=0)
    inputs = [np.full((1 + i % 3, 2, 2), i, np.float32) for i in range(24)]
    answers = call_concurrently(batcher.predict, inputs)
    batcher.stop()
    for x, answer in zip(inputs, answers):
        np.testing.assert_array_equal(answer['double'], x * 2)
        np.testing.assert_array_equal(answer['sum'], x.reshape(len(x), -1).sum(axis=1))
    assert sum(model.sizes) == sum(len(x) for x in inputs)
    assert len(model.sizes) < len(inputs) and batcher.batches == len(model.sizes)  # joined: fewer calls


def test_a_batch_never_exceeds_the_largest_size_unless_one_request_does():
    model = SlowModel()
    batcher = batching.Batcher(model, max_batch_size=5, batch_timeout_micros=20000)
    answers = call_concurrently(batcher.predict, [np.ones((2, 1), np.float32)] * 9 + [np.ones((7, 1), np.float32)])
    batcher.stop()
    assert all(not isinstance(a, Exception) for a in answers)
    assert sorted(model.sizes, reverse=True)[0] == 7 and all(size <= 5 for size in model.sizes if size != 7)
    assert sum(model.sizes) == 25


def test_the_timeout_waits_for_more_requests():
    """With a timeout, a lone request waits for company: two requests 20 ms apart share one call."""
    model = SlowModel(seconds=0)
    batcher = batching.Batcher(model, max_batch_size=8, batch_timeout_micros=500_000)
    late = threading.Timer(0.02, lambda: batcher.predict(np.ones((1, 1), np.float32)))
    late.start()
    start = time.perf_counter()
    batcher.predict(np.ones((1, 1), np.float32))
    late.join()
    batcher.stop()
    assert model.sizes == [2] and time.perf_counter() - start < 5


def test_a_failed_call_raises_in_every_caller_and_the_batcher_goes_on():
    model = SlowModel(fail=True)
    batcher = batching.Batcher(model, max_batch_size=8, batch_timeout_micros=0)
    answers = call_concurrently(batcher.predict, [np.ones((1, 1), np.float32)] * 4)
    assert all(isinstance(a, ValueError) for a in answers)
    model.fail = False
    np.testing.assert_array_equal(batcher.predict(np.ones((1, 1), np.float32))['double'], [[2]])
    batcher.stop()
    with pytest.raises(RuntimeError, match='stopped'):
        batcher.predict(np.ones((1, 1), np.float32))

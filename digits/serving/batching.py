"""Joins concurrent requests into one model call, as TensorFlow Serving's --enable_batching does.

Every caller (a REST or gRPC predict, a page's reading) hands its images to `Batcher.predict` and blocks;
one thread takes what is queued, up to max_batch_size images, waiting at most batch_timeout_micros after
the first for more, runs the model once on them all and hands each caller its own rows. While the model
runs, new requests queue: under load, batches form even with a timeout of 0.
"""
import collections
import threading
import time
from collections.abc import Callable

import numpy as np

Outputs = dict[str, np.ndarray]  # {'probabilities': [n, classes], 'logits': [n, classes]}


class _Pending:
    """One caller's images and, once the batch has run, its outputs (or the error)."""

    def __init__(self, images: np.ndarray):
        self.images, self.done = images, threading.Event()
        self.outputs: Outputs | None = None
        self.error: BaseException | None = None


class Batcher:
    """Runs model(images) -> Outputs on the images of concurrent callers together."""

    def __init__(self, model: Callable[[np.ndarray], Outputs], *, max_batch_size: int,
                 batch_timeout_micros: int):
        self._model, self._max, self._timeout = model, max_batch_size, batch_timeout_micros / 1e6
        self._queue: collections.deque[_Pending] = collections.deque()
        self._ready = threading.Condition()
        self._stopped = False
        self.batches = 0  # model calls so far (batch sizes tell how well requests were joined)
        self._thread = threading.Thread(target=self._run, name='batcher', daemon=True)
        self._thread.start()

    def predict(self, images: np.ndarray) -> Outputs:
        """float32 [n, h, w] -> this caller's outputs, computed in a batch with whatever else is queued."""
        pending = _Pending(images)
        with self._ready:
            if self._stopped:
                raise RuntimeError('the batcher is stopped')
            self._queue.append(pending)
            self._ready.notify()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.outputs

    def stop(self):
        """Runs what is queued, then ends the batching thread."""
        with self._ready:
            self._stopped = True
            self._ready.notify()
        self._thread.join()

    def _run(self):
        while True:
            batch = self._take_batch()
            if not batch:
                return
            self._run_batch(batch)

    def _take_batch(self) -> list[_Pending]:
        """Waits for a first request, then gathers more until the batch is full or the timeout passes."""
        with self._ready:
            while not self._queue and not self._stopped:
                self._ready.wait()
            deadline = time.monotonic() + self._timeout
            batch, size = [], 0
            while True:
                while self._queue and (not batch or size + len(self._queue[0].images) <= self._max):
                    batch.append(self._queue.popleft())
                    size += len(batch[-1].images)
                left = deadline - time.monotonic()
                if size >= self._max or left <= 0 or self._stopped or (self._queue and batch):
                    return batch
                self._ready.wait(left)

    def _run_batch(self, batch: list[_Pending]):
        """One model call for the whole batch; each caller gets its rows (or the call's error)."""
        try:
            outputs = self._model(np.concatenate([p.images for p in batch]))
        except BaseException as e:  # noqa: BLE001 (handed to every caller, which raises it)
            for pending in batch:
                pending.error = e
                pending.done.set()
            return
        self.batches += 1
        start = 0
        for pending in batch:
            end = start + len(pending.images)
            pending.outputs = {name: value[start:end] for name, value in outputs.items()}
            pending.done.set()
            start = end


"""Stopping cleanly on SIGTERM / SIGINT: checkpoint at the current step, say so, exit.

Python runs a signal handler only between bytecodes, so a signal that arrives during a tf.function call
takes effect when the call returns: at most --steps_per_loop steps later. The outer loop then calls
`check(step, save)`, which saves and raises errors.Interrupted. Under multi_worker one worker's signal
must stop all of them at the same step (they run collectives together), which is what TensorFlow's
PreemptionCheckpointHandler coordinates.
"""
import signal

import tensorflow as tf

from digits.errors import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def resume_hint(step: int, path: str) -> str:
    return f'checkpoint saved at step {step} ({path}); rerun the same command to resume'


class SignalStop:
    """One process: records SIGTERM / SIGINT, and at the next check saves and raises Interrupted."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _record(self, signum, frame):
        self.signum = signum

    def check(self, step: int, save):
        """If a signal arrived: checkpoint at step and raise Interrupted."""
        if self.signum is not None:
            raise Interrupted(self.signum, resume_hint(step, save(step)))


class MultiWorkerStop:
    """multi_worker: TensorFlow's PreemptionCheckpointHandler makes every worker save at the same step.

    It watches SIGTERM on each worker and shares the news through the coordination service; create it
    inside strategy.scope() after restoring (it adds a run counter to the checkpoint and restores it).
    SIGINT (Ctrl-C in a terminal) is left to Python: it is not a preemption.
    """

    def __init__(self, strategy: tf.distribute.Strategy, saver):
        self._saver, self._step = saver, 0
        config = tf.distribute.experimental.TerminationConfig(save_fn=self._save, exit_fn=self._exit)
        self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            strategy.cluster_resolver, saver.manager, termination_config=config)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def _save(self):
        self._path = self._saver.save(self._step)

    def _exit(self):
        raise Interrupted(signal.SIGTERM, 'all workers stopped; ' + resume_hint(self._step, self._path))

    def check(self, step: int, save):
        """Called by every worker after every tf.function call, so their call counts stay aligned."""
        self._step = step
        self._handler.save_checkpoint_if_preempted()

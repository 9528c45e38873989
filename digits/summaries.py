"""TensorBoard writers for a run (train/ and eval/ under the run directory) and the logging window."""
import tensorflow as tf


class Writers:
    """One tf.summary writer per event directory; scalars are tagged '<writer>/<name>', e.g. train/loss.

    Only the chief writes: the other workers of a multi-worker run get no-op writers.
    """

    def __init__(self, run_root: str | None, names=('train', 'eval')):
        self._writers = {
            name: (tf.summary.create_file_writer(f'{run_root}/{name}') if run_root
                   else tf.summary.create_noop_writer()) for name in names}

    def write(self, name: str, step: int, scalars: dict):
        """Writes each scalar as tag '<name>/<key>' at `step`."""
        with self._writers[name].as_default(step=step):
            for key, value in scalars.items():
                tf.summary.scalar(f'{name}/{key}', value)

    def flush(self):
        for writer in self._writers.values():
            writer.flush()


class Window:
    """Accumulates training metrics between two log lines, weighted by examples."""

    def __init__(self):
        self._sums, self._examples, self._seconds, self._steps = {}, 0, 0.0, 0

    def add(self, metrics: dict, steps: int, examples: int, seconds: float):
        for key, value in metrics.items():
            self._sums[key] = self._sums.get(key, 0.0) + value * examples
        self._examples += examples
        self._seconds += seconds
        self._steps += steps

    def flush(self, **extra) -> dict:
        """The window's means plus examples_per_sec and step_time (seconds per step); then resets."""
        result = {key: total / self._examples for key, total in self._sums.items()}
        result['examples_per_sec'] = self._examples / max(self._seconds, 1e-9)
        result['step_time'] = self._seconds / max(self._steps, 1)
        result.update(extra)
        self.__init__()
        return result


class Profiler:
    """Records a TensorFlow profiler trace of `num_steps` steps into logdir (TensorBoard's Profile tab).

    The trace starts at the first call after `skip_until` (the first call traces and compiles the step
    function, which is not what a profile should show) and stops once num_steps steps have run.
    """

    def __init__(self, logdir: str, num_steps: int, skip_until: int):
        self._logdir, self._num_steps, self._skip_until = logdir, num_steps, skip_until
        self._start, self.done = None, num_steps <= 0

    def before_call(self, step: int):
        if not self.done and self._start is None and step >= self._skip_until:
            tf.profiler.experimental.start(self._logdir)
            self._start = step

    def after_call(self, step: int):
        if self._start is not None and step - self._start >= self._num_steps:
            self.close()

    def close(self):
        """Stops a trace still running (the run ended before num_steps)."""
        if self._start is not None and not self.done:
            tf.profiler.experimental.stop()
        self.done = True

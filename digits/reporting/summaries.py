"""TensorBoard writers for a run (train/ and eval/ under the run directory) and the logging window."""
import glob
import os

import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api


class Writers:
    """One tf.summary writer per event directory; scalars are tagged '<writer>/<name>', e.g. train/loss.

    Only the chief writes: the other workers of a multi-worker run get no-op writers.
    """

    def __init__(self, run_root: str | None, names=('train', 'eval')):
        self.active = run_root is not None
        create = (lambda path: tf.summary.create_file_writer(path)) if run_root else (
            lambda path: tf.summary.create_noop_writer())
        self._writers = {name: create(f'{run_root}/{name}') for name in names}
        # The HParams plugin takes the run directory itself as one session, its train/ and eval/ as groups.
        self._writers['session'] = create(str(run_root))

    def write(self, name: str, step: int, scalars: dict):
        """Writes each scalar as tag '<name>/<key>' at `step`."""
        with self._writers[name].as_default(step=step):
            for key, value in scalars.items():
                tf.summary.scalar(f'{name}/{key}', value)

    def images(self, name: str, step: int, tag: str, pngs: list[bytes]):
        """PNG images (e.g. matplotlib figures) as image summary '<name>/<tag>'."""
        with self._writers[name].as_default(step=step):
            batch = tf.stack([tf.io.decode_png(png, channels=3) for png in pngs])  # [k, h, w, 3] uint8
            tf.summary.image(f'{name}/{tag}', batch, max_outputs=len(pngs))

    def histograms(self, name: str, step: int, variables):
        """One histogram per variable, tagged by its path ('weights/<layer>/<variable>')."""
        with self._writers[name].as_default(step=step):
            for variable in variables:
                tf.summary.histogram(f'weights/{variable.path}', variable, buckets=50)

    def text(self, name: str, step: int, tag: str, markdown: str):
        with self._writers[name].as_default(step=step):
            tf.summary.text(f'{name}/{tag}', markdown)

    def hparams(self, values: dict, trial_id: str):
        """The run's hyperparameters for the HParams plugin (its metrics are the run's scalars)."""
        with self._writers['session'].as_default():
            hparams_api.hparams(values, trial_id=trial_id)

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


def read_events(event_dir: str, plugin: str) -> dict:
    """{tag: [(step, tensor as a NumPy array), ...]} of one TensorBoard plugin's summaries in event_dir
    ('scalars', 'images', 'histograms', 'text'...), e.g. logs/<run>/train."""
    found = {}
    for path in sorted(glob.glob(os.path.join(event_dir, 'events.out.tfevents.*'))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == plugin:
                    found.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)))
    return found


def read_scalars(event_dir: str) -> dict:
    """{tag: ([steps], [values])} of the scalar summaries in event_dir (e.g. logs/<run>/train)."""
    return {tag: ([step for step, _ in points], [float(value) for _, value in points])
            for tag, points in read_events(event_dir, 'scalars').items()}

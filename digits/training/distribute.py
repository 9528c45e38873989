"""Building the tf.distribute strategy: CPU logical replicas, TF_CONFIG for multi-worker, TPU resolver."""
import json
import os

import tensorflow as tf

from digits.config import TPU_NEEDED
from digits.errors import DigitsError, first_line


def create_strategy(name: str, cpu_replicas: int = 0, tpu: str | None = None) -> tf.distribute.Strategy:
    """Returns the strategy `name`; call before any other TensorFlow work (logical devices are fixed then)."""
    if cpu_replicas:
        split_cpu(cpu_replicas)
    return STRATEGIES[name](cpu_replicas=cpu_replicas, tpu=tpu)


def create_one_device_strategy() -> tf.distribute.Strategy:
    """The first GPU if there is one, else the CPU, named explicitly."""
    return tf.distribute.OneDeviceStrategy('/gpu:0' if tf.config.list_logical_devices('GPU') else '/cpu:0')


def split_cpu(num: int):
    """Splits the first physical CPU into `num` logical devices, so one machine can hold `num` replicas."""
    cpu = tf.config.list_physical_devices('CPU')[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(num)]
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        # TensorFlow is already initialised (a later run in one process): fine if there are enough.
        have = len(tf.config.list_logical_devices('CPU'))
        if have < num:
            raise DigitsError(f'--cpu_replicas ({num}) cannot be applied: TensorFlow already started with '
                              f'{have} CPU devices in this process') from None


def mirrored_devices(cpu_replicas: int = 0) -> list[str]:
    """All GPUs if there are any, else the first cpu_replicas logical CPUs (all of them if 0)."""
    gpus = tf.config.list_logical_devices('GPU')
    if gpus:
        return [d.name for d in gpus]
    cpus = [d.name for d in tf.config.list_logical_devices('CPU')]
    return cpus[:cpu_replicas] if cpu_replicas else cpus


def create_mirrored_strategy(cpu_replicas: int = 0) -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over all GPUs (TensorFlow's default all-reduce), or over logical CPUs.

    Logical CPU replicas share the host's memory, so reducing on one device is as good as collectives,
    and it keeps no collective-key state: TensorFlow's collectives break when a process builds several
    strategies with different replica counts (tensorflow#61314), as tests and notebooks do.
    """
    devices = mirrored_devices(cpu_replicas)
    if tf.config.list_logical_devices('GPU'):
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.MirroredStrategy(devices=devices,
                                          cross_device_ops=tf.distribute.ReductionToOneDevice())


def create_multi_worker_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy configured from the standard TF_CONFIG environment variable."""
    try:
        cluster = json.loads(os.environ.get('TF_CONFIG', '{}')).get('cluster')
    except json.JSONDecodeError as e:
        raise DigitsError(f'TF_CONFIG is not valid JSON ({e})') from None
    if not cluster:
        raise DigitsError('--strategy=multi_worker needs TF_CONFIG with a "cluster" and a "task" '
                          '(see scripts/launch_multi_worker.py)')
    return tf.distribute.MultiWorkerMirroredStrategy()


def create_tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    """TPUStrategy on the TPU named or addressed by `tpu`; a one-line error when none is reachable."""
    if not tpu:  # An empty name makes the resolver query the GCE metadata server: ask instead.
        raise DigitsError(TPU_NEEDED)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise DigitsError(f'--strategy=tpu: no TPU reachable at --tpu ({tpu}): {first_line(e)}') from None
    return tf.distribute.TPUStrategy(resolver)


STRATEGIES = {  # --strategy name -> factory(cpu_replicas=, tpu=)
    'default': lambda cpu_replicas, tpu: tf.distribute.get_strategy(),
    'one_device': lambda cpu_replicas, tpu: create_one_device_strategy(),
    'mirrored': lambda cpu_replicas, tpu: create_mirrored_strategy(cpu_replicas),
    'multi_worker': lambda cpu_replicas, tpu: create_multi_worker_strategy(),
    'tpu': lambda cpu_replicas, tpu: create_tpu_strategy(tpu),
}


def task_id(strategy: tf.distribute.Strategy) -> int:
    """This worker's index in a multi-worker cluster; 0 on a single host."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.task_type else 0


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes summaries, results and the export (every single-host run)."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = 'chief' in resolver.cluster_spec().as_dict()
    return resolver.task_type == 'chief' or (not has_chief and resolver.task_type == 'worker'
                                             and resolver.task_id == 0)

"""How far a recipe's training loss stays below the divergence limit in its first steps, over seeds.

    python scripts/divergence_margin.py --flagfile=configs/mnist.cfg --data_dir=../shared/datasets/mnist-10k \
        --steps=400 --seeds=0,1,2,3,4

Trains the recipe's first --steps steps with its real schedule (the warm-up and the decay of the full
run), --steps_per_loop steps per call as the recipe does, and prints each seed's largest per-call mean
training loss next to digits' divergence limit (loop.divergence_limit). The early steps are where a
sound run's loss is highest: a fresh model starts near a uniform guess and training lowers it.
"""

from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def early_losses(cfg: config.TrainConfig, steps: int) -> list[float]:
    """The mean training loss of each tf.function call over cfg's first `steps` steps."""
    import keras
    import tensorflow as tf
    from digits import data, experiment, loop
    keras.utils.set_random_seed(cfg.seed)
    train = data.load(cfg.dataset, cfg.data_dir).train
    total_steps = cfg.total_steps(len(train))
    state = experiment.create_train_state(cfg, total_steps)
    strategy = tf.distribute.get_strategy()
    train_fn = loop.make_train_fn(strategy, state, cfg.batch_size, label_smoothing=cfg.label_smoothing)
    iterator = iter(data.train_dataset_for(cfg, train))
    calls = -(-steps // cfg.steps_per_loop)
    return [float(train_fn(iterator, tf.constant(cfg.steps_per_loop))['loss']) for _ in range(calls)]


def main(argv):
    del argv
    base = config.train_config_from_flags(FLAGS)
    cli.load_tensorflow()
    import dataclasses
    from digits import datasets, loop
    limit = loop.divergence_limit(datasets.DATASETS[base.dataset].num_classes)
    print(f'{base.dataset} {base.model}: largest per-call training loss in the first {FLAGS.steps} steps '
          f'(limit {limit:.2f})')
    for seed in map(int, FLAGS.seeds):
        losses = early_losses(dataclasses.replace(base, seed=seed), FLAGS.steps)
        print(f'seed {seed}: max {max(losses):.3f} (call {losses.index(max(losses)) + 1}), last {losses[-1]:.3f}, '
              f'limit / max {limit / max(losses):.1f}x', flush=True)


if __name__ == '__main__':
    config.define_train_flags()
    flags.DEFINE_integer('steps', 400, 'Steps to train from the start of each seed\'s run.')
    flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds to try.')
    cli.run(main, 'divergence_margin')

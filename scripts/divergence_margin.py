"""How far a recipe's training loss stays below the divergence limit in its first steps, over seeds.

    python scripts/divergence_margin.py --flagfile=configs/mnist.cfg --steps=400 --seeds=0,1,2,3,4

Trains the recipe's first --steps steps with its real schedule (the warm-up and the decay of the full
run), --steps_per_loop steps per call as the recipe does, and prints each seed's largest per-call mean
training loss next to digits' divergence limit (loop.divergence_limit). The early steps are where a
sound run's loss is highest: a fresh model starts near a uniform guess and training lowers it.
"""

from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    del argv
    base = config.train_config_from_flags(FLAGS)
    cli.load_tensorflow()
    import dataclasses

    from digits.data import datasets
    from digits.training import experiment, loop
    limit = loop.divergence_limit(datasets.DATASETS[base.dataset].num_classes)
    print(f'{base.dataset} {base.arch}: largest per-call training loss in the first {FLAGS.steps} steps '
          f'(limit {limit:.2f})')
    for seed in map(int, FLAGS.seeds):
        losses = experiment.early_losses(dataclasses.replace(base, seed=seed), FLAGS.steps)
        print(f'seed {seed}: max {max(losses):.3f} (call {losses.index(max(losses)) + 1}), last {losses[-1]:.3f}, '
              f'limit / max {limit / max(losses):.1f}x', flush=True)


if __name__ == '__main__':
    config.define_train_flags()
    flags.DEFINE_integer('steps', 400, 'Steps to train from the start of each seed\'s run.')
    flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds to try.')
    cli.run(main, 'divergence_margin', flags_help=lambda: cli.script_flags_help() +
            '\n\nand every flag of digits.train (python -m digits.train --help), for the recipe.')

"""Evaluates every run under --logdir (its export if present, else its latest checkpoint) on its
dataset's test set, and prints one Markdown table, ready to paste into the README.

    python scripts/evaluate_runs.py --logdir=logs
"""
import os
import sys

from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS
flags.DEFINE_string('logdir', 'logs', 'Folder of run directories to evaluate.')
flags.DEFINE_string('data_dir', None, 'Dataset folder passed to each evaluation (unset: each run\'s dataset, '
                    'bundled or downloaded).')
flags.DEFINE_integer('batch_size', config.EvalConfig.batch_size, 'Evaluation batch size.')


def find_runs(logdir: str) -> list[str]:
    """Run directories under logdir: those holding a config.json, sorted by name."""
    if not os.path.isdir(logdir):
        return []
    return sorted(os.path.join(logdir, name) for name in os.listdir(logdir)
                  if os.path.isfile(os.path.join(logdir, name, 'config.json')))


def evaluate_run(root: str, data_dir: str | None, batch_size: int) -> dict:
    """One table row for the run at root: its export if it has one, else its latest checkpoint."""
    from digits import atomic
    from digits.training import evaluation
    stored = config.upgrade_stored(atomic.read_json(os.path.join(root, 'config.json')))
    export_dir = stored.get('export_dir')
    use_export = bool(export_dir) and os.path.isfile(os.path.join(export_dir, 'saved_model.pb'))
    eval_config = config.EvalConfig(model=export_dir if use_export else None,
                                    run_dir=None if use_export else root, dataset=stored['dataset'],
                                    data_dir=data_dir, batch_size=batch_size)
    metrics = evaluation.evaluate_saved(eval_config, log=lambda line: None)
    return {'run': os.path.basename(root), 'arch': stored['arch'], 'dataset': stored['dataset'],
            'source': 'export' if use_export else 'checkpoint', **metrics}


def format_table(rows: list[dict]) -> str:
    """Rows as a Markdown table."""
    lines = ['| run | arch | dataset | evaluated | test accuracy | test loss | examples |',
             '| --- | --- | --- | --- | ---: | ---: | ---: |']
    for r in rows:
        lines.append(f'| {r["run"]} | {r["arch"]} | {r["dataset"]} | {r["source"]} | '
                     f'{100 * r["accuracy"]:.2f}% | {r["loss"]:.4f} | {r["num_examples"]} |')
    return '\n'.join(lines)


def main(argv):
    del argv
    runs = find_runs(FLAGS.logdir)
    if not runs:
        cli.fail('evaluate_runs', f'--logdir ({FLAGS.logdir}) holds no run directories (no */config.json)')
    rows = []
    for root in runs:
        try:
            rows.append(evaluate_run(root, FLAGS.data_dir, FLAGS.batch_size))
        except Exception as e:  # One broken run must not hide the others' rows.
            print(f'evaluate_runs: skipped {root}: {e}', file=sys.stderr)
    print(format_table(rows))


if __name__ == '__main__':
    cli.run(main, 'evaluate_runs')

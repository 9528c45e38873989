"""Plots a run's training curves from its TensorBoard event files to a PNG.

    python scripts/plot_curves.py logs/<run_name> [logs/<other_run> ...] [--output=curves.png]

Loss and accuracy (training every --log_every_steps, evaluation every --eval_every_steps) and the
learning rate, one line per run, so several runs can be compared on one figure.
"""
import argparse
import os
import sys

from matplotlib.figure import Figure

from digits import cli

PANELS = (('loss', 'loss', 'log'), ('accuracy', 'accuracy', 'linear'), ('learning rate', 'learning_rate', 'linear'))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', help='Run directories (<logdir>/<run_name>).')
    parser.add_argument('--output', default='curves.png', help='PNG file to write.')
    return parser.parse_args(argv)


def load_run(run: str) -> dict:
    """{tag: (steps, values)} of a run's train/ and eval/ scalars; exits with one line if it has none."""
    from digits.reporting import summaries
    scalars = {**summaries.read_scalars(os.path.join(run, 'train')),
               **summaries.read_scalars(os.path.join(run, 'eval'))}
    if not scalars:
        sys.exit(f'plot_curves: error: {run} has no TensorBoard scalars in train/ or eval/; is it a run directory?')
    return scalars


def curves_figure(runs: dict) -> Figure:
    """One panel per quantity; solid lines for training, dashed with dots for evaluation."""
    figure = Figure(figsize=(14, 4), dpi=100)
    for i, (title, key, scale) in enumerate(PANELS):
        ax = figure.add_subplot(1, len(PANELS), i + 1)
        for name, scalars in runs.items():
            for split, style in (('train', '-'), ('eval', '--o')):
                if f'{split}/{key}' in scalars:
                    steps, values = scalars[f'{split}/{key}']
                    ax.plot(steps, values, style, markersize=3, label=f'{name} {split}')
        ax.set(title=title, xlabel='step', yscale=scale)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def main(argv=None):
    args = parse_args(argv)
    cli.load_tensorflow()  # the event files are read with TensorFlow, its start-up lines silenced
    from digits.reporting import analysis
    runs = {os.path.basename(os.path.normpath(run)): load_run(run) for run in args.runs}
    with open(args.output, 'wb') as f:
        f.write(analysis.to_png(curves_figure(runs)))
    print(f'wrote {args.output} ({", ".join(runs)})')


if __name__ == '__main__':
    main()

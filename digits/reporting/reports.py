"""What a run shows besides its scalars: TensorBoard images, histograms, text and hparams during training,
and the evaluation report (PNG figures + Markdown) of `digits.evaluate --report_dir`.
"""
import dataclasses
import os

import numpy as np

from digits import atomic
from digits import config as config_lib
from digits.data import arrays, datasets, line_format, pipeline, synthetic_lines
from digits.reading import lines as reading_lines
from digits.reporting import analysis, summaries

INPUT_GRID = 32  # Training inputs shown in TensorBoard.
LINE_GRID = 16  # and the line reader's training lines, and the lines it read at each evaluation


def line_text(labels) -> str:
    """A line's labels as text: its digits, '?' for a mark that is not a digit."""
    return ''.join('?' if k == line_format.NOT_A_DIGIT else str(k) for k in labels if k != line_format.PAD)


def write_run_summaries(writers: summaries.Writers, config: config_lib.TrainConfig, train_split: arrays.Split,
                        step: int):
    """The chief's one-off summaries: flags as text, hyperparameters, the inputs as the model sees them."""
    if not writers.active:
        return
    writers.text('train', step, 'flags', '\n'.join(
        ['| flag | value |', '| --- | --- |'] + [f'| {k} | {v} |' for k, v in dataclasses.asdict(config).items()]))
    writers.hparams({k: getattr(config, k) for k in config_lib.hyperparameters(type(config))}, trial_id=config.run_name)
    if config.arch == 'line':
        images, labels = next(iter(synthetic_lines.train_dataset(train_split, config.batch_size, config.seed,
                                                                 start_step=step)))
        figure = analysis.digits_figure(images.numpy()[:LINE_GRID], [line_text(row) for row in labels.numpy()],
                                        columns=2, title=f'training lines at step {step}')
        writers.images('train', step, 'inputs', [analysis.to_png(figure)])
        return
    # After augmentation, as trained on.
    images, labels = next(iter(pipeline.train_dataset_for(config, train_split, start_step=step)))
    if config.ensemble > 1:  # [b, members, ...]: the first member's batch
        images, labels = images[:, 0], labels[:, 0]
    names = datasets.DATASETS[config.dataset].class_names + (datasets.NOT_A_DIGIT,)
    figure = analysis.digits_figure(images.numpy()[:INPUT_GRID], [names[k] for k in labels.numpy()[:INPUT_GRID]],
                                    title=f'training inputs at step {step}')
    writers.images('train', step, 'inputs', [analysis.to_png(figure)])


def reports_evaluations(config: config_lib.TrainConfig) -> bool:
    """Whether evaluations during training are reported (make_eval_report), so that they also gather each
    example's probabilities. The same on every worker (they all take part in gathering); not on TPU, where
    the report's figures would wait on the host."""
    return config.strategy != 'tpu'


def make_eval_report(writers: summaries.Writers, config: config_lib.TrainConfig, model, split: arrays.Split):
    """on_eval(step, metrics) for loop.train: confusion matrix, worst mistakes, per-class accuracy, weight
    histograms, from the evaluation's own probabilities (no second pass over the split). Only the chief
    writes them."""
    if not writers.active or not reports_evaluations(config):
        return None
    if config.arch == 'line':
        return make_line_eval_report(writers, model, split)
    names = datasets.DATASETS[config.dataset].class_names

    def on_eval(step: int, metrics: dict):
        result = analysis.Analysis(metrics['probabilities'], split.labels.astype(np.int64))
        _, recall = result.precision_recall()  # recall of class k = accuracy on the examples of class k
        writers.write('eval', step, {f'class_accuracy/{name}': float(r) for name, r in zip(names, recall)})
        writers.images('eval', step, 'confusion_matrix',
                       [analysis.to_png(analysis.confusion_figure(result.confusion(), names))])
        writers.images('eval', step, 'worst_errors',
                       [analysis.to_png(analysis.errors_figure(result, split.images, names))])
        writers.histograms('train', step, model.trainable_variables)

    return on_eval


def make_line_eval_report(writers: summaries.Writers, model, split: arrays.Split):
    """on_eval(step, metrics) for the line reader: the first LINE_GRID evaluation lines with what it read
    (greedy CTC decoding, digits.reading.lines) and the truth, and the weight histograms."""

    def on_eval(step: int, metrics: dict):
        read = [reading_lines.text_of(reading_lines.decode(p)) for p in metrics['probabilities'][:LINE_GRID]]
        titles = [f'{text}  ({"right" if text == line_text(truth) else "truth " + line_text(truth)})'
                  for text, truth in zip(read, split.labels)]
        figure = analysis.digits_figure(split.images[:LINE_GRID], titles, columns=2, title=f'lines read at step {step}')
        writers.images('eval', step, 'lines_read', [analysis.to_png(figure)])
        writers.histograms('train', step, model.trainable_variables)

    return on_eval


REPORT_FIGURES = (('confusion.png', 'Confusion matrix'), ('errors.png', 'Most confident mistakes'),
                  ('per_class.png', 'Per-class precision and recall'), ('reliability.png', 'Reliability'))


def write_report(directory: str, result: analysis.Analysis, split: arrays.Split, *, dataset: str, source: str) -> str:
    """The evaluation report: four PNG figures and report.md linking them; returns report.md's path."""
    atomic.check_writable(directory, f'--report_dir ({directory})')
    names = datasets.DATASETS[dataset].class_names
    figures = [analysis.confusion_figure(result.confusion(), names),
               analysis.errors_figure(result, split.images, names),
               analysis.per_class_figure(result, names), analysis.reliability_figure(result)]
    for (file_name, _), figure in zip(REPORT_FIGURES, figures):
        atomic.write_bytes(os.path.join(directory, file_name), analysis.to_png(figure))
    precision, recall = result.precision_recall()
    lines = [f'# Evaluation of {source}', '',
             f'{dataset} test set: accuracy **{100 * result.accuracy:.2f}%** on {len(split)} examples, '
             f'expected calibration error {100 * result.calibration()[3]:.2f}%.', '',
             '| class | precision | recall | examples |', '| --- | ---: | ---: | ---: |']
    counts = np.bincount(result.labels, minlength=len(names))
    lines += [f'| {n} | {100 * p:.2f}% | {100 * r:.2f}% | {c} |'
              for n, p, r, c in zip(names, precision, recall, counts)]
    for file_name, title in REPORT_FIGURES:
        lines += ['', f'## {title}', '', f'![{title}]({file_name})']
    path = os.path.join(directory, 'report.md')
    atomic.write_bytes(path, ('\n'.join(lines) + '\n').encode())
    return path

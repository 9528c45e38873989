"""What a run shows besides its scalars: TensorBoard images, histograms, text and hparams during training,
and the evaluation report (PNG figures + Markdown) of `digits.evaluate --report_dir`.
"""
import dataclasses
import os

import numpy as np

from digits import atomic
from digits import config as config_lib
from digits.data import arrays, datasets, pipeline
from digits.reporting import analysis, summaries

INPUT_GRID = 32  # Training inputs shown in TensorBoard.


def write_run_summaries(writers: summaries.Writers, config: config_lib.TrainConfig, train_split: arrays.Split,
                        step: int):
    """The chief's one-off summaries: flags as text, hyperparameters, the inputs as the model sees them."""
    if not writers.active:
        return
    writers.text('train', step, 'flags', '\n'.join(
        ['| flag | value |', '| --- | --- |'] + [f'| {k} | {v} |' for k, v in dataclasses.asdict(config).items()]))
    writers.hparams({k: getattr(config, k) for k in config_lib.hyperparameters(type(config))}, trial_id=config.run_name)
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

"""What a model gets right and wrong on a split: predictions, confusion, per-class figures, calibration,
and the matplotlib figures of each (PNG bytes), used by TensorBoard summaries and evaluation reports.

Figures are drawn on matplotlib.figure.Figure with the Agg canvas: no pyplot, no global state, no screen.
"""
import dataclasses
import io

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from digits.data import arrays, pipeline


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Predictions on a split: probabilities [n, classes], labels [n], and what follows from them."""
    probabilities: np.ndarray
    labels: np.ndarray

    @property
    def num_classes(self) -> int:
        return self.probabilities.shape[1]

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels))

    def confusion(self) -> np.ndarray:
        """[classes, classes] counts: rows are true classes, columns predicted classes."""
        k = self.num_classes
        return np.bincount(self.labels * k + self.predicted, minlength=k * k).reshape(k, k)

    def precision_recall(self) -> tuple[np.ndarray, np.ndarray]:
        """Per class [classes] each; a class never predicted has precision 0."""
        cm = self.confusion().astype(np.float64)
        return np.diag(cm) / np.maximum(cm.sum(axis=0), 1), np.diag(cm) / np.maximum(cm.sum(axis=1), 1)

    def worst_errors(self, k: int) -> np.ndarray:
        """Indices of the k misclassified examples the model was most confident about."""
        wrong = np.nonzero(self.predicted != self.labels)[0]
        confidence = self.probabilities[wrong, self.predicted[wrong]]
        return wrong[np.argsort(-confidence, kind='stable')[:k]]

    def calibration(self, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Per confidence bin: mean confidence, accuracy, count [bins]; and the expected calibration error."""
        confidence = self.probabilities.max(axis=1)
        correct = (self.predicted == self.labels).astype(np.float64)
        which = np.minimum((confidence * bins).astype(int), bins - 1)
        counts = np.bincount(which, minlength=bins)
        mean_conf = np.bincount(which, confidence, bins) / np.maximum(counts, 1)
        accuracy = np.bincount(which, correct, bins) / np.maximum(counts, 1)
        ece = float(np.sum(counts * np.abs(accuracy - mean_conf)) / max(len(correct), 1))
        return mean_conf, accuracy, counts, ece


def analyze(logits_fn, split: arrays.Split, batch_size: int = 1000) -> Analysis:
    """Runs logits_fn (images [b, h, w, 1] float -> logits [b, classes]) over every example of split.

    (Training's evaluations gather their probabilities instead: loop.make_eval_fn.)
    """
    # reduce_retracing: a shorter last batch is traced once, not once per new size.
    probs_fn = tf.function(lambda images: tf.nn.softmax(tf.cast(logits_fn(images), tf.float32)),
                           reduce_retracing=True)
    batches = [probs_fn(pipeline.to_float(tf.constant(split.images[i:i + batch_size]))).numpy()
               for i in range(0, len(split), batch_size)]
    return Analysis(np.concatenate(batches), split.labels.astype(np.int64))


# --------------------------------------------------------------------------------------------- figures

def to_png(figure: Figure) -> bytes:
    """Renders a figure to PNG bytes."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def confusion_figure(confusion: np.ndarray, names: list[str]) -> Figure:
    """The confusion matrix with counts in the cells (log colour scale: the diagonal would hide the rest)."""
    figure = Figure(figsize=(6, 5.5), dpi=100)
    ax = figure.add_subplot()
    ax.imshow(np.log1p(confusion), cmap='Blues')
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax.text(j, i, str(count), ha='center', va='center', fontsize=7,
                    color='white' if i == j else 'black')
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel='predicted', ylabel='true',
           title=f'confusion ({confusion.sum()} examples)')
    ax.set_xticklabels(names, rotation=45, ha='right', fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    figure.tight_layout()
    return figure


def digits_figure(images: np.ndarray, titles: list[str], columns: int = 8, title: str = '') -> Figure:
    """A grid of images [n, h, w] (or [n, h, w, 1]) with a small title under each.

    One axes showing one montage, the titles as text on it: a subplot per image cost 0.3-0.9 s a figure.
    """
    images = np.asarray(images)
    images = images.reshape(images.shape[:3]).astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    n, height, width = images.shape
    rows, cell_h, cell_w = max(1, -(-n // columns)), height + 10, width + 4  # room for the caption below
    montage = np.ones((rows * cell_h, columns * cell_w))  # white between the digits
    grid_inches = rows * 1.45
    figure = Figure(figsize=(columns * 1.2, grid_inches + (0.4 if title else 0.1)), dpi=100)
    ax = figure.add_axes((0, 0, 1, grid_inches / figure.get_figheight()))  # the title above, in its own band
    for i, (image, caption) in enumerate(zip(images, titles)):
        top, left = (i // columns) * cell_h, (i % columns) * cell_w + 2
        montage[top:top + height, left:left + width] = image  # white ink on black, as the model sees it
        ax.text(left + width / 2, top + height + 1, caption, ha='center', va='top', fontsize=7)
    ax.imshow(montage, cmap='gray', vmin=0, vmax=1, interpolation='nearest', aspect='auto')
    ax.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def errors_figure(analysis: Analysis, images: np.ndarray, names: list[str], k: int = 24) -> Figure:
    """The k most confident mistakes, each labelled 'true -> predicted (confidence)'."""
    worst = analysis.worst_errors(k)
    titles = [f'{names[analysis.labels[i]]} -> {names[analysis.predicted[i]]} '
              f'({100 * analysis.probabilities[i, analysis.predicted[i]]:.0f}%)' for i in worst]
    return digits_figure(images[worst], titles, title=f'most confident mistakes ({len(worst)} of '
                                                      f'{int(np.sum(analysis.predicted != analysis.labels))})')


def per_class_figure(analysis: Analysis, names: list[str]) -> Figure:
    """Precision and recall of each class as bars."""
    precision, recall = analysis.precision_recall()
    figure = Figure(figsize=(7, 3.5), dpi=100)
    ax = figure.add_subplot()
    x = np.arange(len(names))
    ax.bar(x - 0.2, precision, 0.4, label='precision')
    ax.bar(x + 0.2, recall, 0.4, label='recall')
    low = min(precision.min(), recall.min())
    ax.set(ylim=(max(0.0, low - 0.05), 1.0), xticks=x, title='per-class precision and recall')
    ax.set_xticklabels(names, rotation=45, ha='right', fontsize=8)
    ax.legend(loc='lower right')
    figure.tight_layout()
    return figure


def reliability_figure(analysis: Analysis, bins: int = 10) -> Figure:
    """Accuracy against confidence per bin (a calibrated model lies on the diagonal), with the ECE."""
    mean_conf, accuracy, counts, ece = analysis.calibration(bins)
    used = counts > 0
    figure = Figure(figsize=(4.5, 4.5), dpi=100)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], '--', color='gray', label='perfect calibration')
    ax.plot(mean_conf[used], accuracy[used], 'o-', label='model')
    for c, a, n in zip(mean_conf[used], accuracy[used], counts[used]):
        ax.annotate(str(n), (c, a), fontsize=7, xytext=(3, -10), textcoords='offset points')
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel='confidence', ylabel='accuracy',
           title=f'reliability (ECE {100 * ece:.2f}%)')
    ax.legend(loc='upper left')
    figure.tight_layout()
    return figure

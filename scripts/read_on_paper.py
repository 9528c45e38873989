"""How well an export reads MNIST test digits redrawn as a user's image, against the originals, and
digits written with pens from a hairline to a marker.

    python scripts/read_on_paper.py --model=models/latest [--num=10000]

Each test digit is read as the original 28x28; as the original passed through digits.predict's
preprocessing again (images.to_mnist: what the preprocessing alone changes); rendered as dark ink on a
white 200x200 page, enlarged to 60-140 pixels and off-centre, saved as JPEG (quality 90) and decoded as
digits.predict decodes a file; and that page redrawn with a thinner or a thicker pen, scanned at low
resolution or blurred (support.synthetic.DEGRADED). Prints the digits read right in each way, and how many the redrawing
lost and gained against the originals. Then each digit 0-9 written as pen strokes (digits.reading.drawing.STROKES,
which the browser test draws on the page) with pens 2 to 28 pixels wide on a 280x280 pad: how many of the ten
are read right at each width.
"""
import numpy as np
from absl import flags

from digits import cli, config
from digits.errors import DigitsError

FLAGS = flags.FLAGS
flags.DEFINE_string('model', None, 'Exported SavedModel (models/<run_name>, models/latest).')
flags.DEFINE_integer('num', 10000, 'Test digits to use (a seeded sample).')
config.define_data_flags()


def main(argv):
    del argv
    if not FLAGS.model:
        raise DigitsError('--model is required: the export to measure, e.g. --model=models/latest')
    cli.load_tensorflow()
    from digits.data import arrays
    from digits.export import saved_model
    from support import synthetic
    test = arrays.load(FLAGS.dataset or 'mnist_10k', FLAGS.data_dir).test
    chosen = np.random.default_rng(0).choice(len(test), min(FLAGS.num, len(test)), replace=False)
    originals, labels = test.images[chosen], test.labels[chosen]
    module = saved_model.load(FLAGS.model)
    rng = np.random.default_rng(1)
    pages = {'preprocessed again': [d[..., None].astype(np.float32) / 255 for d in originals],
             'on paper (JPEG)': [synthetic.as_jpeg_file(synthetic.render_on_paper(d, rng)) for d in originals]}
    for name, degrade in synthetic.DEGRADED.items():  # each with its own seed: the figures stay comparable
        rng = np.random.default_rng(2)
        pages[name] = [degrade(synthetic.render_on_paper(d, rng)) for d in originals]
    # The originals straight into the model; every other way read as digits.predict reads a file.
    right = {'original': module.serve(originals)['probabilities'].numpy().argmax(1) == labels}
    for way, images_of_way in pages.items():
        texts = np.concatenate([synthetic.read_texts(module, images_of_way[i:i + 1000])  # bounded memory
                                for i in range(0, len(images_of_way), 1000)])
        right[way] = texts == labels.astype(str)
    for way, ok in right.items():
        lost, gained = int((right['original'] & ~ok).sum()), int((~right['original'] & ok).sum())
        print(f'{way:<24} {ok.sum():>6}/{len(labels)} = {100 * ok.mean():.2f}%   lost {lost}, gained {gained}')
    read = {width: synthetic.read_pen(module, width) for width in synthetic.PEN_WIDTHS}
    print('pen strokes read right, of 10, by pen width on a 280-pixel pad: ' +
          ', '.join(f'{width} px: {count}' for width, count in read.items()))


if __name__ == '__main__':
    cli.run(main, 'read_on_paper', flags_help=cli.script_flags_help)

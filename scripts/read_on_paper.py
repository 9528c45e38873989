"""How well an export reads MNIST test digits redrawn as a user's image, against the originals.

    python scripts/read_on_paper.py --model=models/<run> --data_dir=../shared/datasets/mnist-10k [--num=10000]

Each test digit is read three ways: the original 28x28; the original passed through digits.predict's
preprocessing again (images.to_mnist: what the preprocessing alone changes); and rendered as dark ink on
a white 200x200 page, enlarged to 60-140 pixels and off-centre, saved as JPEG (quality 90) and decoded
as digits.predict decodes a file. Prints the digits read right in each way, and how many the redrawing
lost and gained against the originals.
"""
import argparse
import io

import numpy as np


def render_on_paper(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 MNIST digit as a user might scan it: dark ink on a white 200x200 RGB page [200, 200, 3]
    uint8, enlarged to 60-140 pixels and placed off-centre."""
    import tensorflow as tf
    size = int(rng.integers(60, 141))
    big = tf.image.resize(digit[..., None].astype(np.float32), (size, size), method='bilinear').numpy()[..., 0]
    page = np.full((200, 200), 255.0, np.float32)
    top, left = rng.integers(0, 200 - size + 1, size=2)
    page[top:top + size, left:left + size] -= np.clip(big, 0, 255)
    return np.repeat(np.clip(page, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def as_jpeg_file(page: np.ndarray) -> np.ndarray:
    """page encoded as a JPEG file and decoded again, float32 [h, w, c] in [0, 1] (what predict reads)."""
    from PIL import Image
    import tensorflow as tf
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format='JPEG', quality=90)
    return tf.io.decode_image(buffer.getvalue()).numpy().astype(np.float32) / 255.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', required=True, help='Exported SavedModel (models/<run>).')
    parser.add_argument('--data_dir', help='MNIST folder (IDX or npz); unset: Keras\' download.')
    parser.add_argument('--num', type=int, default=10000, help='Test digits to use (a seeded sample).')
    args = parser.parse_args(argv)
    from digits import cli
    cli.load_tensorflow()
    from digits import data, export, images
    test = data.load('mnist', args.data_dir).test
    chosen = np.random.default_rng(0).choice(len(test), min(args.num, len(test)), replace=False)
    originals, labels = test.images[chosen], test.labels[chosen]
    module = export.load(args.model)
    rng = np.random.default_rng(1)
    ways = {'original': originals,
            'preprocessed again': [images.to_mnist(d[..., None].astype(np.float32) / 255) for d in originals],
            'on paper (JPEG)': [images.to_mnist(as_jpeg_file(render_on_paper(d, rng))) for d in originals]}
    right = {way: module.serve(np.stack(batch))['probabilities'].numpy().argmax(1) == labels
             for way, batch in ways.items()}
    for way, ok in right.items():
        print(f'{way:<20} {ok.sum():>6}/{len(labels)} = {100 * ok.mean():.2f}%   lost {int((right["original"] & ~ok).sum())}, '
              f'gained {int((~right["original"] & ok).sum())}')


if __name__ == '__main__':
    main()

"""How well an export reads numbers, beside Debian's OCR engine tesseract on the same images.

    python scripts/read_numbers.py --model=models/latest [--num=500] [--tesseract=/usr/bin/tesseract]

Sets made by support.synthetic from the MNIST test images and the page's pen strokes (seeded, so every run reads the
same images): numbers of 2-6 spaced test digits (gaps of 2-8 px); pairs of test digits whose ink touches (boxes
overlapped until the two are one piece of ink), and numbers of 3-4 test digits touching in the same way; numbers of
2-6 digits written with pens 2-28 px wide on a 280-pixel pad, spaced, and the same numbers written fast, each digit
pushed against the one before it until their ink touches; single test digits, each of which must read as exactly one
digit; and marks that are not digits, none of them trained on: support.synthetic.MARKS (letters, signs, doodles)
drawn with every pen, and the letters and signs of digits.training.negatives.GLYPHS in the STIX fonts
(digits.training.negatives trains on other fonts); and the spaced numbers' digits written on paper
(support.synthetic.PAPERS: a clean page, ruled and squared paper, a form's comb field, a shadow; ruled, squared and
form pages also turned 1-4 degrees, as a phone photographs them; a form written in a hurry, over its boxes' sides),
and pages with no digit (blank ruled, squared and form pages, printed words); and other people's hands, in fonts
digitised from handwriting (support.synthetic.HANDWRITING_FONTS: apt-get install fonts-dkg-handwriting fonts-breip
fonts-bwht fonts-klee fonts-rufscript fonts-sjfonts fonts-humor-sans fonts-yusei-magic; skipped if none is
installed): each digit alone, numbers on paper, and words (not digits). Prints, per set, the share read exactly by
digits (digits.reading.reader, as digits.predict reads a file; for a mark: refused, no digit read) with its standard
error (at --num=300 a share near 96% is known to about 1.1 points: sets differing by less are not told apart), the
share of images with a refused mark, and the share tesseract (--psm 7, one line; digits whitelisted) reads exactly
(for a mark: no digit), or "-" without tesseract (apt-get install tesseract-ocr). For an export holding a line reader
(<export>/line_reader, the default recipe's), digits reads with it as digits.predict does, and two more columns say
what the cuts alone and the line reader alone (each image read whole as one line) read.
"""
import os
import subprocess
import tempfile

import numpy as np
from absl import flags

from digits import cli, config
from digits.errors import DigitsError
from digits.reading import drawing, segment

FLAGS = flags.FLAGS
flags.DEFINE_string('model', None, 'Exported SavedModel (models/<run_name>, models/latest).')
flags.DEFINE_integer('num', 500, 'Images in each set.')
flags.DEFINE_string('tesseract', '/usr/bin/tesseract', 'tesseract to compare with ("" or missing: skip it).')
config.define_data_flags()

NOT_DIGITS = None  # the truth of a mark that is not a digit: read right when no digit is read


def touching(digits: np.ndarray) -> np.ndarray | None:
    """28x28 test digits [n, 28, 28] side by side on a page, each pushed into the ones before it by the fewest
    columns (1-14) at which their ink is one piece (None if a digit never joins it)."""
    row = digits[0]
    for digit in digits[1:]:
        for overlap in range(1, 15):
            joined = drawing.overlapped(row, digit, overlap)
            if segment.label_components(joined / 255 > segment.INK_THRESHOLD)[1] == 1:
                row = joined
                break
        else:
            return None
    return drawing.ink_on_paper(row)


def make_sets(test, synthetic, negatives, num: int) -> dict:
    """{set name: (pages, texts)}; the text of a mark that is not a digit is NOT_DIGITS."""
    rng, sets = np.random.default_rng(0), {}
    chosen = [rng.choice(len(test), int(rng.integers(2, 7)), replace=False) for _ in range(num)]
    sets['spaced MNIST numbers, 2-6 digits'] = (
        [synthetic.spaced_number(test.images[c], rng.integers(2, 9, len(c))) for c in chosen],
        [''.join(map(str, test.labels[c])) for c in chosen])
    pairs = []
    while len(pairs) < num:
        a, b = rng.choice(len(test), 2, replace=False)
        page = touching(test.images[[a, b]])
        if page is not None:
            pairs.append((page, f'{test.labels[a]}{test.labels[b]}'))
    sets['touching MNIST pairs'] = ([p for p, _ in pairs], [t for _, t in pairs])
    numbers = [rng.integers(0, 10, int(rng.integers(2, 7))) for _ in range(num)]
    pens = rng.choice(synthetic.PEN_WIDTHS, num)
    texts = [''.join(map(str, n)) for n in numbers]
    sets['pen-drawn numbers, pens 2-28 px'] = ([synthetic.pen_number(n, int(w)) for n, w in zip(numbers, pens)], texts)
    sets['pen-drawn numbers, digits touching'] = (
        [synthetic.touching_pen_number(n, int(w)) for n, w in zip(numbers, pens)], texts)
    singles = rng.choice(len(test), num, replace=False)
    sets['single MNIST digits'] = ([drawing.ink_on_paper(test.images[k]) for k in singles],
                                   [str(test.labels[k]) for k in singles])
    sets.update(touching_numbers(test, rng, num))  # drawn last: the sets before keep their images
    marks = [drawing.render_strokes(strokes, width) for strokes in synthetic.MARKS.values()
             for width in synthetic.PEN_WIDTHS]
    sets['pen-drawn marks, not digits'] = (marks, [NOT_DIGITS] * len(marks))
    glyphs = [drawing.ink_on_paper(mark) for mark in negatives.glyph_marks(negatives.HELD_OUT_FONTS, 0)[0]]
    sets['STIX letters and signs'] = (glyphs, [NOT_DIGITS] * len(glyphs))
    sets.update(paper_sets(test, synthetic, chosen))
    sets.update(font_sets(synthetic, num))
    return sets


def touching_numbers(test, rng: np.random.Generator, num: int) -> dict:
    """{name: (pages, texts)}: num numbers of 3-4 test digits whose ink is one piece (touching)."""
    numbers = []
    while len(numbers) < num:
        chosen = rng.choice(len(test), int(rng.integers(3, 5)), replace=False)
        page = touching(test.images[chosen])
        if page is not None:
            numbers.append((page, ''.join(map(str, test.labels[chosen]))))
    return {'touching MNIST numbers, 3-4 digits': ([p for p, _ in numbers], [t for _, t in numbers])}


def paper_sets(test, synthetic, chosen: list) -> dict:
    """The spaced numbers' digits written on each of synthetic.PAPERS (3x larger, in dark ink), on the lined
    papers turned, on a form in a hurry (each digit moved up to 0.3 of a box: up to and over the sides), and
    pages with no digit: blank ruled, squared and form pages and printed words, 6 of each."""
    sets, texts = {}, [''.join(map(str, test.labels[c])) for c in chosen]
    for paper in synthetic.PAPERS:
        rng = np.random.default_rng(1)
        sets[f'the same numbers, {paper}'] = ([synthetic.written_on(paper, test.images[c], rng) for c in chosen],
                                              texts)
    for paper in ('ruled', 'squared', 'form'):
        rng = np.random.default_rng(1)
        sets[f'the same numbers, {paper}, turned 1-4 degrees'] = (
            [synthetic.turned(synthetic.written_on(paper, test.images[c], rng), rng) for c in chosen], texts)
    rng = np.random.default_rng(1)
    sets['the same numbers, form, written over the sides'] = (
        [synthetic.written_on('form', test.images[c], rng, shift=0.3) for c in chosen], texts)
    rng = np.random.default_rng(2)
    blank = [synthetic.blank_paper(paper, rng) for paper in ('ruled', 'squared', 'form') for _ in range(6)]
    blank += [synthetic.a_word(rng) for _ in range(6)]
    sets['pages with no digit'] = (blank, [NOT_DIGITS] * len(blank))
    return sets


def font_sets(synthetic, num: int) -> dict:
    """Other people's hands (support.synthetic.HANDWRITING_FONTS, those installed): each digit in each font
    three times, at sizes drawn at random (at most num of them), and num numbers of 2-6 digits, each in a font
    on a paper of FONT_PAPERS."""
    fonts = synthetic.installed_handwriting_fonts()
    if not fonts:
        return {}
    rng = np.random.default_rng(3)
    singles = [(font, str(digit)) for font in fonts for digit in range(10) for _ in range(3)]
    singles = [singles[k] for k in sorted(rng.choice(len(singles), min(num, len(singles)), replace=False))]
    numbers = [''.join(map(str, rng.integers(0, 10, int(rng.integers(2, 7))))) for _ in range(num)]
    words = [(font, word) for font in fonts for word in synthetic.WORDS]
    words = [words[k] for k in sorted(rng.choice(len(words), min(num, len(words)), replace=False))]
    paper = lambda: str(rng.choice(synthetic.FONT_PAPERS))
    return {
        'single digits in handwriting fonts': (
            [synthetic.font_number(text, font, 'clean', rng) for font, text in singles], [t for _, t in singles]),
        'numbers in handwriting fonts, on paper': (
            [synthetic.font_number(text, fonts[rng.integers(len(fonts))], paper(), rng) for text in numbers],
            numbers),
        'words in handwriting fonts, not digits': (
            [synthetic.font_number(word, font, paper(), rng) for font, word in words], [NOT_DIGITS] * len(words))}


def read_right(text: str, truth: str | None) -> bool:
    """Whether a reading is exact: the digits of truth, or for a mark that is not a digit, no digit at all."""
    return not any(ch.isdigit() for ch in text) if truth is NOT_DIGITS else text == truth


def standard_error(share: float, n: int) -> float:
    """The standard error of a share measured on n images (binomial): how far another draw of n might land."""
    return float(np.sqrt(share * (1 - share) / max(n, 1)))


def tesseract_reads(binary: str, pages: list[np.ndarray]) -> list[str]:
    """tesseract's line of digits for each page (as an 8-bit PNG, scaled to about 30 px per digit's height
    or more, which it needs)."""
    from PIL import Image
    texts = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'page.png')
        for page in pages:
            grey = page @ np.array([0.299, 0.587, 0.114], np.float32) if page.shape[-1] == 3 else page[..., 0]
            image = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8))
            if image.height < 100:
                image = image.resize((image.width * 3, image.height * 3), Image.BICUBIC)
            image.save(path)
            out = subprocess.run([binary, path, 'stdout', '--psm', '7', '-c', 'tessedit_char_whitelist=0123456789'],
                                 capture_output=True, text=True, timeout=60).stdout
            texts.append(''.join(ch for ch in out if ch.isdigit()))
    return texts


def line_reader_texts(module, pages: list[np.ndarray]) -> list[str]:
    """What the line reader reads in each page, read whole as one line ('' for a page with no ink)."""
    from digits.reading import images, lines, page
    inks = []
    for picture in pages:
        try:
            inks.append(page.ink_of(images.to_grey(picture)))
        except DigitsError:
            inks.append(None)
    found = [ink for ink in inks if ink is not None]
    read = iter(lines.read_lines(found, lambda batch: module.serve(batch)['probabilities'].numpy()))
    return ['' if ink is None else lines.text_of(next(read)[0]) for ink in inks]


def main(argv):
    del argv
    if not FLAGS.model:
        raise DigitsError('--model is required: the export to measure, e.g. --model=models/latest')
    cli.load_tensorflow()
    from digits.data import arrays
    from digits.export import saved_model
    from digits.reading import reader
    from digits.training import negatives
    from support import synthetic
    test = arrays.load(FLAGS.dataset or 'mnist_10k', FLAGS.data_dir).test
    module = saved_model.load(FLAGS.model)
    line_dir = os.path.join(FLAGS.model, config.LINE_READER)
    line_module = saved_model.load(line_dir, lines=True) if os.path.isdir(line_dir) else None
    use_tesseract = bool(FLAGS.tesseract) and os.path.exists(FLAGS.tesseract)
    print(f'{"set":<48} {"images":>6} {"digits exact":>19} {"refused":>8} {"tesseract exact":>16}'
          + (f' {"cuts only":>10} {"line reader only":>17}' if line_module else ''))
    for name, (pages, truth) in make_sets(test, synthetic, negatives, FLAGS.num).items():
        texts = synthetic.read_texts(module, pages, line_module)
        ours = np.mean([read_right(text, t) for text, t in zip(texts, truth)])
        refused = np.mean([reader.REFUSED in text for text in texts])
        theirs = '-'
        if use_tesseract:
            read = tesseract_reads(FLAGS.tesseract, pages)
            theirs = f'{100 * np.mean([read_right(x, t) for x, t in zip(read, truth)]):.1f}%'
        alone = ''
        if line_module:
            cuts, whole = synthetic.read_texts(module, pages), line_reader_texts(line_module, pages)
            alone = (f' {100 * np.mean([read_right(x, t) for x, t in zip(cuts, truth)]):>9.1f}%'
                     f' {100 * np.mean([read_right(x, t) for x, t in zip(whole, truth)]):>16.1f}%')
        exact = f'{100 * ours:.1f}% ±{100 * standard_error(ours, len(pages)):.1f}'
        print(f'{name:<48} {len(pages):>6} {exact:>19} {100 * refused:>7.1f}% {theirs:>16}{alone}',
              flush=True)
    if not synthetic.installed_handwriting_fonts():
        print('No handwriting font is installed (apt-get install fonts-dkg-handwriting ...): other hands are '
              'not measured.')


if __name__ == '__main__':
    cli.run(main, 'read_numbers', flags_help=cli.script_flags_help)

"""digits.reading.reader with the real-data model: numbers of MNIST test digits, spaced or touching, pen-drawn
numbers, one model call per image, and the limits."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from digits.data import arrays
from digits.data.line_format import FRAME_COLUMNS, NOT_A_DIGIT
from digits.errors import DigitsError
from digits.export import saved_model
from digits.reading import drawing, reader, segment
from support import synthetic

NUMBERS = 60


@pytest.fixture(scope='module')
def model(real_model):
    module = saved_model.load(real_model[0].export_dir)
    return lambda batch: module.serve(batch)['probabilities'].numpy()


@pytest.fixture(scope='module')
def test_digits(real_data_dir):
    return arrays.load('mnist_10k', real_data_dir).test


def text(readings) -> str:
    return ''.join(str(int(r.probabilities.argmax())) for r in readings)


def test_spaced_numbers_read_as_their_digits_read_alone(model, test_digits):
    """Segmenting must not cost what the model reads: a number of 2-6 spaced test digits reads as those
    digits read one by one (measured with this 300-step model: 59 of 60)."""
    rng, same = np.random.default_rng(0), 0
    for _ in range(NUMBERS):
        chosen = rng.choice(len(test_digits), int(rng.integers(2, 7)), replace=False)
        alone = ''.join(text(reader.read(drawing.ink_on_paper(test_digits.images[k]), model, 'one')) for k in chosen)
        number = text(reader.read(synthetic.spaced_number(test_digits.images[chosen], rng.integers(2, 9, len(chosen))),
                                  model, 'n'))
        same += number == alone
    print(f'spaced numbers read as their digits alone: {same} of {NUMBERS}')
    assert same >= NUMBERS - 4, same


def test_a_phones_photo_is_cleaned_at_the_readers_size_as_its_page_is(test_digits):
    """A ruled page photographed askew, 6x larger (2,600-2,800 pixels wide, as a phone's photo): cleaned at the
    reader's size, it leaves the pieces of ink the page leaves at its own, where they are (cleaned at its own
    size, the rule stayed, or joined the digits, on 5 of these 8 pages). Boxes within 4 of the page's pixels:
    the rule's edge where a stroke crosses it is resampled."""
    for seed in range(8):
        rng = np.random.default_rng(seed)
        page = synthetic.turned(synthetic.written_on('ruled', test_digits.images[rng.choice(10000, 4)], rng), rng)
        small, large = reader.plan_reading(page, 'page'), reader.plan_reading(page.repeat(6, 0).repeat(6, 1), 'photo')
        assert large.scale < 1 / 2 and len(large.pieces) == len(small.pieces), seed
        for a, b in zip(small.pieces, large.pieces):
            box = reader.box_in_image(b, large.scale, large.shape)
            np.testing.assert_allclose(box, 6 * np.array(reader.box_in_image(a, 1.0, small.shape)), atol=24)


def test_touching_pairs_are_split_where_the_model_reads_them_best(model, test_digits):
    """Pairs of test digits whose boxes overlap by 3-6 columns (measured: 57 of 60 exact)."""
    rng, exact = np.random.default_rng(1), 0
    for _ in range(NUMBERS):
        a, b = rng.choice(len(test_digits), 2, replace=False)
        pair = drawing.touching_pair(test_digits.images[a], test_digits.images[b], int(rng.integers(3, 7)))
        got = text(reader.read(pair, model, 'pair'))
        exact += got == f'{test_digits.labels[a]}{test_digits.labels[b]}'
    print(f'touching pairs exact: {exact} of {NUMBERS}')
    assert exact >= NUMBERS * 0.85, exact


def test_the_slices_of_a_piece_hold_each_pixel_of_its_ink_once():
    """Cut along bent paths, a piece's slices share no ink and lose none: each pixel is in one slice."""
    ink = np.zeros((60, 200), np.float32)
    ink[10:50, 20:50] = ink[10:50, 56:86] = 1
    ink[28:31, 50:56] = 1  # touching
    ink[12:20, 44:62] = 0.6  # and a second, fainter bridge that the cuts bend round or cross
    pieces = segment.find_pieces(ink)
    slices = reader.slice_pieces(pieces, segment.line_height(pieces))
    assert len(slices) > 1
    whole = np.zeros_like(pieces[0].ink)
    for s in slices:
        whole[:, s.start.min():s.stop.max()] += s.ink(pieces[0])
    np.testing.assert_array_equal(whole, pieces[0].ink)


def test_a_number_written_with_a_pen_is_read_and_boxed_in_its_pixels(model):
    """Read exactly: all 15 of the 300-step models measured (seeds 0-4; default kernels,
    TF_ENABLE_ONEDNN_OPTS=0, taskset -c 0) read 2026."""
    page = np.concatenate([drawing.render_strokes(drawing.STROKES[d], 16) for d in (2, 0, 2, 6)], axis=1)
    readings = reader.read(page, model, 'pad')
    assert text(readings) == '2026'
    lefts = [r.box[0] for r in readings]
    assert lefts == sorted(lefts) and all(280 * i <= r.box[0] < r.box[2] <= 280 * (i + 1)
                                          for i, r in enumerate(readings))


def test_a_number_written_fast_is_one_piece_of_ink_narrower_than_written_spaced():
    """synthetic.touching_pen_number, which scripts/read_numbers.py measures: the digits' ink touches."""
    for digits, width in (((2, 0, 2, 6), 16), ((1, 1), 4), ((7, 4, 0), 28)):
        fast, spaced = synthetic.touching_pen_number(digits, width), synthetic.pen_number(digits, width)
        assert segment.label_components(fast[..., 0] < 1 - segment.INK_THRESHOLD)[1] == 1, digits
        assert fast.shape[0] == spaced.shape[0] and fast.shape[1] < spaced.shape[1]


def test_one_model_call_reads_the_whole_number(model, test_digits):
    calls = []
    counted = lambda batch: calls.append(len(batch)) or model(batch)
    readings = reader.read(synthetic.spaced_number(test_digits.images[:6], [6] * 6), counted, 'six')
    assert len(readings) == 6 and len(calls) == 1 and calls[0] >= 6


def test_too_many_digits_and_a_blank_page_are_one_line(model, test_digits):
    with pytest.raises(DigitsError, match=r'^long: 13 digits found; digits reads one line of at most 12$'):
        reader.read(synthetic.spaced_number(test_digits.images[:13], [6] * 13), model, 'long')
    with pytest.raises(DigitsError, match=r'^empty: blank: no ink differs from the paper$'):
        reader.read(np.ones((50, 80, 1), np.float32), model, 'empty')


def bars_and_a_blob(batch: np.ndarray) -> np.ndarray:
    """A stand-in model: a thin mark reads as a 1 at 99%; a heavy one (a filled square, or a slice of it) gets
    10% for each digit."""
    heavy = batch.reshape(len(batch), -1).mean(axis=1) > 50  # a bar: 26; the square or a slice of it: 65+
    probs = np.full((len(batch), 10), 0.01 / 9)
    probs[:, 1] = 0.99
    probs[heavy] = 0.1
    return probs


def bar_and_blob() -> tuple[np.ndarray, np.ndarray]:
    """A 28x28 bar and a 28x28 filled square, white on black."""
    bar, blob = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.uint8)
    bar[4:24, 12:16], blob[6:22, 6:22] = 255, 255
    return bar, blob


def test_a_mark_no_digit_is_likely_for_is_refused_in_place():
    bar, blob = bar_and_blob()
    page = synthetic.spaced_number(np.stack([bar, blob, bar, bar]), [12, 12, 12, 0])
    readings = reader.read(page, bars_and_a_blob, 'page')
    assert [r.digit for r in readings] == [1, None, 1, 1] and reader.text_of(readings) == '1?11'
    assert reader.is_refused(readings[1].probabilities) and not reader.is_refused(readings[0].probabilities)
    [alone] = reader.read(drawing.ink_on_paper(blob), bars_and_a_blob, 'blob')
    assert alone.digit is None and reader.text_of([alone]) == '?'


def three_way(batch: np.ndarray) -> np.ndarray:
    """A stand-in model that reads every mark as a 1, a 4 or a 7, a third each (no mark refused alone)."""
    probs = np.zeros((len(batch), 10))
    probs[:, [1, 4, 7]] = 1 / 3
    return probs


def test_a_line_read_unsure_is_a_word_and_no_digit_of_it_is_read():
    bar, blob = bar_and_blob()
    page = synthetic.spaced_number(np.stack([bar, bar, bar]), [12, 12, 0])
    assert reader.entropy(three_way(np.zeros((1, 28, 28)))[0]) > reader.WORD_ENTROPY
    word = reader.read(page, three_way, 'word')
    assert reader.text_of(word) == '???' and all(r.in_word and r.digit is None for r in word)
    assert reader.text_of(reader.read(page, bars_and_a_blob, 'number')) == '111'
    short = synthetic.spaced_number(np.stack([bar, blob, bar]), [12, 12, 0])  # a third of it no digit
    assert reader.text_of(reader.read(short, bars_and_a_blob, 'short')) == '???'
    [alone] = reader.read(drawing.ink_on_paper(bar), three_way, 'alone')  # one mark is a digit read unsure
    assert alone.digit == 1 and not alone.in_word


def test_read_numbers_measures_every_set_end_to_end(real_model):
    """scripts/read_numbers.py, the reader's benchmark, runs through every set (3 images each, tesseract
    skipped) and prints a row per set."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'read_numbers.py'),
                           f'--model={real_model[0].export_dir}', '--num=3', '--tesseract='],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines()[1:] if line.strip()]
    papers = [f'the same numbers, {paper}' for paper in synthetic.PAPERS]
    hands = ['single digits in handwriting fonts', 'numbers in handwriting fonts', 'words in handwriting fonts']
    if not synthetic.installed_handwriting_fonts():  # .ci/run installs them
        hands = ['No handwriting font is installed']
    for name in ['spaced MNIST numbers', 'touching MNIST pairs', 'touching MNIST numbers', 'single MNIST digits',
                 'pages with no digit', 'the same numbers, form, written over', *papers, *hands]:
        assert any(row.startswith(name) for row in rows), (name, proc.stdout)


def line_reading(path: dict, sure: float):
    """A stand-in line reader: the frame of column c of every line reads path.get(c) (the blank elsewhere) at
    `sure`; it records the shapes it was called with."""
    calls = []

    def read(lines: np.ndarray) -> np.ndarray:
        calls.append(lines.shape)
        frames = blank_frames(lines)
        for column, k in path.items():
            read_at(frames, column, k, sure)
        return frames

    return read, calls


def blank_frames(lines: np.ndarray) -> np.ndarray:
    """A stand-in line reader's frames [n, w / FRAME_COLUMNS, classes] for lines [n, HEIGHT, w]: all blank."""
    frames = np.zeros((len(lines), lines.shape[2] // FRAME_COLUMNS, NOT_A_DIGIT + 2), np.float32)
    frames[..., -1] = 1.0
    return frames


def read_at(frames: np.ndarray, column: int, label: int, sure: float):
    """Sets, in place, the frame of line column `column` in frames [..., frames, classes] to read label at sure."""
    frames[..., column // FRAME_COLUMNS, :] = (1 - sure) / (NOT_A_DIGIT + 1)
    frames[..., column // FRAME_COLUMNS, label] = sure


def touching_blobs() -> np.ndarray:
    """Two filled squares whose ink touches: one piece twice as wide as it is tall."""
    ink = np.zeros((28, 60), np.uint8)
    ink[4:24, 6:30] = ink[4:24, 30:54] = 255
    return drawing.ink_on_paper(ink)


def bars_and_wide_marks(batch: np.ndarray) -> np.ndarray:
    """A stand-in model: a mark wider than it is tall (two touching digits read as one) gets 10% for each
    digit, as the digit model's refusal of touching digits does; any other reads as a 1 at 99%."""
    ink = batch.reshape(len(batch), 28, 28) > 50
    wide = ink.any(axis=1).sum(axis=1) > ink.any(axis=2).sum(axis=1)
    probs = np.full((len(batch), 10), 0.01 / 9)
    probs[:, 1] = 0.99
    probs[wide] = 0.1
    return probs


def test_digits_that_touch_are_read_by_the_line_reader_in_one_call():
    model, calls = line_reading({8: 4, 20: 7}, sure=0.9)
    pages = [touching_blobs(), drawing.ink_on_paper(np.pad(np.full((20, 4), 255, np.uint8), 4))]
    touching, bar = reader.read_all(pages, bars_and_wide_marks, ['blobs', 'bar'], model)
    assert reader.text_of(touching) == '47' and len(calls) == 1 and calls[0][0] == 2
    assert all(0 <= r.box[0] < r.box[2] <= pages[0].shape[1] for r in touching)
    assert touching[0].box[2] <= touching[1].box[2] and touching[0].image.shape == (28, 28)
    assert reader.text_of(bar) == '1'  # one digit alone: the cuts' reading, though the line reader read more


def test_the_cuts_reading_stays_where_the_line_reader_is_unsure_or_reads_a_mark():
    unsure, _ = line_reading({8: 4, 20: 7}, sure=reader.LINE_CONFIDENCE - 0.1)
    cuts = reader.text_of(reader.read(touching_blobs(), bars_and_a_blob, 'blobs'))
    assert reader.text_of(reader.read(touching_blobs(), bars_and_a_blob, 'blobs', unsure)) == cuts != '47'
    bar = drawing.ink_on_paper(np.pad(np.full((20, 4), 255, np.uint8), 4))
    marks, _ = line_reading({0: 1, 8: NOT_A_DIGIT}, sure=0.9)
    assert reader.text_of(reader.read(bar, bars_and_a_blob, 'bar', marks)) == '1'
    nothing, _ = line_reading({}, sure=0.9)  # every frame the blank: a wide digit it cannot read
    assert reader.text_of(reader.read(touching_blobs(), bars_and_a_blob, 'blobs', nothing)) == cuts != ''


def sure_seven(batch: np.ndarray) -> np.ndarray:
    """A stand-in digit model that reads every mark as a 7 at 99%."""
    probs = np.full((len(batch), 10), 0.01 / 9)
    probs[:, 7] = 0.99
    return probs


def test_one_piece_read_surely_as_one_digit_stays_one_digit():
    """A wide digit alone (one piece wider than a digit) that the digit model reads surely is not split by a
    line reader reading two digits in it; read unsure, the line reader's reading replaces it."""
    two, _ = line_reading({8: 4, 20: 7}, sure=0.9)
    assert reader.text_of(reader.read(touching_blobs(), sure_seven, 'wide 7', two)) == '7'
    assert reader.text_of(reader.read(touching_blobs(), bars_and_wide_marks, 'blobs', two)) == '47'


def test_a_fragment_beside_a_digit_may_be_read_with_it():
    """A short stroke a few pixels beside a digit (a scan's stray fragment) may be part of it: read whole, it
    is one digit; a tall stroke as near, or a fragment farther than FRAGMENT_GAP, stays a digit of its own."""
    def page(second_height: int, gap: int) -> np.ndarray:
        ink = np.zeros((20, 6 + gap), np.uint8)
        ink[:, :4] = 255
        ink[20 - second_height:, 4 + gap:] = 255
        return drawing.ink_on_paper(ink)
    assert 6 < reader.SHORT * 20 and 3 < reader.FRAGMENT_GAP * 20 < 5
    assert reader.text_of(reader.read(page(6, 3), sure_seven, 'fragment')) == '7'
    assert reader.text_of(reader.read(page(20, 3), sure_seven, 'stroke')) == '77'
    assert reader.text_of(reader.read(page(6, 5), sure_seven, 'far')) == '77'


def test_pieces_of_one_digit_the_cuts_refused_are_read_by_the_line_reader():
    """Where the cuts refuse pieces the line reader reads surely as fewer digits, its reading stands; a mark
    it reads as a digit (as many symbols as the cuts refused) stays refused."""
    _, blob = bar_and_blob()
    two = synthetic.spaced_number(np.stack([blob, blob]), [12, 0])
    assert reader.text_of(reader.read(two, bars_and_a_blob, 'pieces')) == '??'
    one, _ = line_reading({16: 5}, sure=0.9)
    assert reader.text_of(reader.read(two, bars_and_a_blob, 'pieces', one)) == '5'
    assert reader.text_of(reader.read(drawing.ink_on_paper(blob), bars_and_a_blob, 'mark', one)) == '?'
    unsure, _ = line_reading({16: 5}, sure=reader.LINE_CONFIDENCE - 0.1)
    assert reader.text_of(reader.read(two, bars_and_a_blob, 'pieces', unsure)) == '??'


def reading_each_run(labels: list, sure: float):
    """A stand-in line reader: in each line, the k-th run of columns holding ink reads labels[k] at `sure`
    (at the run's middle frame; the blank elsewhere)."""
    def read(lines: np.ndarray) -> np.ndarray:
        frames = blank_frames(lines)
        for line, out in zip(lines, frames):
            inked = np.flatnonzero(np.diff(np.concatenate([[0], (line > 0.5).any(axis=0), [0]]).astype(int)))
            for label, (start, stop) in zip(labels, inked.reshape(-1, 2)):
                read_at(out, (start + stop) // 2, label, sure)
        return frames
    return read


def hesitant(batch: np.ndarray) -> np.ndarray:
    """A stand-in digit model that reads every mark as a 7 at 60% and a 1 at 40% (neither refused nor a word)."""
    probs = np.zeros((len(batch), 10))
    probs[:, 7], probs[:, 1] = 0.6, 0.4
    return probs


def test_digits_the_line_reader_reads_as_the_cuts_do_are_read_by_both_models():
    """Where the line reader reads as many digits as the cuts found, each digit's probabilities are the two
    models' product (the line reader's at LINE_WEIGHT): a digit the digit model hesitates over reads as the
    line reader is sure of, a digit it refused in a number is read where the line reader is sure of it; a
    mark refused alone stays refused, a word stays a word, and a line read with a mark is the cuts'."""
    bar, blob = bar_and_blob()
    two = synthetic.spaced_number(np.stack([bar, bar]), [12, 0])
    assert reader.text_of(reader.read(two, hesitant, 'two')) == '77'
    [first, second] = reader.read(two, hesitant, 'two', reading_each_run([1, 7], sure=0.9))
    assert (first.digit, second.digit) == (1, 7) and first.probabilities.sum() == pytest.approx(1.0)
    assert first.probabilities[1] > 0.8 and first.probabilities.dtype == np.float32  # the digit model's 0.4
    number = synthetic.spaced_number(np.stack([bar, blob, bar, bar]), [12, 12, 12, 0])
    sure_five = reading_each_run([1, 5, 1, 1], 0.99)
    assert reader.text_of(reader.read(number, bars_and_a_blob, 'number', sure_five)) == '1511'
    alone = drawing.ink_on_paper(blob)
    assert reader.text_of(reader.read(alone, bars_and_a_blob, 'mark', reading_each_run([5], 0.9))) == '?'
    word = synthetic.spaced_number(np.stack([bar, bar, bar]), [12, 12, 0])
    assert reader.text_of(reader.read(word, three_way, 'word', reading_each_run([1, 1, 1], 0.9))) == '???'
    marked = reader.read(two, hesitant, 'marked', reading_each_run([1, NOT_A_DIGIT], 0.9))
    assert reader.text_of(marked) == '77'  # the line reader reads a mark: the cuts' reading stands

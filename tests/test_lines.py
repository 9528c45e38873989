"""digits.reading.lines: a line of ink prepared for the line reader, and its frames decoded in numpy."""
import numpy as np

from digits.data.line_format import BOX, FRAME_COLUMNS, HEIGHT, NOT_A_DIGIT
from digits.reading import lines

CLASSES = NOT_A_DIGIT + 2  # the digits, NOT_A_DIGIT and the blank
BLANK = CLASSES - 1


def frames_of(path: list[int], sure: float = 0.9) -> np.ndarray:
    """Probabilities [frames, CLASSES] whose most probable class in frame t is path[t], at `sure`."""
    frames = np.full((len(path), CLASSES), (1 - sure) / (CLASSES - 1), np.float32)
    frames[np.arange(len(path)), path] = sure
    return frames


def test_decoding_joins_repeats_drops_blanks_and_keeps_each_symbols_frames():
    frames = frames_of([BLANK, 2, 2, BLANK, 2, BLANK, NOT_A_DIGIT, 6])
    frames[2, 2] = 0.95  # the second frame of the first 2 is its most probable
    symbols = lines.decode(frames)
    assert [s.label for s in symbols] == [2, 2, NOT_A_DIGIT, 6] and lines.text_of(symbols) == '22?6'
    first = symbols[0]
    assert (first.first, first.stop) == (1, 3) and first.probability == np.float32(0.95)
    assert first.columns() == (FRAME_COLUMNS, 3 * FRAME_COLUMNS)


def test_a_marks_probabilities_are_spread_over_the_digits_and_a_digits_are_not():
    mark, digit = lines.decode(frames_of([NOT_A_DIGIT, BLANK, 7]))
    spread, sure = lines.digit_probabilities(mark), lines.digit_probabilities(digit)
    assert spread.shape == (10,) and np.isclose(spread.sum(), 1) and spread.max() - spread.min() < 0.02
    assert sure.argmax() == 7 and sure[7] > 0.9


def test_a_line_is_scaled_to_the_box_height_centred_and_padded_to_whole_frames():
    ink = np.zeros((300, 900), np.float32)
    ink[100:200, 150:420] = 1.0  # a 100-pixel-tall line, 270 wide: the outline of a box, its strokes 10 wide
    ink[110:190, 160:410] = 0.0
    ink[20, 800] = 1.0  # a speck far away: not part of the line
    line = lines.prepare_line(ink)
    assert line.image.shape[0] == HEIGHT and line.image.shape[1] % FRAME_COLUMNS == 0
    rows = np.flatnonzero(line.image.max(axis=1) > 0.5)
    columns = np.flatnonzero(line.image.max(axis=0) > 0.5)
    assert rows.size in (BOX - 1, BOX, BOX + 1) and abs(rows.mean() - HEIGHT / 2) <= 1
    assert columns[0] == lines.MARGIN and abs(columns.size - 270 * BOX / 100) <= 2
    assert (line.scale, line.x0, line.y0, line.y1) == (BOX / 100, 150, 100, 200)


def test_the_papers_level_is_taken_off():
    ink = np.full((60, 200), 0.12, np.float32)  # paper a shadow left a little above 0
    ink[20:40, 30:32] = ink[20:40, 60:62] = 1.0  # two strokes, the paper between them
    image = lines.prepare_line(ink).image
    assert image.max() > 0.9 and (image[:, 12:24] == 0).all()


def test_a_symbols_box_maps_its_frames_back_to_the_ink():
    ink = np.zeros((100, 400), np.float32)
    ink[20:80, 40:340] = 1.0
    line = lines.prepare_line(ink)
    symbol = lines.Symbol(3, 0.9, first=4 // FRAME_COLUMNS, stop=24 // FRAME_COLUMNS, frame=np.zeros(CLASSES))
    # its columns 4-24: ink 40 to 100
    assert lines.box_of(symbol, line) == (40, 20, 100, 80)


def test_lines_are_read_in_one_call_each_from_its_own_frames():
    calls = []

    short, wide = np.zeros((50, 60), np.float32), np.zeros((50, 400), np.float32)
    short[10:40, 10:40] = wide[10:40, 10:390] = 1
    last = lines.prepare_line(wide).frames - 1

    def model(batch):
        calls.append(batch.shape)
        frames = np.tile(frames_of([5]), (batch.shape[0], batch.shape[2] // FRAME_COLUMNS, 1))  # paper reads 5
        frames[:, :last] = frames_of([BLANK])[0]
        frames[:, last + 1:last + 2] = frames_of([BLANK])[0]
        return frames

    read = lines.read_lines([short, wide], model)
    assert len(calls) == 1 and calls[0][0] == 2
    # The wide line's last frame is its 5; the paper after each line is not read.
    assert lines.text_of(read[0][0]) == '' and lines.text_of(read[1][0]) == '5'


def test_the_line_readers_reach_is_the_paper_after_each_line():
    """A LineReader's frame sees lines.REACH columns past its own: a line followed by REACH columns of paper
    gives the same frames alone as padded to a wider line's width, and so reads the same alone as beside a
    wider line (its batch norms given offsets, so that paper is not zero inside the model)."""
    import tensorflow as tf

    from digits.training import model as models
    reader = models.create('line')
    rng = np.random.default_rng(0)
    for variable in reader.variables:
        values = rng.normal(0, 0.3, variable.shape)
        variable.assign(np.abs(values) + 0.5 if 'variance' in variable.path else values)
    line = np.zeros((HEIGHT, 40 + lines.REACH), np.float32)
    line[4:24, 4:36] = rng.random((20, 32))

    def frames(width, paper):
        padded = np.pad(line[:, :width], [(0, 0), (0, paper)])[None, ..., None]
        return tf.nn.softmax(reader(padded)).numpy()[0, :40 // FRAME_COLUMNS]

    alone = frames(40 + lines.REACH, 0)
    np.testing.assert_allclose(frames(40 + lines.REACH, 100), alone, atol=1e-6)
    assert np.abs(frames(40 + lines.REACH - 2 * FRAME_COLUMNS, 0) - alone).max() > 1e-5  # no less would do

    short, wide = np.zeros((50, 60), np.float32), np.zeros((50, 400), np.float32)
    short[10:40, 10:40] = rng.random((30, 30))
    wide[10:40, 10:390] = rng.random((30, 380))
    probabilities = lambda batch: tf.nn.softmax(reader(batch[..., None])).numpy()
    [(by_itself, _)] = lines.read_lines([short], probabilities)
    (beside, _), _ = lines.read_lines([short, wide], probabilities)
    assert [(s.label, s.first, s.stop) for s in by_itself] == [(s.label, s.first, s.stop) for s in beside]
    np.testing.assert_allclose([s.frame for s in by_itself], [s.frame for s in beside], atol=1e-6)

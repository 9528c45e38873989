"""The page of digits.serve in a real browser: headless Chromium (Debian's chromium and chromium-driver,
which .ci/run installs) draws digits with mouse strokes on #pad and reads #digit; it also chooses and
drops image files. The server is a real process on a loopback port, stopped at the end."""
import base64
import os

import numpy as np
import pytest
from PIL import Image

from digits import synthetic, traffic

STROKES = synthetic.STROKES  # each digit 0-9 as pen strokes in a 280x280 square

CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
PAD_WIDTH, PAD_HEIGHT = 840, 280  # the canvas' own pixels; CSS scales it on screen
NOTHING_READ = '–'  # #digit before anything is read ('?' is a mark refused as not a digit)


@pytest.fixture(scope='module')
def browser():
    """Headless Chromium through the system chromedriver (never a download); always quit."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get('DIGITS_TEST_BROWSER'):  # set by .ci/run, which installs them: never skip there
            pytest.fail(f'{CHROMIUM} or {CHROMEDRIVER} missing')
        pytest.skip('no browser: apt-get install chromium chromium-driver')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                     '--window-size=420,900'):  # phone-sized
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope='module')
def page(browser, real_model, tmp_path_factory):
    """The page served with the real-data model, open in the browser."""
    proc, url, _ = traffic.start_server(real_model[0].export_dir)
    try:
        browser.get(url + '/')
        yield browser
    finally:
        traffic.stop_server(proc)


def draw(driver, strokes, left: float = 0):
    """Mouse strokes on #pad, in pad coordinates (a 280x280 square `left` pixels from the pad's left edge),
    scaled to the canvas' size on screen."""
    from selenium.webdriver.common.action_chains import ActionChains
    pad = driver.find_element('id', 'pad')
    assert (int(pad.get_attribute('width')), int(pad.get_attribute('height'))) == (PAD_WIDTH, PAD_HEIGHT)
    scale = pad.rect['width'] / PAD_WIDTH
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        actions = ActionChains(driver, duration=0)
        actions.move_to_element_with_offset(pad, (left + x - PAD_WIDTH / 2) * scale,
                                            (y - PAD_HEIGHT / 2) * scale).click_and_hold()
        for (x0, y0), (x1, y1) in zip(stroke, rest):
            actions.move_by_offset(round((x1 - x0) * scale), round((y1 - y0) * scale))
        actions.release().perform()


def reading(driver, previous: str, timeout: float = 20) -> str:
    """The text of #digit once it has changed from `previous` (the page reads by itself after a stroke)."""
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.find_element('id', 'digit').text not in (previous, ''))
    return driver.find_element('id', 'digit').text


def settled(driver, quiet: float = 1.5, timeout: float = 30):
    """Waits until #digit has stayed the same for `quiet` seconds (no read under way changes it)."""
    import time
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        text = driver.find_element('id', 'digit').text
        if text != last:
            last, since = text, time.monotonic()
        elif time.monotonic() - since >= quiet and text != NOTHING_READ:
            return text
        time.sleep(0.1)
    return last


def test_the_page_reads_each_digit_drawn_with_the_mouse(page, tmp_path):
    read = {}
    for digit, strokes in STROKES.items():
        page.find_element('id', 'clear').click()
        assert page.find_element('id', 'digit').text == NOTHING_READ
        draw(page, strokes)
        read[digit] = reading(page, NOTHING_READ)
        bars = page.find_elements('css selector', '#bars .bar')
        assert len(bars) == 10 and page.find_element('id', 'seen').get_attribute('src').startswith('data:image/png')
    page.save_screenshot(str(tmp_path / 'page.png'))
    assert read == {k: str(k) for k in STROKES}, read


def test_a_number_written_on_the_pad_is_read_whole_and_each_digit_can_be_tapped(page):
    """'2026' in mouse strokes, each digit in its own 200-pixel column (strokes scaled into it): #digit shows
    2026, a chip per digit, and tapping the last shows its probabilities."""
    page.find_element('id', 'clear').click()
    assert not page.find_element('id', 'seen').is_displayed()  # no broken-image icon before a reading
    for i, digit in enumerate((2, 0, 2, 6)):
        squeezed = [[(140 + (x - 140) * 0.7, 140 + (y - 140) * 0.8) for x, y in stroke] for stroke in STROKES[digit]]
        draw(page, squeezed, left=20 + 200 * i - 40)
    settled(page)  # each stroke is read as the pen lifts: wait for the reading of the last one
    assert page.find_element('id', 'digit').text == '2026'
    chips = page.find_elements('css selector', '#digits .chip')
    assert [chip.text.split()[0] for chip in chips] == ['2', '0', '2', '6']
    chips[3].click()
    assert page.find_element('id', 'probability').text.startswith('digit 4 of 4: ')
    top = page.find_element('css selector', '#bars .bar.top span').text
    assert top == '6' and len(page.find_elements('css selector', '#bars .bar')) == 10


def test_a_mark_that_is_not_a_digit_shows_as_refused(page):
    """An X drawn with the mouse is not read as a digit: #digit shows '?', its chip and box in the refused colour."""
    page.find_element('id', 'clear').click()
    draw(page, synthetic.MARKS['X'], left=100)
    assert settled(page) == '?'
    [chip] = page.find_elements('css selector', '#digits .chip')
    assert 'refused' in chip.get_attribute('class').split()


def digit_file(tmp_path, k: int) -> str:
    """A PNG of digit k's strokes drawn with a thick pen (dark on white), as a user's image file."""
    page = synthetic.render_strokes(STROKES[k], width=18)  # [280, 280, 1] in [0, 1]
    path = str(tmp_path / f'{k}.png')
    Image.fromarray((page[..., 0] * 255).astype(np.uint8)).save(path)
    return path


def test_a_chosen_and_a_dropped_image_file_are_read(page, tmp_path):
    page.find_element('id', 'clear').click()
    page.find_element('id', 'file').send_keys(digit_file(tmp_path, 7))
    assert reading(page, NOTHING_READ) == '7'
    with open(digit_file(tmp_path, 3), 'rb') as f:
        encoded = base64.b64encode(f.read()).decode()
    page.execute_script('''  // a file dropped on the pad, as a file manager's drag and drop delivers it
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'three.png', {type: 'image/png'}));
        document.getElementById('pad').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
    ''', encoded)
    assert reading(page, '7') == '3'

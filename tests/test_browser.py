"""The page of digits.serve in a real browser: headless Chromium (Debian's chromium and chromium-driver,
which .ci/run installs) draws digits with mouse strokes on #pad and reads #digit; it also chooses and
drops image files. The server is a real process on a loopback port, stopped at the end."""
import base64
import math
import os

import pytest
from PIL import Image

from conftest import start_server, stop

CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
PAD = 280  # the canvas' own pixels; CSS scales it on screen


def arc(cx, cy, rx, ry, start, end, n=24):
    """Points along an elliptical arc from angle start to end (degrees, clockwise on screen)."""
    return [(cx + rx * math.cos(math.radians(start + (end - start) * i / n)),
             cy + ry * math.sin(math.radians(start + (end - start) * i / n))) for i in range(n + 1)]


# Each digit as pen strokes (lists of points on the 280x280 pad), written the way people write them.
STROKES = {
    0: [arc(140, 140, 55, 85, 0, 360)],
    1: [[(150, 50), (150, 230)]],
    2: [arc(140, 100, 50, 45, 200, 360) + [(175, 150), (90, 230), (200, 230)]],
    3: [arc(135, 95, 50, 42, 210, 450) + arc(135, 183, 55, 47, 270, 510)],
    4: [[(160, 50), (85, 170), (205, 170)], [(170, 110), (170, 235)]],
    5: [[(195, 55), (110, 55), (100, 130)] + arc(140, 170, 60, 55, 235, 480)],
    6: [[(175, 55), (130, 100), (100, 160)] + arc(145, 180, 47, 45, 180, 540)],
    7: [[(85, 55), (200, 55), (120, 235)]],
    8: [arc(140, 95, 42, 40, 90, 450), arc(140, 182, 52, 48, -90, 270)],
    9: [arc(140, 100, 48, 45, 0, 360), [(188, 100), (175, 235)]],
}


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
    proc, url = start_server(real_model[0].export_dir)
    try:
        browser.get(url + '/')
        yield browser
    finally:
        stop(proc)


def draw(driver, strokes):
    """Mouse strokes on #pad, in pad coordinates, scaled to the canvas' size on screen."""
    from selenium.webdriver.common.action_chains import ActionChains
    pad = driver.find_element('id', 'pad')
    scale = pad.rect['width'] / PAD
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        actions = ActionChains(driver, duration=0)
        actions.move_to_element_with_offset(pad, (x - PAD / 2) * scale, (y - PAD / 2) * scale).click_and_hold()
        for (x0, y0), (x1, y1) in zip(stroke, rest):
            actions.move_by_offset(round((x1 - x0) * scale), round((y1 - y0) * scale))
        actions.release().perform()


def reading(driver, previous: str, timeout: float = 20) -> str:
    """The text of #digit once it has changed from `previous` (the page reads by itself after a stroke)."""
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, timeout).until(lambda d: d.find_element('id', 'digit').text not in (previous, ''))
    return driver.find_element('id', 'digit').text


def test_the_page_reads_each_digit_drawn_with_the_mouse(page, tmp_path):
    read = {}
    for digit, strokes in STROKES.items():
        page.find_element('id', 'clear').click()
        assert page.find_element('id', 'digit').text == '?'
        draw(page, strokes)
        read[digit] = reading(page, '?')
        bars = page.find_elements('css selector', '#bars .bar')
        assert len(bars) == 10 and page.find_element('id', 'seen').get_attribute('src').startswith('data:image/png')
    page.save_screenshot(str(tmp_path / 'page.png'))
    assert read == {k: str(k) for k in STROKES}, read


def digit_file(tmp_path, k: int) -> str:
    """A PNG of digit k's strokes drawn with a thick pen (dark on white), as a user's image file."""
    from PIL import ImageDraw
    image = Image.new('L', (280, 280), 255)
    for stroke in STROKES[k]:
        ImageDraw.Draw(image).line(stroke, fill=0, width=18, joint='curve')
    path = str(tmp_path / f'{k}.png')
    image.save(path)
    return path


def test_a_chosen_and_a_dropped_image_file_are_read(page, tmp_path):
    page.find_element('id', 'clear').click()
    page.find_element('id', 'file').send_keys(digit_file(tmp_path, 7))
    assert reading(page, '?') == '7'
    with open(digit_file(tmp_path, 3), 'rb') as f:
        encoded = base64.b64encode(f.read()).decode()
    page.execute_script('''  // a file dropped on the pad, as a file manager's drag and drop delivers it
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'three.png', {type: 'image/png'}));
        document.getElementById('pad').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
    ''', encoded)
    assert reading(page, '7') == '3'

"""Headless Chromium writing on the page of digits.serve with mouse strokes and reading what it shows
(tests/test_browser.py, scripts/read_on_the_page.py). Debian's chromium and chromium-driver, never a
download; selenium is a test requirement (requirements-test.txt), imported only here.
"""
import base64
import io
import os
import time

import numpy as np

from digits.reading import segment
from support import synthetic

CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
PAD_WIDTH, PAD_HEIGHT = 840, 280  # the canvas' own pixels; CSS scales it on screen
NOTHING_READ = '–'  # #digit before anything is read ('?' is a mark refused as not a digit)
DEEPER = 4  # pixels each digit written fast goes further into the one before: mouse steps are whole pixels


def is_installed() -> bool:
    """Whether Debian's chromium and chromium-driver are there."""
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


def start(width: int, height: int):
    """Headless Chromium through the system chromedriver, its window width x height: quit() it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                     f'--window-size={width},{height}'):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


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


def set_pen(driver, width: int):
    """Sets the page's pen slider to `width` px, for the strokes drawn next."""
    driver.execute_script('arguments[0].value = arguments[1]', driver.find_element('id', 'pen'), width)


def write_touching(driver, number, pen: int, left: float = 40):
    """Writes `number` on #pad with pen `pen` as synthetic.written_touching places its digits (each pushed
    against the one before until their ink touches), each DEEPER x its place further in, `left` px from the edge."""
    set_pen(driver, pen)
    _, lefts = synthetic.written_touching(number, pen)
    for i, (digit, x) in enumerate(zip(number, lefts)):
        draw(driver, synthetic.squeezed_strokes(digit), left=left + x - DEEPER * i)


def reading(driver, previous: str, timeout: float = 20) -> str:
    """The text of #digit once it has changed from `previous` (the page reads by itself after a stroke)."""
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.find_element('id', 'digit').text not in (previous, ''))
    return driver.find_element('id', 'digit').text


def settled(driver, quiet: float = 1.5, timeout: float = 30):
    """Waits until #digit has stayed the same for `quiet` seconds (no read under way changes it)."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        text = driver.find_element('id', 'digit').text
        if text != last:
            last, since = text, time.monotonic()
        elif time.monotonic() - since >= quiet and text != NOTHING_READ:
            return text
        time.sleep(0.1)
    return last


def pad_ink(driver) -> np.ndarray:
    """What #pad shows, as bool [PAD_HEIGHT, PAD_WIDTH]: its pixels the reader takes for ink."""
    from PIL import Image
    shown = driver.execute_script("return document.getElementById('pad').toDataURL('image/png')")
    grey = np.asarray(Image.open(io.BytesIO(base64.b64decode(shown.split(',')[1]))).convert('L'))
    return 1 - grey / 255 > segment.INK_THRESHOLD

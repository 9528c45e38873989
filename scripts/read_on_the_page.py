"""How the page of digits.serve reads numbers written fast: headless Chromium writes pen-drawn numbers whose
digits touch on the pad with mouse strokes, and reads what #digit shows.

    python scripts/read_on_the_page.py --model=models/latest [--num=100]

Numbers of 2-6 random digits, each with a random pen of support.synthetic.PEN_WIDTHS (seeded, so every run
writes the same ones), each digit pushed against the one before until their ink touches
(support.browser.write_touching, as scripts/read_numbers.py's touching pen numbers). Starts digits.serve on a
loopback port and stops it at the end. Prints each number, its pen, the pieces of ink on the pad and the
reading, then the share read exactly and how many were one piece of ink. Needs Debian's chromium and
chromium-driver and selenium (requirements-test.txt).
"""
import time

import numpy as np
from absl import flags

from digits import cli
from digits.errors import DigitsError

FLAGS = flags.FLAGS
flags.DEFINE_string('model', None, 'Exported SavedModel (models/<run_name>, models/latest).')
flags.DEFINE_integer('num', 100, 'Numbers to write.')


def write_and_read(driver, number, pen: int) -> tuple[int, str]:
    """Writes a number fast on a clear pad: (pieces of ink on the pad, what #digit shows once settled)."""
    from digits.reading import segment
    from support import browser
    driver.find_element('id', 'clear').click()
    browser.write_touching(driver, number, pen)
    return segment.label_components(browser.pad_ink(driver))[1], browser.settled(driver)


def main(argv):
    del argv
    if not FLAGS.model:
        raise DigitsError('--model is required: the export to measure, e.g. --model=models/latest')
    from support import browser, synthetic, traffic
    if not browser.is_installed():
        raise DigitsError(f'{browser.CHROMIUM} or {browser.CHROMEDRIVER} missing: apt-get install chromium '
                          f'chromium-driver')
    rng, exact, one_piece, start = np.random.default_rng(0), 0, 0, time.monotonic()
    proc, url, _ = traffic.start_server(FLAGS.model)
    driver = browser.start(1000, 900)
    try:
        driver.get(url + '/')
        for k in range(FLAGS.num):
            number = [int(d) for d in rng.integers(0, 10, int(rng.integers(2, 7)))]
            pen = int(rng.choice(synthetic.PEN_WIDTHS))
            pieces, text = write_and_read(driver, number, pen)
            truth = ''.join(map(str, number))
            exact, one_piece = exact + (text == truth), one_piece + (pieces == 1)
            print(f'{k:>4} {truth:>7} pen {pen:>2} px  {pieces} piece(s) of ink  read {text}', flush=True)
    finally:
        driver.quit()
        traffic.stop_server(proc)
    print(f'{exact} of {FLAGS.num} read exactly ({100 * exact / FLAGS.num:.1f}%); {one_piece} were one piece of '
          f'ink on the pad; {time.monotonic() - start:.0f} s')


if __name__ == '__main__':
    cli.run(main, 'read_on_the_page', flags_help=cli.script_flags_help)

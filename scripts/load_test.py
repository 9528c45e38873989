"""Latency and throughput of a running digits.serve under concurrent clients.

    python -m digits.serve --model=models/<run> &
    python scripts/load_test.py --url=http://127.0.0.1:8000 --data_dir=../shared/datasets/mnist-10k \
        --clients=8 --requests=40

Each of --clients threads POSTs --requests MNIST test digits (as PNG files, dark ink on white, 4x
enlarged) to /api/predict, one after the other; prints the median and 99th-percentile latency, the
requests per second over the whole run, and how many digits were read right. Sends only to the URL
given (run it against loopback), and every request has a timeout, so it always finishes.
"""
import argparse
import io
import json
import statistics
import threading
import time
import urllib.error
import urllib.request

import numpy as np


def post(url: str, body: bytes, timeout: float) -> tuple[int, dict, float]:
    """(HTTP status, JSON answer, seconds) of one POST."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=timeout) as response:
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        status, answer = e.code, json.loads(e.read() or b'{}')
    return status, answer, time.perf_counter() - start


def run_load(url: str, bodies: list[bytes], *, clients: int, requests: int, timeout: float = 30.0) -> dict:
    """clients threads each POST `requests` bodies (client c sends bodies c, c + clients, ...) to url.

    Returns {'results': [[(status, answer, seconds), ...] per client], 'seconds': wall time}."""
    results = [[] for _ in range(clients)]

    def client(c: int):
        for i in range(requests):
            results[c].append(post(url, bodies[(c + i * clients) % len(bodies)], timeout))

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout * requests)  # bounded even if the server stops answering
    return {'results': results, 'seconds': time.perf_counter() - start}


def summarize(load: dict) -> dict:
    """Median and 99th-percentile latency (ms), requests/s, and the count of 200 answers."""
    flat = [r for client in load['results'] for r in client]
    latencies = sorted(seconds for _, _, seconds in flat)
    return {'requests': len(flat), 'ok': sum(status == 200 for status, _, _ in flat),
            'median_ms': 1000 * statistics.median(latencies),
            'p99_ms': 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            'requests_per_sec': len(flat) / load['seconds']}


def png_digits(images: np.ndarray) -> list[bytes]:
    """28x28 white-on-black digits as PNG files of dark ink on white paper, 4x enlarged."""
    from PIL import Image
    files = []
    for digit in images:
        buffer = io.BytesIO()
        Image.fromarray(255 - digit).resize((112, 112), Image.BILINEAR).save(buffer, format='PNG')
        files.append(buffer.getvalue())
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--url', default='http://127.0.0.1:8000', help='The running digits.serve.')
    parser.add_argument('--data_dir', help='MNIST folder (IDX or npz); unset: Keras\' download.')
    parser.add_argument('--clients', type=int, default=8, help='Concurrent clients.')
    parser.add_argument('--requests', type=int, default=40, help='Requests per client.')
    args = parser.parse_args(argv)
    from digits import data
    test = data.load('mnist', args.data_dir).test
    count = args.clients * args.requests
    load = run_load(args.url.rstrip('/') + '/api/predict', png_digits(test.images[:count]), clients=args.clients,
                    requests=args.requests)
    right = sum(status == 200 and answer['digit'] == test.labels[(c + i * args.clients) % count]
                for c, client in enumerate(load['results']) for i, (status, answer, _) in enumerate(client))
    figures = summarize(load)
    print(f'{figures["requests"]} requests from {args.clients} clients: {figures["ok"]} answered 200, {right} read '
          f'right; latency median {figures["median_ms"]:.1f} ms, 99th percentile {figures["p99_ms"]:.1f} ms; '
          f'{figures["requests_per_sec"]:.0f} requests/s')


if __name__ == '__main__':
    main()

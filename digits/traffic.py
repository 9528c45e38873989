"""Concurrent clients for a running digits.serve: latency and throughput (scripts/load_test.py, the
server's tests). Every request has a timeout and every loop a bound, so a run always finishes; send only
to loopback.
"""
import json
import statistics
import threading
import time
import urllib.error
import urllib.request


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

"""Concurrent clients for a running digits.serve: latency and throughput (scripts/load_test.py, the
server's tests). Each client thread keeps one connection (HTTP keep-alive, or one gRPC channel), as a
real client does; every request has a timeout and every loop a bound, so a run always finishes; send
only to loopback.
"""
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable

STARTED = re.compile(r'at (http://\S+?)/? (?:and gRPC (\S+) )?\(Ctrl-C')  # digits.serve's address line


def start_server(model: str, *flags: str, cwd: str | None = None,
                 env: dict | None = None) -> tuple[subprocess.Popen, str, str | None]:
    """digits.serve on free loopback ports; returns the process, its base URL and its gRPC address (with
    --grpc_port=0 among flags) once it is ready (env: extra variables). Raises RuntimeError with its
    stderr if it does not start."""
    proc = subprocess.Popen([sys.executable, '-m', 'digits.serve', f'--model={model}', '--port=0', *flags], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()  # the address line, once the model is loaded and warm and the ports bound
    started = STARTED.search(line)
    if not started:
        proc.kill()
        raise RuntimeError(f'digits.serve did not start: {line!r} {proc.communicate(timeout=30)[1][-2000:]}')
    return proc, started.group(1), started.group(2)


def stop_server(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM, then SIGKILL if it has not stopped within 30 s; returns the rest of stdout and stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


Answer = tuple[int, dict]  # (HTTP status, or 200 / a gRPC code's value; the JSON answer or {})
Sender = Callable[[bytes], Answer]


def http_sender(url: str, timeout: float, content_type: str = 'application/json') -> Sender:
    """POSTs bodies to url over one keep-alive connection (opened again after an error)."""
    parts = urllib.parse.urlsplit(url)
    state = {'connection': None}

    def send(body: bytes) -> Answer:
        if state['connection'] is None:
            state['connection'] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            state['connection'].request('POST', parts.path, body, {'Content-Type': content_type})
            response = state['connection'].getresponse()
            return response.status, json.loads(response.read() or b'{}')
        except (OSError, http.client.HTTPException):
            state['connection'].close()
            state['connection'] = None
            raise
    return send


def grpc_sender(address: str, timeout: float) -> Sender:
    """Sends PredictRequests (the bodies) over one gRPC channel: (200, {output: array}) when OK, else
    (the gRPC code's number, {'error': details})."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(address))

    def send(request) -> Answer:
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as e:
            return e.code().value[0], {'error': e.details()}
        return 200, {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}
    return send


def run_load(make_sender: Callable[[], Sender], bodies: list, *, clients: int, requests: int,
             timeout: float = 30.0) -> dict:
    """clients threads, each with its own sender, send `requests` bodies (client c sends bodies c,
    c + clients, ...).

    Returns {'results': [[(status, answer, seconds), ...] per client], 'seconds': wall time}; a request
    that fails on the way is (0, {'error': ...}, seconds)."""
    results = [[] for _ in range(clients)]

    def client(c: int):
        send = make_sender()
        for i in range(requests):
            start = time.perf_counter()
            try:
                status, answer = send(bodies[(c + i * clients) % len(bodies)])
            except Exception as e:  # noqa: BLE001 (a failed request is counted, not fatal to the run)
                status, answer = 0, {'error': f'{type(e).__name__}: {e}'}
            results[c].append((status, answer, time.perf_counter() - start))

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

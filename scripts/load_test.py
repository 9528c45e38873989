"""Throughput and latency of digits.serve under concurrent clients: REST and gRPC, with and without
batching, against the same model read in-process one digit per call, in one run.

    python scripts/load_test.py --model=models/latest [--rounds=3] [--stall_seconds=30]

Starts two servers on loopback ports (the defaults, batching on; and --noenable_batching), both with
gRPC. Each round, alternating, measures the in-process rate (the export's serve function, one digit per
call), then on each server: --clients REST clients and --grpc_clients gRPC clients, each sending
--requests MNIST test digits one per request over its own connection. Every answer is compared with the
export's own for that digit (within 1e-5): a wrong answer is counted. Prints per setting the median over
rounds of requests/s, its ratio to the same round's in-process rate, and the median and 99th-percentile
latency. Then, on each server, /api/predict's latency (one client, sequential) for a 6-digit number
against one digit: MNIST digits, and a pen's digits as the page's pad sends them, apart and written fast
(--rounds=0: these alone); and 200 connections left idle or half-sent for --stall_seconds while one
client keeps sending.
"""
import json
import socket
import statistics
import time

import numpy as np
from absl import flags

from digits import cli, config
from digits.errors import DigitsError

FLAGS = flags.FLAGS
flags.DEFINE_string('model', None, 'Exported SavedModel (models/<run_name>, models/latest).')
flags.DEFINE_integer('clients', 32, 'Concurrent REST clients.')
flags.DEFINE_integer('grpc_clients', 8, 'Concurrent gRPC clients.')
flags.DEFINE_integer('requests', 40, 'Requests per client per round.')
flags.DEFINE_integer('rounds', 3, 'Rounds; every setting is measured once per round, in turn (0: the latencies alone).')
flags.DEFINE_multi_string('batched_flag', [], 'A digits.serve flag for the batched server, to compare settings '
                          '(e.g. --batched_flag=--batch_timeout_micros=2000).')
flags.DEFINE_integer('stall_seconds', 30, 'How long the 200 stalled connections stay open (0: skip).')
config.define_data_flags()


def in_process_rate(module, pixels: np.ndarray, seconds: float = 3.0) -> float:
    """Digits per second of the export's serve function called with one digit at a time."""
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        module.serve(pixels[calls % len(pixels)][None])['probabilities'].numpy()
        calls += 1
    return calls / (time.perf_counter() - start)


def count_wrong(load: dict, want: np.ndarray, clients: int, output) -> int:
    """Answers that are not 200 or differ from the export's own by more than 1e-5."""
    wrong = 0
    for c, client in enumerate(load['results']):
        for i, (status, answer, _) in enumerate(client):
            expected = want[(c + i * clients) % len(want)]
            wrong += status != 200 or not np.allclose(output(answer), expected, atol=1e-5)
    return wrong


def measure(server: dict, api: str, bodies: dict, want: np.ndarray) -> dict:
    """One setting's figures: requests/s, latencies, wrong answers."""
    from support import traffic
    if api == 'REST':
        clients, make = FLAGS.clients, lambda: traffic.http_sender(server['url'] + '/v1/models/digits:predict', 30)
        output = lambda answer: answer['predictions'][0]['probabilities']
    else:
        clients, make = FLAGS.grpc_clients, lambda: traffic.grpc_sender(server['grpc'], 30)
        output = lambda answer: answer['probabilities'][0]
    load = traffic.run_load(make, bodies[api], clients=clients, requests=FLAGS.requests)
    return {**traffic.summarize(load), 'wrong': count_wrong(load, want, clients, output)}


def request_bodies(pixels: np.ndarray) -> dict:
    """Each digit as a REST body (uint8, TF Serving's row format) and a gRPC PredictRequest."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    rest = [json.dumps({'signature_name': 'serving_uint8', 'instances': [p.tolist()]}).encode() for p in pixels]
    grpc = []
    for p in pixels:
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = 'digits', 'serving_uint8'
        request.inputs['images'].CopyFrom(tf.make_tensor_proto(p[None]))
        grpc.append(request)
    return {'REST': rest, 'gRPC': grpc}


def print_table(figures: dict, rates: list[float]):
    """Medians over rounds, each setting's rate as a ratio to its round's in-process rate."""
    print(f'in-process, one digit per call: {statistics.median(rates):.0f} digits/s (median of {len(rates)} rounds)')
    print(f'{"setting":<28} {"requests/s":>10} {"x in-process":>12} {"p50 ms":>8} {"p99 ms":>8} {"wrong":>6}')
    for setting, rounds in figures.items():
        ratio = statistics.median(r['requests_per_sec'] / rate for r, rate in zip(rounds, rates))
        print(f'{setting:<28} {statistics.median(r["requests_per_sec"] for r in rounds):>10.0f} {ratio:>12.2f} '
              f'{statistics.median(r["median_ms"] for r in rounds):>8.1f} '
              f'{statistics.median(r["p99_ms"] for r in rounds):>8.1f} {sum(r["wrong"] for r in rounds):>6}')


def page_latency(url: str, pages: dict, requests: int = 30) -> dict:
    """Median /api/predict latency (ms) of each page, sent by one client in turn as a PNG file encoded
    beforehand, as a client uploads a file (encoding the 6 pen digits' page takes 2.4 ms, one's 0.3 ms)."""
    from digits.reading import images
    from support import traffic
    send = traffic.http_sender(url + '/api/predict', 30, 'image/png')
    files = {name: images.png_bytes(np.round(page[..., 0] * 255).astype(np.uint8)) for name, page in pages.items()}
    times = {name: [] for name in pages}
    for _ in range(requests):
        for name, body in files.items():
            start = time.perf_counter()
            status, answer = send(body)
            times[name].append(time.perf_counter() - start)
            assert status == 200, answer
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def latency_pages(test, synthetic) -> dict:
    """The pages page_latency sends: MNIST digits written apart (28 pixels tall), and a pen's digits as the
    page's pad sends them (280 pixels tall), apart and written fast (their ink touching)."""
    mnist = lambda n: synthetic.spaced_number(test.images[:n], [12] * n)
    number = [2, 0, 2, 6, 1, 9]
    return {'1 MNIST digit': mnist(1), '6 MNIST digits': mnist(6), '1 pen digit': synthetic.pen_number([7], 12),
            '6 pen digits': synthetic.pen_number(number, 12),
            '6 pen digits, touching': synthetic.touching_pen_number(number, 12)}


def stalled_run(server: dict, bodies: list[bytes], seconds: float) -> dict:
    """200 connections (half idle, half with a request sent in part) open for `seconds` while one REST
    client keeps sending: its figures."""
    from support import traffic
    port, stalled = int(server['url'].rsplit(':', 1)[1]), []
    try:
        for i in range(200):
            stalled.append(socket.create_connection(('127.0.0.1', port), timeout=10))
            if i % 2:
                stalled[-1].sendall(b'POST /v1/models/digits:predict HTTP/1.1\r\nContent-Length: 9000\r\n\r\n{"inst')
        send = traffic.http_sender(server['url'] + '/v1/models/digits:predict', 10)
        results, end = [], time.time() + seconds
        while time.time() < end:
            start = time.perf_counter()
            try:
                status, _ = send(bodies[len(results) % len(bodies)])
            except OSError:
                status = 0
            results.append((status, {}, time.perf_counter() - start))
        return traffic.summarize({'results': [results], 'seconds': seconds})
    finally:
        for connection in stalled:
            connection.close()


def main(argv):
    del argv
    if not FLAGS.model:
        raise DigitsError('--model is required: the export to serve, e.g. --model=models/latest')
    from digits.data import arrays
    from digits.export import saved_model
    from support import synthetic, traffic
    test = arrays.load(FLAGS.dataset or 'mnist_10k', FLAGS.data_dir).test
    pixels = test.images[:max(FLAGS.clients, FLAGS.grpc_clients) * 4]
    module = saved_model.load(FLAGS.model)
    want = np.concatenate([module.serve(p[None])['probabilities'].numpy() for p in pixels])
    bodies = request_bodies(pixels)
    servers = {}
    try:
        for name, extra in (('batched', FLAGS.batched_flag), ('unbatched', ('--noenable_batching',))):
            proc, url, grpc = traffic.start_server(FLAGS.model, '--grpc_port=0', *extra)
            servers[name] = {'proc': proc, 'url': url, 'grpc': grpc}
        figures, rates = {}, []
        for _ in range(FLAGS.rounds):
            rates.append(in_process_rate(module, pixels))
            for name, server in servers.items():
                for api in ('REST', 'gRPC'):
                    clients = FLAGS.clients if api == 'REST' else FLAGS.grpc_clients
                    figure = measure(server, api, bodies, want)
                    figures.setdefault(f'{api} {clients} clients, {name}', []).append(figure)
        if figures:
            print_table(figures, rates)
        for name, server in servers.items():
            latency = page_latency(server['url'], latency_pages(test, synthetic))
            print(f'/api/predict, one client, {name} server (median ms, and against one digit of its kind):')
            for page, ms in latency.items():
                print(f'  {page:<24} {ms:6.1f} ms {ms / latency["1 " + page.split()[1] + " digit"]:5.2f}x')
        if FLAGS.stall_seconds:
            stalled = stalled_run(servers['batched'], bodies['REST'], FLAGS.stall_seconds)
            print(f'200 stalled connections for {FLAGS.stall_seconds} s: {stalled["ok"]}/{stalled["requests"]} of '
                  f'another client\'s requests answered 200, p50 {stalled["median_ms"]:.1f} ms, p99 '
                  f'{stalled["p99_ms"]:.1f} ms')
    finally:
        for server in servers.values():
            traffic.stop_server(server['proc'])


if __name__ == '__main__':
    cli.run(main, 'load_test', flags_help=cli.script_flags_help)

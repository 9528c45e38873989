"""Latency and throughput of a running digits.serve under concurrent clients.

    python -m digits.serve --model=models/latest &
    python scripts/load_test.py --url=http://127.0.0.1:8000 --clients=8 --requests=40

Each of --clients threads POSTs --requests MNIST test digits (as PNG files, dark ink on white, 4x
enlarged) to /api/predict, one after the other; prints the median and 99th-percentile latency, the
requests per second over the whole run, and how many digits were read right. Sends only to the URL
given (run it against loopback), and every request has a timeout, so it always finishes.
"""
from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS
flags.DEFINE_string('url', 'http://127.0.0.1:8000', 'The running digits.serve.')
flags.DEFINE_integer('clients', 8, 'Concurrent clients.')
flags.DEFINE_integer('requests', 40, 'Requests per client.')
config.define_data_flags()


def main(argv):
    del argv
    from digits import data, synthetic, traffic
    test = data.load(FLAGS.dataset or 'mnist_10k', FLAGS.data_dir).test
    count = FLAGS.clients * FLAGS.requests
    load = traffic.run_load(FLAGS.url.rstrip('/') + '/api/predict', synthetic.png_digits(test.images[:count]),
                            clients=FLAGS.clients, requests=FLAGS.requests)
    right = sum(status == 200 and answer['digit'] == test.labels[(c + i * FLAGS.clients) % count]
                for c, client in enumerate(load['results']) for i, (status, answer, _) in enumerate(client))
    figures = traffic.summarize(load)
    print(f'{figures["requests"]} requests from {FLAGS.clients} clients: {figures["ok"]} answered 200, {right} read '
          f'right; latency median {figures["median_ms"]:.1f} ms, 99th percentile {figures["p99_ms"]:.1f} ms; '
          f'{figures["requests_per_sec"]:.0f} requests/s')


if __name__ == '__main__':
    cli.run(main, 'load_test', flags_help=cli.script_flags_help)

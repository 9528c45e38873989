"""A multi-worker cluster on this machine: N `python -m digits.train` workers on free localhost ports, each
with its TF_CONFIG (scripts/launch_multi_worker.py and the distribution tests share it)."""
import json
import os
import socket
import subprocess
import sys
import threading
import time


def free_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG for worker `index` of a cluster on the given localhost ports (worker 0 is the chief)."""
    return json.dumps({'cluster': {'worker': [f'localhost:{p}' for p in ports]},
                       'task': {'type': 'worker', 'index': index}})


def start_workers(num: int, train_args: list[str]) -> list[subprocess.Popen]:
    """Starts the workers, each with its TF_CONFIG, output piped through a prefixing thread."""
    ports, procs = free_ports(num), []
    for index in range(num):
        env = dict(os.environ, TF_CONFIG=tf_config(ports, index))
        proc = subprocess.Popen([sys.executable, '-m', 'digits.train', *train_args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=relay, args=(proc, index), daemon=True).start()
        procs.append(proc)
    return procs


def relay(proc: subprocess.Popen, index: int):
    """Copies a worker's output to ours, line by line, prefixed with its index."""
    for line in proc.stdout:
        sys.stdout.write(f'[worker {index}] {line}')
        sys.stdout.flush()


def wait_all(procs: list[subprocess.Popen], timeout: float) -> int:
    """Waits for every worker; stops them all on the first failure or at the deadline."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
        if failed or time.monotonic() > deadline:
            reason = f'a worker exited with status {failed[0]}' if failed else f'--timeout ({timeout}s) passed'
            print(f'launch_multi_worker: {reason}; stopping the others', file=sys.stderr, flush=True)
            for p in procs:
                if p.poll() is None:
                    p.kill()
            return failed[0] if failed else 124
        time.sleep(0.2)
    time.sleep(0.2)  # let the relay threads print the last lines
    return next((p.returncode for p in procs if p.returncode), 0)

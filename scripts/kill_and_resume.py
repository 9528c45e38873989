"""Checks that resuming is exact: an uninterrupted run vs. one killed with SIGKILL and rerun.

    python scripts/kill_and_resume.py --deterministic

Every argument is passed to `python -m digits.train`. The script trains <prefix>-straight to the end,
then starts <prefix>-killed, kills it with SIGKILL (no chance to clean up) once its
`--kill_after_checkpoints`-th checkpoint is listed, reruns the same command to finish it, and prints
both runs' final step, test loss and weights fingerprint. Exit status 0 if they are identical.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--logdir', default='logs', help='Where both runs go.')
    parser.add_argument('--prefix', default='resume', help='Run names are <prefix>-straight, <prefix>-killed.')
    parser.add_argument('--kill_after_checkpoints', type=int, default=2,
                        help='SIGKILL the second run once it has written this many checkpoints.')
    parser.add_argument('--timeout', type=float, default=1800, help='Seconds allowed for each run.')
    return parser.parse_known_args(argv)


def train_command(train_args, logdir: str, run_name: str) -> list[str]:
    export_dir = os.path.join(os.path.dirname(os.path.abspath(logdir)), 'models', run_name)
    return [sys.executable, '-m', 'digits.train', *train_args, f'--logdir={logdir}',
            f'--run_name={run_name}', f'--export_dir={export_dir}']


def count_checkpoints(run_dir: str) -> int:
    """Checkpoints saved so far: the steps listed in the manager's index (written after each save)."""
    try:
        with open(os.path.join(run_dir, 'checkpoints', 'checkpoint')) as f:
            return len(re.findall(r'^all_model_checkpoint_paths:', f.read(), re.MULTILINE))
    except FileNotFoundError:
        return 0


def run_and_kill(command, run_dir: str, checkpoints: int, timeout: float) -> int:
    """Starts command and SIGKILLs it once run_dir lists `checkpoints` checkpoints; returns that count."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while proc.poll() is None and count_checkpoints(run_dir) < checkpoints and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        raise SystemExit(f'kill_and_resume: error: the run ended (status {proc.returncode}) before its '
                         f'checkpoint {checkpoints}; train longer or lower --checkpoint_every_steps')
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return count_checkpoints(run_dir)


def run_to_end(command, timeout: float):
    """Runs a training command to its end; exits with one line if it fails (its own error is above)."""
    try:
        status = subprocess.run(command, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        raise SystemExit(f'kill_and_resume: error: training took longer than --timeout ({timeout}s)') from None
    if status:
        raise SystemExit(f'kill_and_resume: error: training failed with status {status}')


def read_results(run_dir: str) -> dict:
    with open(os.path.join(run_dir, 'results.json')) as f:
        return json.load(f)


def main(argv=None) -> int:
    args, train_args = parse_args(sys.argv[1:] if argv is None else argv)
    straight, killed = (os.path.join(args.logdir, f'{args.prefix}-{kind}') for kind in ('straight', 'killed'))
    run_to_end(train_command(train_args, args.logdir, f'{args.prefix}-straight'), args.timeout)
    seen = run_and_kill(train_command(train_args, args.logdir, f'{args.prefix}-killed'), killed,
                        args.kill_after_checkpoints, args.timeout)
    print(f'killed {args.prefix}-killed with SIGKILL after {seen} checkpoint(s); rerunning it', flush=True)
    run_to_end(train_command(train_args, args.logdir, f'{args.prefix}-killed'), args.timeout)
    a, b = read_results(straight), read_results(killed)
    for name, r in (('straight', a), ('killed+resumed', b)):
        print(f'{name:>15}: step {r["global_step"]}  test_loss {r["test_loss"]!r}  '
              f'test_accuracy {r["test_accuracy"]}  weights sha256 {r["weights_sha256"][:16]}')
    same = all(a[k] == b[k] for k in ('global_step', 'test_loss', 'test_accuracy', 'weights_sha256'))
    print('identical' if same else 'DIFFERENT')
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())

"""A sweep: a grid or random search of digits.train runs, ranked, with each run's time in fit-epochs (the
library side of digits.sweep).

Each point is an ordinary run directory under the sweep folder, named by its values, with its export inside
it, so `tensorboard --logdir <sweep_dir>` compares the points in its HParams view. Rerunning the same sweep
skips finished points and resumes interrupted ones from their last checkpoint. The table is sorted by
validation accuracy (test accuracy when the runs hold out no validation split), with each run's wall seconds
(results.json) divided by the fit-epoch measured on the same machine around the runs (digits.training.fit_epoch).
"""
import concurrent.futures
import csv
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys

from absl import flags

from digits import config
from digits.errors import DigitsError

# Run options, not part of a recipe: left out of --best_flagfile.
RUN_FLAGS = ('data_dir', 'validation_split', 'logdir', 'run_name', 'export_dir', 'seed')


def plan_sweep(cfg: config.SweepConfig) -> list[dict]:
    """The sweep's points, each checked as digits.train would check it (a bad value is a DigitsError before
    anything runs); records the sweep's arguments in its folder (another sweep's folder is refused)."""
    points = make_points(grid_values(cfg.grid), range_bounds(cfg.ranges), cfg.random, cfg.search_seed)
    for point in points:
        check_point(train_args_of(point, list(cfg.train_args), cfg.sweep_dir))
    check_sweep_record(cfg.sweep_dir, {'train_args': list(cfg.train_args), 'points': [point_name(p) for p in points]})
    return points


def run_sweep(cfg: config.SweepConfig, points: list[dict], log=print) -> int:
    """Runs the unfinished points of plan_sweep, then prints and writes the table; returns 1 if a run failed
    or none finished, else 0."""
    base = list(cfg.train_args)
    first = check_point(train_args_of(points[0], base, cfg.sweep_dir))
    pending = [p for p in points if not is_finished(cfg.sweep_dir, point_name(p))]
    unit = cfg.fit_epoch_seconds or (measure_unit(first) if pending else 0.0)
    if pending:
        log(f'sweep: {len(points)} points, {len(points) - len(pending)} already finished; one fit-epoch on this '
            f'machine: {unit:.2f} s; {cfg.parallel} run(s) at a time, logs in {cfg.sweep_dir}')
    failed = run_pending(pending, base, cfg, unit, log)
    if pending and not cfg.fit_epoch_seconds:
        bracket_unit(pending, failed, cfg, unit, measure_unit(first), log)
    finished = [p for p in points if is_finished(cfg.sweep_dir, point_name(p))]
    if finished:
        report(finished, len(points), base, cfg, log)
    return 1 if failed or not finished else 0


def parse_spec(spec: str, option: str) -> tuple[str, str]:
    """'name=rest' -> (name, rest), with a one-line error for anything else."""
    name, sep, rest = spec.partition('=')
    if not sep or not name or not rest:
        raise DigitsError(f'--{option} ({spec}) must look like FLAG={"V1,V2" if option == "grid" else "LOW:HIGH"}')
    return name.lstrip('-'), rest


def grid_values(specs: list[str]) -> dict[str, list[str]]:
    """{flag: its values}, in the order given."""
    grid = {}
    for spec in specs:
        name, rest = parse_spec(spec, 'grid')
        grid[name] = [v for v in rest.split(',') if v]
    return grid


def range_bounds(specs: list[str]) -> dict[str, tuple[float, float, bool]]:
    """{flag: (low, high, log-uniform?)}."""
    ranges = {}
    for spec in specs:
        name, rest = parse_spec(spec, 'range')
        parts = rest.split(':')
        try:
            low, high = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise DigitsError(f'--range ({spec}) must look like FLAG=LOW:HIGH or FLAG=LOW:HIGH:log') from None
        log = parts[2:] == ['log']
        if not low < high or (log and low <= 0) or len(parts) > 3 or (len(parts) == 3 and not log):
            raise DigitsError(f'--range ({spec}) needs LOW < HIGH (both positive with :log)')
        ranges[name] = (low, high, log)
    return ranges


def make_points(grid: dict, ranges: dict, num_random: int, seed: int) -> list[dict[str, str]]:
    """Every combination of the grid, or num_random draws (the same ones for the same seed)."""
    if not num_random:
        return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    rng, points = random.Random(seed), []
    for _ in range(num_random):
        point = {name: rng.choice(values) for name, values in grid.items()}
        for name, (low, high, log) in ranges.items():
            value = math.exp(rng.uniform(math.log(low), math.log(high))) if log else rng.uniform(low, high)
            point[name] = f'{value:.3g}'
        points.append(point)
    return points


def point_name(point: dict) -> str:
    """The run directory's name: its values, a flagfile by its file name."""
    return ','.join(f'{k}={os.path.splitext(os.path.basename(v))[0] if k == "flagfile" else v}'
                    for k, v in point.items())


def train_args_of(point: dict, base: list[str], sweep_dir: str) -> list[str]:
    """digits.train's arguments for a point: its flagfile first (later flags override it), then the
    common arguments, then its own values and where it writes."""
    name, run = point_name(point), os.path.join(sweep_dir, point_name(point))
    first = [f'--flagfile={point["flagfile"]}'] if 'flagfile' in point else []
    own = [f'--{k}={v}' for k, v in point.items() if k != 'flagfile']
    return first + base + own + [f'--logdir={sweep_dir}', f'--run_name={name}',
                                 f'--export_dir={os.path.join(run, "export")}']


def check_point(args: list[str]) -> config.TrainConfig:
    """The point's TrainConfig, parsed and checked as digits.train would, before anything runs."""
    values = flags.FlagValues()
    config.define_train_flags(values)
    try:
        values(['digits.train'] + args)
    except flags.Error as e:
        raise DigitsError(str(e)) from None
    return config.train_config_from_flags(values)


def check_sweep_record(sweep_dir: str, record: dict):
    """A sweep folder belongs to one command: rerunning it resumes; other arguments need another folder."""
    path = os.path.join(sweep_dir, 'sweep.json')
    if os.path.exists(path):
        with open(path) as f:
            before = json.load(f)
        if before != record:
            raise DigitsError(f'--sweep_dir ({sweep_dir}) holds a sweep of other arguments ({path}); rerun that '
                              f'command to resume it, or use a new --sweep_dir')
    os.makedirs(sweep_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(record, f, indent=2)


def measure_unit(cfg: config.TrainConfig) -> float:
    """Seconds of one fit-epoch on this machine (digits.training.fit_epoch), on the sweep's training images."""
    from digits.data import arrays  # TensorFlow: only a sweep that measures its unit loads it
    from digits.training import fit_epoch
    train = arrays.load(cfg.dataset, cfg.data_dir).train
    return fit_epoch.measure_seconds(train.images, train.labels)


def run_point(name: str, args: list[str], sweep_dir: str, unit: float, parallel: int) -> int:
    """Trains one point (output in <sweep_dir>/<name>.log); records the unit its time is counted in."""
    with open(os.path.join(sweep_dir, f'{name}.log'), 'a') as log:
        code = subprocess.run([sys.executable, '-m', 'digits.train', *args], stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
    if code == 0:
        record_unit(sweep_dir, name, unit, parallel=parallel)
    return code


def record_unit(sweep_dir: str, name: str, unit: float, **extra):
    """Marks a point finished, with the fit-epoch its time is counted in."""
    with open(os.path.join(sweep_dir, name, 'sweep_point.json'), 'w') as f:
        json.dump({'fit_epoch_seconds': unit, **extra}, f)


def is_finished(sweep_dir: str, name: str) -> bool:
    return os.path.exists(os.path.join(sweep_dir, name, 'sweep_point.json'))


def last_line(sweep_dir: str, name: str) -> str:
    """The last line a failed run printed (its one-line error)."""
    try:
        with open(os.path.join(sweep_dir, f'{name}.log')) as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return ''
    return lines[-1] if lines else ''


def collect_row(sweep_dir: str, point: dict) -> dict:
    """A finished point's figures: its values, accuracies, wall seconds and fit-epochs."""
    name = point_name(point)
    with open(os.path.join(sweep_dir, name, 'results.json')) as f:
        results = json.load(f)
    with open(os.path.join(sweep_dir, name, 'sweep_point.json')) as f:
        unit = json.load(f)['fit_epoch_seconds']
    return {**point, 'validation_accuracy': results.get('validation_accuracy'),
            'test_accuracy': results['test_accuracy'], 'wall_seconds': results['wall_seconds'],
            'fit_epochs': results['wall_seconds'] / unit, 'steps': results['global_step'], 'run': name}


def rank(rows: list[dict]) -> tuple[list[dict], str]:
    """Rows sorted by validation accuracy (test accuracy if no run held out a validation split)."""
    metric = 'validation_accuracy' if all(r['validation_accuracy'] is not None for r in rows) else 'test_accuracy'
    return sorted(rows, key=lambda r: -r[metric]), metric


def format_table(rows: list[dict], keys: list[str], metric: str) -> list[list[str]]:
    """Header and rows as strings: the point's values, then the figures."""
    validation = ['validation %'] if metric == 'validation_accuracy' else []
    figures = validation + ['test %', 'seconds', 'fit-epochs', 'steps']
    table = [keys + figures]
    for r in rows:
        values = [point_name({k: r[k]}).split('=', 1)[1] for k in keys]
        accuracy = [f'{100 * r["validation_accuracy"]:.2f}'] if metric == 'validation_accuracy' else []
        table.append(values + accuracy + [f'{100 * r["test_accuracy"]:.2f}', f'{r["wall_seconds"]:.1f}',
                                          f'{r["fit_epochs"]:.1f}', str(r['steps'])])
    return table


def summarize_seeds(rows: list[dict], keys: list[str], metric: str) -> list[list[str]]:
    """Mean and worst over the seeds of each other combination: of the metric, then of test accuracy."""
    others = [k for k in keys if k != 'seed']
    metrics = [metric] + (['test_accuracy'] if metric != 'test_accuracy' else [])
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in others), []).append(r)
    table = [others + ['seeds'] + [f'{m.split("_")[0]} {s} %' for m in metrics for s in ('mean', 'worst')]
             + ['fit-epochs mean']]
    for values, group in sorted(groups.items(), key=lambda kv: -statistics.mean(r[metric] for r in kv[1])):
        figures = [f'{100 * f([r[m] for r in group]):.2f}' for m in metrics for f in (statistics.mean, min)]
        table.append([point_name({k: v}).split('=', 1)[1] for k, v in zip(others, values)] + [str(len(group))]
                     + figures + [f'{statistics.mean(r["fit_epochs"] for r in group):.1f}'])
    return table


def aligned(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return '\n'.join('  '.join(cell.rjust(w) for cell, w in zip(row, widths)) for row in table)


def markdown(table: list[list[str]]) -> str:
    lines = ['| ' + ' | '.join(table[0]) + ' |', '|' + '---|' * len(table[0])]
    return '\n'.join(lines + ['| ' + ' | '.join(row) + ' |' for row in table[1:]])


def write_tables(sweep_dir: str, table: list[list[str]], seeds: list[list[str]] | None, footer: str):
    with open(os.path.join(sweep_dir, 'results.csv'), 'w', newline='') as f:
        csv.writer(f).writerows(table)
    with open(os.path.join(sweep_dir, 'results.md'), 'w') as f:
        f.write(markdown(table) + '\n\n' + (markdown(seeds) + '\n\n' if seeds else '') + footer + '\n')


def write_best_flagfile(path: str, best: dict, keys: list[str], base: list[str], metric: str, command: str):
    """The best point as a flagfile: what it measured, how, then the common recipe flags and its values."""
    recipe = [a for a in base if a.lstrip('-').split('=')[0] not in RUN_FLAGS]
    first = [f'--flagfile={best["flagfile"]}'] if 'flagfile' in keys else []
    own = [f'--{k}={best[k]}' for k in keys if k not in ('flagfile',) + RUN_FLAGS]
    with open(path, 'w') as f:
        f.write(f'# Best point ({best["run"]}) of: {command}\n'
                f'#   {metric.replace("_", " ")} {100 * best[metric]:.2f}%, test {100 * best["test_accuracy"]:.2f}%, '
                f'{best["wall_seconds"]:.0f} s = {best["fit_epochs"]:.1f} fit-epochs.\n')
        f.write('\n'.join(first + recipe + own) + '\n')


def report(finished: list[dict], num_points: int, base: list[str], cfg: config.SweepConfig, log):
    """Prints the ranked table (and the summary over seeds), writes it as CSV and Markdown, and the best
    point as a flagfile if asked."""
    rows, metric = rank([collect_row(cfg.sweep_dir, p) for p in finished])
    keys = list(finished[0])
    table = format_table(rows, keys, metric)
    seeds = summarize_seeds(rows, keys, metric) if 'seed' in keys else None
    shared = f' (runs {cfg.parallel} at a time: their times include sharing the CPU)' if cfg.parallel > 1 else ''
    footer = (f'{len(finished)} of {num_points} points; sorted by {metric.replace("_", " ")}; fit-epochs: wall '
              f'seconds / the keras.io convnet\'s model.fit epoch of 10,000 images on the same machine{shared}')
    log(aligned(table) + ('\n\n' + aligned(seeds) if seeds else '') + '\n' + footer)
    write_tables(cfg.sweep_dir, table, seeds, footer)
    if cfg.best_flagfile:
        write_best_flagfile(cfg.best_flagfile, rows[0], keys, base, metric, cfg.command)
        log(f'best point written to {cfg.best_flagfile}')


def bracket_unit(ran: list[dict], failed: list[str], cfg: config.SweepConfig, before: float, after: float, log):
    """The machine's speed drifts within minutes: the points just run are counted in the mean of the
    fit-epoch measured before and after them."""
    unit = (before + after) / 2
    log(f'sweep: one fit-epoch measured {before:.2f} s before the runs and {after:.2f} s after; their times '
        f'are counted in the mean, {unit:.2f} s')
    for point in ran:
        if point_name(point) not in failed:
            record_unit(cfg.sweep_dir, point_name(point), unit, parallel=cfg.parallel, measured=[before, after])


def run_pending(pending: list[dict], base: list[str], cfg: config.SweepConfig, unit: float, log) -> list[str]:
    """Runs the points not finished yet, --parallel at a time; returns the names of those that failed."""
    failed = []

    def one(point):
        name = point_name(point)
        code = run_point(name, train_args_of(point, base, cfg.sweep_dir), cfg.sweep_dir, unit, cfg.parallel)
        if code:
            failed.append(name)
            log(f'failed   {name} (exit {code}): {last_line(cfg.sweep_dir, name)}')
            return
        row = collect_row(cfg.sweep_dir, point)
        accuracy = (f'validation {100 * row["validation_accuracy"]:.2f}%, ' if row['validation_accuracy'] is not None
                    else '')
        log(f'finished {name}: {accuracy}test {100 * row["test_accuracy"]:.2f}%, {row["wall_seconds"]:.1f} s')

    with concurrent.futures.ThreadPoolExecutor(cfg.parallel) as pool:
        list(pool.map(one, pending))
    return failed



"""digits.training.sweeps and digits.sweep: a 2x2 grid of real digits.train runs on tiny data, its table, resuming, the
best flagfile; the command's one-line errors."""
import csv
import json
import os

import pytest
from conftest import run_module

from digits import config
from digits.training import sweeps as sweep

UNIT = 0.5  # the fit-epoch, given: measuring it is digits.training.fit_epoch's (tested there) and takes seconds


def tiny_args(data_dir):
    return [f'--data_dir={data_dir}', '--arch=simple', '--line_steps=0', '--batch_size=32', '--train_steps=4',
            '--steps_per_loop=2', '--warmup_steps=1', '--validation_split=0.25', '--log_every_steps=2']


def sweep_config(sweep_dir, train_args, **kwargs) -> config.SweepConfig:
    return config.SweepConfig(str(sweep_dir), train_args=tuple(train_args), **kwargs)


def run(cfg: config.SweepConfig) -> int:
    """The sweep as digits.sweep runs it, in-process."""
    return sweep.run_sweep(cfg, sweep.plan_sweep(cfg))


def test_grid_ranks_the_runs_resumes_and_writes_the_best_flagfile(tiny_data_dir, tmp_path, capsys, monkeypatch):
    """As a user runs it (python -m digits.sweep): a flagfile and train flags on the command line reach every
    point; then the table, the best flagfile and resuming."""
    sweep_dir, best, recipe = tmp_path / 'sweep', tmp_path / 'best.cfg', tmp_path / 'recipe.cfg'
    recipe.write_text('--arch=simple\n--batch_size=32\n--line_steps=0\n')
    argv = [f'--sweep_dir={sweep_dir}', '--grid=learning_rate=0.01,0.001', '--grid=seed=0,1', '--parallel=2',
            f'--fit_epoch_seconds={UNIT}', f'--best_flagfile={best}', f'--flagfile={recipe}',
            *tiny_args(tiny_data_dir)[3:], f'--data_dir={tiny_data_dir}']
    proc = run_module('digits.sweep', *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = config.SweepConfig(str(sweep_dir), grid=('learning_rate=0.01,0.001', 'seed=0,1'), parallel=2,
                             best_flagfile=str(best), train_args=tuple(json.loads(
                                 (sweep_dir / 'sweep.json').read_text())['train_args']))
    names = ['learning_rate=0.01,seed=0', 'learning_rate=0.01,seed=1', 'learning_rate=0.001,seed=0',
             'learning_rate=0.001,seed=1']
    results = {n: json.loads((sweep_dir / n / 'results.json').read_text()) for n in names}
    assert {r['flags']['learning_rate'] for r in results.values()} == {0.01, 0.001}
    assert {(r['flags']['arch'], r['flags']['batch_size']) for r in results.values()} == {('simple', 32)}
    assert all(r['global_step'] == 4 and (sweep_dir / n / 'export').is_dir() for n, r in results.items())

    with open(sweep_dir / 'results.csv') as f:
        table = list(csv.reader(f))
    assert table[0] == ['learning_rate', 'seed', 'validation %', 'test %', 'seconds', 'fit-epochs', 'steps']
    validation = [float(row[2]) for row in table[1:]]
    assert len(table) == 5 and validation == sorted(validation, reverse=True)
    for row in table[1:]:  # each row is its run's results, with its time in the given unit
        r = results[f'learning_rate={row[0]},seed={row[1]}']
        assert float(row[2]) == pytest.approx(100 * r['validation_accuracy'], abs=0.0051)  # printed to 2 decimals
        assert float(row[5]) == pytest.approx(r['wall_seconds'] / UNIT, abs=0.05)
    assert proc.stdout.count('finished ') == 4 and 'seeds' in proc.stdout  # the summary over seeds
    assert '| learning_rate | seed |' in (sweep_dir / 'results.md').read_text()

    best_name = f'learning_rate={table[1][0]},seed={table[1][1]}'
    lines = best.read_text().splitlines()
    assert lines[0].startswith(f'# Best point ({best_name}) of: python -m digits.sweep --sweep_dir={sweep_dir} ')
    assert f'--learning_rate={table[1][0]}' in lines
    assert not any('data_dir' in line or 'seed' in line for line in lines[2:])
    assert sweep.check_point([f'--flagfile={best}']).learning_rate == float(table[1][0])

    # An interrupted point (no results yet) is resumed; the finished ones are not run again.
    os.remove(sweep_dir / names[0] / 'results.json')
    os.remove(sweep_dir / names[0] / 'sweep_point.json')
    logs = {n: (sweep_dir / f'{n}.log').read_text() for n in names}
    units = iter([1.0, 3.0])  # the fit-epoch measured before and after the runs (the machine drifts)
    monkeypatch.setattr(sweep, 'measure_unit', lambda cfg: next(units))
    assert run(config.SweepConfig(**{**cfg.__dict__, 'fit_epoch_seconds': 0.0})) == 0
    assert 'resumed from step 4' in (sweep_dir / f'{names[0]}.log').read_text()
    assert all((sweep_dir / f'{n}.log').read_text() == logs[n] for n in names[1:])
    out = capsys.readouterr().out
    assert out.count('finished ') == 1 and '1.00 s before the runs and 3.00 s after' in out
    with open(sweep_dir / 'results.csv') as f:
        rows = {f'learning_rate={r[0]},seed={r[1]}': r for r in list(csv.reader(f))[1:]}
    wall = json.loads((sweep_dir / names[0] / 'results.json').read_text())['wall_seconds']
    assert float(rows[names[0]][5]) == pytest.approx(wall / 2.0, abs=0.05)  # counted in the mean unit
    assert float(rows[names[1]][5]) == pytest.approx(results[names[1]]['wall_seconds'] / UNIT, abs=0.05)


def test_the_sweep_folder_refuses_other_arguments(tiny_data_dir, tmp_path):
    sweep_dir = tmp_path / 'sweep'
    os.makedirs(sweep_dir)
    (sweep_dir / 'sweep.json').write_text(json.dumps({'train_args': ['--epochs=3'], 'points': ['seed=0']}))
    with pytest.raises(sweep.DigitsError, match='holds a sweep of other arguments'):
        sweep.plan_sweep(sweep_config(sweep_dir, tiny_args(tiny_data_dir), grid=('seed=0',)))


@pytest.mark.parametrize('argv, message', [
    (['--grid=learning_rate=-1,0.1'], '--learning_rate (-1.0) must be positive'),
    (['--grid=learnin_rate=0.1'], 'Unknown command line flag \'learnin_rate\''),
    (['--grid=learning_rate'], '--grid (learning_rate) must look like FLAG=V1,V2'),
    (['--range=learning_rate=1:0.1', '--random=3'], 'needs LOW < HIGH'),
    (['--range=learning_rate=0.1:1'], '--range needs --random=N'),
    ([], 'nothing to sweep'),
    (['--grid=seed=0', '--parallel=0'], '--parallel (0) must be positive'),
    (['--grid=seed=0', '--parallel=x'], "flag --parallel=x: invalid literal for int() with base 10: 'x'"),
    (['--grid=seed=0', '--batch_size=-3'], '--batch_size (-3) must be positive'),
])
def test_bad_arguments_are_one_line_before_anything_runs(tmp_path, argv, message):
    sweep_dir = tmp_path / 'sweep'
    result = run_module('digits.sweep', f'--sweep_dir={sweep_dir}', *argv)
    assert result.returncode == 2
    assert result.stderr.startswith('digits.sweep: error: ') and message in result.stderr, result.stderr
    assert result.stderr.count('\n') == 1 and not sweep_dir.exists()


def test_a_missing_sweep_dir_is_one_line():
    result = run_module('digits.sweep', '--grid=seed=0')
    assert result.returncode == 2
    assert result.stderr == ('digits.sweep: error: --sweep_dir is required: the folder of the sweep, e.g. '
                             '--sweep_dir=logs/sweep-lr\n')


def test_random_search_draws_the_same_points_for_the_same_seed_within_the_bounds():
    grid, ranges = {'batch_size': ['64', '128']}, {'learning_rate': (1e-4, 1e-2, True), 'l2': (0.0, 0.1, False)}
    points = sweep.make_points(grid, ranges, 20, seed=3)
    assert points == sweep.make_points(grid, ranges, 20, seed=3) != sweep.make_points(grid, ranges, 20, seed=4)
    assert all(1e-4 <= float(p['learning_rate']) <= 1e-2 and 0 <= float(p['l2']) <= 0.1 for p in points)
    assert {p['batch_size'] for p in points} == {'64', '128'}


def test_a_flagfile_grid_names_points_by_file_and_puts_the_flagfile_first():
    point = {'flagfile': 'configs/fast.cfg', 'seed': '1'}
    assert sweep.point_name(point) == 'flagfile=fast,seed=1'
    args = sweep.train_args_of(point, ['--epochs=2'], 'sw')
    assert args[:3] == ['--flagfile=configs/fast.cfg', '--epochs=2', '--seed=1']
    assert '--run_name=flagfile=fast,seed=1' in args


def test_the_summary_over_seeds_gives_mean_and_worst_of_each_combination():
    rows = [dict(flagfile='a.cfg', seed=str(s), validation_accuracy=v, test_accuracy=t, fit_epochs=f)
            for s, v, t, f in [(0, 0.99, 0.98, 10), (1, 0.97, 0.96, 12), (0, 0.995, 0.99, 30)]]
    rows[2]['flagfile'] = 'b.cfg'
    table = sweep.summarize_seeds(rows, ['flagfile', 'seed'], 'validation_accuracy')
    assert table[0] == ['flagfile', 'seeds', 'validation mean %', 'validation worst %', 'test mean %',
                        'test worst %', 'fit-epochs mean']
    assert table[1:] == [['b', '1', '99.50', '99.50', '99.00', '99.00', '30.0'],
                         ['a', '2', '98.00', '97.00', '97.00', '96.00', '11.0']]
    assert sweep.summarize_seeds(rows, ['flagfile', 'seed'], 'test_accuracy')[0] == [
        'flagfile', 'seeds', 'test mean %', 'test worst %', 'fit-epochs mean']


def test_a_failed_run_is_reported_with_its_error_and_exit_status_1(tiny_data_dir, tmp_path, capsys):
    sweep_dir = tmp_path / 'sweep'
    cfg = sweep_config(sweep_dir, tiny_args(tiny_data_dir), grid=('batch_size=100000',), fit_epoch_seconds=UNIT)
    assert sweep.run_sweep(cfg, sweep.plan_sweep(cfg), log=print) == 1
    out = capsys.readouterr().out
    assert 'failed   batch_size=100000 (exit 2): digits.train: error: --batch_size (100000) is larger than the ' \
           'training set' in out
    assert not (sweep_dir / 'results.csv').exists()  # no finished point: no table

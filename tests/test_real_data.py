"""On real MNIST (DIGITS_TEST_DATA, set by .ci/run): a short training run and exact evaluation."""
import json

from conftest import run_module, smoke_config
from digits import experiment


def test_short_training_on_real_mnist(real_data_dir, tmp_path):
    cfg = smoke_config(str(tmp_path), real_data_dir, model='simple', batch_size=128, train_steps=150,
                       learning_rate=0.003, warmup_steps=20, augment=True, eval_every_steps=150,
                       steps_per_loop=50, log_every_steps=50, eval_batch_size=384)
    results = experiment.train_and_evaluate(cfg, log=lambda line: None)
    assert results['test_examples'] == 10000  # 384 does not divide 10,000: padding is masked
    assert results['test_accuracy'] > 0.95, results
    proc = run_module('digits.evaluate', f'--model={cfg.export_dir}', f'--data_dir={real_data_dir}',
                      '--batch_size=384', f'--output_json={tmp_path}/eval.json')
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'eval.json') as f:
        metrics = json.load(f)
    assert metrics['num_examples'] == 10000 and metrics['accuracy'] == results['test_accuracy']

"""The layout is enforced, not described: lint-imports holds the layers of pyproject.toml (and keeps the
tests' and scripts' support out of the product), and ruff holds the rules there."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT

BIN = os.path.dirname(sys.executable)  # the venv's lint-imports and ruff (requirements-test.txt)


def lint_imports(root: str) -> subprocess.CompletedProcess:
    """lint-imports on the tree at root, as typed there (its digits first on the path, not the installed one)."""
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([os.path.join(BIN, 'lint-imports'), '--no-cache'], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_layers_and_the_support_boundary_hold():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0 and 'Contracts: 2 kept, 0 broken.' in proc.stdout, proc.stdout[-3000:]


def test_an_import_up_the_layers_is_caught(tmp_path):
    """A copy of the tree where the data layer imports training, and one where training imports the support:
    lint-imports names each broken contract."""
    for module, line, contract in (
            ('digits/data/arrays.py', 'from digits.training import experiment', 'is layered'),
            ('digits/training/loop.py', 'from support import traffic', 'never imports the')):
        tree = tmp_path / module.replace('/', '_')
        shutil.copytree(os.path.join(ROOT, 'digits'), tree / 'digits', ignore=shutil.ignore_patterns('bundled'))
        shutil.copytree(os.path.join(ROOT, 'scripts', 'support'), tree / 'scripts' / 'support')
        shutil.copy(os.path.join(ROOT, 'pyproject.toml'), tree)
        with open(tree / module, 'a') as f:
            f.write(f'\n{line}  # noqa\n')
        proc = lint_imports(str(tree))
        assert proc.returncode == 1 and f'{contract}' in proc.stdout.split('Broken contracts')[-1], proc.stdout[-3000:]


def test_ruff_passes():
    proc = subprocess.run([os.path.join(BIN, 'ruff'), 'check', '--no-cache', '.'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]

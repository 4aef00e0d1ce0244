"""The layer contracts in pyproject.toml hold on this tree, and an upward import makes `lint-imports` fail."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"
SKIP = shutil.ignore_patterns(".venv", ".git", "tests", "runs", "benchmarks", "assets", "__pycache__", "*.egg-info",
                              ".import_linter_cache", "build")


def lint(package_parent: Path, config: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the `extes` package found in `package_parent` (the repository root is the package)."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], env=env, capture_output=True,
                          text=True, cwd=package_parent, timeout=120)


def test_the_layers_hold(tmp_path):
    (tmp_path / "extes").symlink_to(ROOT)
    done = lint(tmp_path, ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_fails_the_contract(tmp_path):
    copy = tmp_path / "extes"
    shutil.copytree(ROOT, copy, ignore=SKIP)
    dialogue = copy / "signatures" / "dialogue.py"
    dialogue.write_text(dialogue.read_text() + "\nfrom extes.programs import supporter  # noqa: E402,F401\n")
    done = lint(tmp_path, copy / "pyproject.toml")
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and "extes.signatures.dialogue -> extes.programs.supporter" in done.stdout

import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: each keeps to one thread (torch, OpenMP, MKL, the processes it
    # starts), or four busy threads on two cores make every model test several times slower.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "EXTES_THREADS", "EXTES_LLAMACPP_THREADS"):
        os.environ[var] = "1"
# DSPy's disk cache would answer repeated test prompts from earlier sessions; each session gets a fresh one.
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="extes-dspy-cache-")

ROOT = Path(__file__).resolve().parents[1]
ESCONV = ROOT.parent / "shared" / "data" / "esconv"
FAILED_ESCONV = ESCONV / "FailedESConv.json"


@pytest.fixture
def esconv_file() -> Path:
    if not FAILED_ESCONV.exists():
        pytest.skip(f"ESConv sample not found at {FAILED_ESCONV} (shared/ lies beside the checkout)")
    return FAILED_ESCONV


@pytest.fixture
def cli():
    """Run the real CLI in-process; returns (exit_code, stdout, stderr)."""
    from extes.cli import main

    def run(*args: str):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run

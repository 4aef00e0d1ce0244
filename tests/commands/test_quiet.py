"""Quiet by default: no loading bars, deprecation lines or DSPy logs on stderr unless -v (the real CLI, subprocess)."""

import os
import subprocess
import sys

import pytest

from extes.corpus.seeds import seeds_dir

NOISE = ("Loading weights", "deprecated", "Deprecat", "INFO", "it/s]", "FutureWarning")


def extes(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # warnings on, as a user's shell may have them
    r = subprocess.run([sys.executable, "-m", "extes.cli", *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=300, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


def noise(err):
    return [line for line in err.splitlines() if any(n in line for n in NOISE)]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from extes.corpus.formats import ReadOptions
    from extes.corpus.pipeline import split_corpus

    out = tmp_path_factory.mktemp("split") / "s"
    split_corpus(seeds_dir(), out, fmt_in=None, seed=0, ratios="8:1:1", opts=ReadOptions())
    return out


@pytest.mark.model
def test_reply_on_the_embedded_model_is_quiet_unless_verbose():
    args = ["reply", "I failed my exam", "-m", "local/smollm2-135m-instruct", "--max-tokens", "12"]
    code, out, err = extes(*args)
    assert code == 0 and out.strip() and noise(err) == [], err
    code, out, err = extes("-v", *args)  # the same run, verbose: the noise is there, so the check above can fail
    assert code == 0 and noise(err), err


def test_compile_is_quiet_and_q_silences_its_progress(split, tmp_path):
    args = ["compile", "classifier", "--optimizer", "bootstrap", "--trainset", split / "train.jsonl", "--valset",
            split / "valid.jsonl", "-m", "scripted", "--limit", "4", "--val-limit", "2", "--out", tmp_path / "c.json"]
    code, out, err = extes(*args)
    assert code == 0 and "valid" in out and not any("Deprecat" in x or "INFO" in x for x in err.splitlines()), err
    code, out, err = extes(*args, "-q")
    assert code == 0 and err == "", err  # not even DSPy's own bar and summary line

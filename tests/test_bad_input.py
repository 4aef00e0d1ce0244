"""Every bad input a one-line error, exit 2: one row per case found crashing (issue 12).

Each row gives the command's arguments (with `{tmp}` for the test's folder and `{free}` for a loopback port nothing
listens on), the fixture files it needs, and a fragment of the message. Every row must print exactly one line on
stderr, no traceback, exit 2, and leave no output behind.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from extes.cli import main
from helpers import extes_record, good_content

DEEP = "[" * 50_000 + "]" * 50_000
SEED = json.dumps([extes_record(good_content())])

FIXTURES = {
    "deep.json": DEEP,
    "deep.jsonl": '{"id": ' + DEEP + "}\n",
    "ann.json": json.dumps([{"problem_type": "x", "situation": "y",
                             "dialog": [{"speaker": "seeker", "annotation": "Question", "content": "hi"}]}]),
    "strat.json": json.dumps([extes_record([{"User": "hi there"}, {"AI Strategy": 7, "AI": "hello"}])]),
    "empty.jsonl": "",
    "latin1.jsonl": b'{"text": "caf\xe9", "crisis": false}\n',
    "ref.txt": "a reference\n",
    "good.json": SEED,
    "afile": "not a folder\n",
}

ROWS = [
    # (id, args, expected fragment, output path that must not exist)
    ("convert-deep", ["data", "convert", "{tmp}/deep.json", "{tmp}/out.jsonl"], "nested too deeply", "out.jsonl"),
    ("convert-deep-jsonl", ["data", "convert", "{tmp}/deep.jsonl", "{tmp}/out.json"], "recursion", "out.json"),
    ("stats-deep", ["stats", "{tmp}/deep.json"], "nested too deeply", None),
    ("split-deep", ["data", "split", "{tmp}/deep.json", "{tmp}/splits"], "nested too deeply", "splits"),
    ("toxicity-deep", ["toxicity", "{tmp}/deep.json"], "nested too deeply", None),
    ("rate-export-deep", ["rate", "export", "{tmp}/deep.json", "--n", "1", "--out", "{tmp}/sheet.csv"],
     "nested too deeply", "sheet.csv"),
    ("esconv-annotation-string", ["data", "convert", "{tmp}/ann.json", "{tmp}/out.jsonl", "--from", "esconv"],
     "'annotation' must be an object", "out.jsonl"),
    ("strategy-not-string", ["data", "convert", "{tmp}/strat.json", "{tmp}/out.jsonl"],
     "the strategy must be a string", "out.jsonl"),
    ("strategy-not-string-skip", ["data", "convert", "{tmp}/strat.json", "{tmp}/out.jsonl", "--skip-invalid"],
     "no dialogue could be read (1 records skipped)", "out.jsonl"),
    ("reply-empty-history", ["reply", "hi", "-m", "scripted", "--history", "{tmp}/empty.jsonl"],
     "the file has no dialogue", None),
    ("safety-check-empty", ["safety", "check", ""], "TEXT is empty", None),
    ("safety-eval-latin1", ["safety", "eval", "{tmp}/latin1.jsonl"], "not UTF-8", None),
    ("safety-eval-folder", ["safety", "eval", "{tmp}"], "is a folder", None),
    ("review-import-latin1", ["review", "{tmp}/run", "--import", "{tmp}/latin1.jsonl"], "not UTF-8", None),
    ("metrics-folder", ["metrics", "{tmp}", "{tmp}/ref.txt"], "is a folder", None),
    ("out-parent-is-a-file", ["data", "convert", "{tmp}/good.json", "{tmp}/afile/out.jsonl"],
     "exists and is not a folder", None),
    ("out-parent-unwritable", ["data", "convert", "{tmp}/good.json", "/proc/extes-test/out.jsonl"], "/proc", None),
    ("compile-out-parent-is-a-file", ["compile", "classifier", "--optimizer", "labeled", "--trainset", "assets/seeds",
                                      "--valset", "assets/seeds", "-m", "scripted", "--out", "{tmp}/afile/p.json"],
     "exists and is not a folder", None),
    ("negative-demos", ["synthesize", "-m", "scripted", "--demos", "-1", "--out", "{tmp}/r"], "'--demos'", "r"),
    ("negative-retries", ["synthesize", "-m", "scripted", "--retries", "-1", "--out", "{tmp}/r"], "'--retries'", "r"),
    ("negative-workers", ["synthesize", "-m", "scripted", "--workers", "-2", "--out", "{tmp}/r"], "'--workers'", "r"),
    ("zero-round-size", ["synthesize", "-m", "scripted", "--round-size", "0", "--out", "{tmp}/r"], "'--round-size'",
     "r"),
    ("negative-max-cost", ["synthesize", "-m", "scripted", "--max-cost", "-1", "--out", "{tmp}/r"], "'--max-cost'",
     "r"),
    ("dup-threshold-5", ["synthesize", "-m", "scripted", "--dup-threshold", "5", "--out", "{tmp}/r"],
     "'--dup-threshold'", "r"),
    ("nan-backoff", ["synthesize", "-m", "scripted", "--backoff", "nan", "--out", "{tmp}/r"], "not a number", "r"),
    ("negative-k", ["compile", "classifier", "--optimizer", "labeled", "--trainset", "assets/seeds", "--valset",
                    "assets/seeds", "-m", "scripted", "--k", "-1", "--out", "{tmp}/p.json"], "'--k'", "p.json"),
    ("negative-limit", ["compile", "classifier", "--optimizer", "labeled", "--trainset", "assets/seeds", "--valset",
                        "assets/seeds", "-m", "scripted", "--limit", "-3", "--out", "{tmp}/p.json"], "'--limit'",
     "p.json"),
    ("negative-val-limit", ["distill", "classifier", "--teacher", "scripted", "--val-limit", "-1", "--out",
                            "{tmp}/d"], "'--val-limit'", "d"),
    ("negative-n", ["rate", "export", "assets/seeds", "--n", "-5", "--out", "{tmp}/sheet.csv"], "'--n'", "sheet.csv"),
    ("negative-max-tokens", ["reply", "hi", "-m", "scripted", "--max-tokens", "-5"], "'--max-tokens'", None),
    ("evaluate-negative-limit", ["evaluate", "-m", "scripted", "--test", "assets/seeds", "--limit", "-1", "--out",
                                 "{tmp}/ev"], "'--limit'", "ev"),
    ("tune-negative-lr", ["tune", "lora", "--data", "assets/seeds", "--lr", "-1", "--out", "{tmp}/t"], "'--lr'", "t"),
    ("tune-seq-len-0", ["tune", "lora", "--data", "assets/seeds", "--seq-len", "0", "--out", "{tmp}/t"],
     "'--seq-len'", "t"),
    ("tune-batch-size-0", ["tune", "lora", "--data", "assets/seeds", "--batch-size", "0", "--out", "{tmp}/t"],
     "'--batch-size'", "t"),
    ("tune-empty-lora-targets", ["tune", "lora", "--data", "assets/seeds", "--lora-targets", ",", "--out", "{tmp}/t"],
     "--lora-targets: name at least one module", "t"),
    ("stats-top-0", ["stats", "assets/seeds", "--top", "0"], "'--top'", None),
    ("server-down-synthesize", ["synthesize", "-m", "openai/gpt-4o-mini", "--api-base", "http://127.0.0.1:{free}/v1",
                                "--target", "1", "--out", "{tmp}/r"], "127.0.0.1:{free}", "r"),
    ("server-down-reply", ["reply", "hi", "-m", "openai/gpt-4o-mini", "--api-base", "http://127.0.0.1:{free}/v1"],
     "start the server", None),
    ("server-down-judge", ["rate", "judge", "{tmp}/ref.txt", "-m", "openai/x", "--api-base",
                           "http://127.0.0.1:{free}/v1", "--out", "{tmp}/j.csv"], "cannot connect", "j.csv"),
    ("server-down-password-redacted", ["reply", "hi", "-m", "openai/x", "--api-base",
                                       "http://me:hunter2@127.0.0.1:{free}/v1"], "http://***@127.0.0.1", None),
    ("unknown-option", ["stats", "assets/seeds", "--bogus"], "No such option", None),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    for name, content in FIXTURES.items():
        (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    result = CliRunner().invoke(main, ["synthesize", "-m", "scripted", "--target", "1", "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("case", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_exit_2(case, tmp, monkeypatch):
    name, args, fragment, leftover = case
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    port = str(free_port())
    args = [a.replace("{tmp}", str(tmp)).replace("{free}", port) for a in args]
    result = CliRunner().invoke(main, args)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1, result.stderr
    assert fragment.replace("{free}", port) in lines[0], lines[0]
    assert "Traceback" not in result.output and result.stdout == ""
    if leftover:
        assert not (tmp / leftover).exists(), f"{leftover} was left behind"
    if "password" in name:
        assert "hunter2" not in result.output


def test_unexpected_errors_are_one_line_and_verbose_shows_the_traceback(tmp, monkeypatch):
    """An exception nobody planned for: one line and exit 1; `-v` (or EXTES_DEBUG=1) lets the traceback through."""
    def boom(*a, **k):
        raise RuntimeError("something\nunplanned")

    monkeypatch.setattr("extes.commands.stats_cmd.read_corpus", boom)
    result = CliRunner().invoke(main, ["stats", "assets/seeds"])
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        "Error: unexpected RuntimeError: something unplanned (run with -v for the traceback)"]
    result = CliRunner().invoke(main, ["-v", "stats", "assets/seeds"])
    assert isinstance(result.exception, RuntimeError)
    monkeypatch.setenv("EXTES_DEBUG", "1")
    assert isinstance(CliRunner().invoke(main, ["stats", "assets/seeds"]).exception, RuntimeError)


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("extes.commands.stats_cmd.read_corpus", interrupt)
    result = CliRunner().invoke(main, ["stats", "assets/seeds"])
    assert result.exit_code == 130 and len(result.stderr.splitlines()) == 1 and "Interrupted" in result.stderr


def test_server_dying_mid_run_stops_synthesis_resumably(tmp, tmp_path, monkeypatch):
    """A server that accepts connections and hangs up: one line naming the api base, exit 2, and no task recorded
    as done, so the same command resumes once the server is back."""
    import threading

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def hang_up():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                continue

    threading.Thread(target=hang_up, daemon=True).start()
    base = f"http://127.0.0.1:{srv.getsockname()[1]}/v1"
    run = tmp_path / "run"
    try:
        result = CliRunner().invoke(main, ["synthesize", "-m", "openai/gpt-4o-mini", "--api-base", base, "--target",
                                           "2", "--retries", "0", "--backoff", "0", "--out", str(run)])
    finally:
        stop.set()
        srv.close()
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert len(result.stderr.splitlines()) == 1 and base in result.stderr and "rerun the same command" in result.stderr
    assert (run / "manifest.json").exists()
    done = [f for f in ("accepted", "rejected", "queued", "failed") if (run / f"{f}.jsonl").exists()
            and (run / f"{f}.jsonl").read_text().strip()]
    assert done == [], done


@pytest.mark.model
def test_lora_targets_naming_no_module(tmp, tmp_path):
    data = str(tmp / "good.json")
    result = CliRunner().invoke(main, ["tune", "lora", "--data", data, "--valid", data, "--lora-targets", "q_proj,nope",
                                       "--max-steps", "1", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2, (result.stderr, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]  # loading bars aside
    assert len(errors) == 1 and "nope name no module" in errors[0] and "q_proj" in errors[0]
    assert result.stderr.rstrip().endswith(errors[0]) and not (tmp_path / "t").exists()


def test_compile_makes_the_out_folder(tmp_path):
    out = tmp_path / "newdir" / "p.json"
    result = CliRunner().invoke(main, ["compile", "classifier", "--optimizer", "labeled", "--trainset", "assets/seeds",
                                       "--valset", "assets/seeds", "-m", "scripted", "--limit", "4", "--val-limit",
                                       "2", "--out", str(out)])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert out.exists() and out.with_suffix(".manifest.json").exists()

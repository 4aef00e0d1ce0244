"""`extes synthesize` end to end with the scripted LM: both modes, resume after SIGKILL, rounds, dry run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXTES = str(Path(sys.executable).parent / "extes")


def lines(path: Path) -> list[dict]:
    """The complete records of a JSONL file; a line still being written (no newline yet) is not one."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return [json.loads(x) for x in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()]


def all_ids(run: Path) -> list[str]:
    ids = []
    for name in ("accepted", "queued"):
        ids += [r["meta"]["task"] for r in lines(run / f"{name}.jsonl")]
    for name in ("rejected", "failed"):
        ids += [r["task"] for r in lines(run / f"{name}.jsonl")]
    return ids


@pytest.mark.parametrize("mode", ["whole", "turns"])
def test_fifty_accepted_with_four_workers(cli, tmp_path, mode):
    run = tmp_path / "run"
    code, out, err = cli("synthesize", "-m", "scripted", "--mode", mode, "--target", "50", "--workers", "4",
                         "--out", run, "--json")
    assert code == 0, err
    s = json.loads(out)
    for key in ("accepted", "rejected", "queued", "failed", "prompt_tokens", "completion_tokens", "cost_usd"):
        assert key in s
    assert s["accepted"] == 50 and len(lines(run / "accepted.jsonl")) == 50
    # off a terminal: a progress line after the first finished task (then one a minute), none per dialogue
    progress = [x for x in err.splitlines() if x.startswith("accepted ")]
    # the four workers' first tasks may finish together before the line is written: at most four are counted
    assert len(progress) == 1 and "min" in progress[0]
    assert int(progress[0].split()[1].split("/")[0]) <= 4, progress[0]
    ids = all_ids(run)
    assert len(ids) == len(set(ids))
    d = lines(run / "accepted.jsonl")[0]
    meta = d["meta"]
    assert meta["source"] == "generated" and meta["model"] == "scripted" and meta["task"].startswith("gen-")
    assert meta["validation"]["status"] == "accepted" and meta["program_hash"] and meta["usage"]["prompt_tokens"] > 0
    assert (mode == "turns") or meta["parent_ids"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["target"] == 50 and manifest["versions"]["dspy"]


def test_sigkill_mid_run_then_resume(tmp_path):
    run = tmp_path / "run"
    cmd = [EXTES, "synthesize", "-m", "scripted@0.02", "--target", "50", "--workers", "4", "--out", str(run), "-q"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(lines(run / "accepted.jsonl")) < 12 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = len(lines(run / "accepted.jsonl"))
    assert 12 <= first < 50
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    assert len(lines(run / "accepted.jsonl")) == 50
    ids = all_ids(run)
    assert len(ids) == len(set(ids))
    texts = [json.dumps(d["turns"]) for d in lines(run / "accepted.jsonl")]
    assert len(texts) == len(set(texts))


def test_resume_with_other_settings_is_refused(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("synthesize", "-m", "scripted", "--target", "3", "--out", run)[0] == 0
    code, _, err = cli("synthesize", "-m", "scripted", "--mode", "turns", "--target", "3", "--out", run)
    assert code == 2 and "mode" in err and "another --out" in err


def test_resume_with_another_target_keeps_the_derived_round_size(cli, tmp_path):
    """The default round size follows --target (max(10, target/3)); a rerun with another target continues the run
    with the round size it started with, and an explicit other --round-size is still refused."""
    run = tmp_path / "run"
    assert cli("synthesize", "-m", "scripted", "--target", "3", "--out", run)[0] == 0
    code, out, err = cli("synthesize", "-m", "scripted", "--target", "40", "--out", run, "--json")
    assert code == 0, err
    assert json.loads(out)["accepted"] == 40
    assert json.loads((run / "manifest.json").read_text())["config"]["round_size"] == 10  # not 40 // 3
    assert {d["meta"]["round"] for d in lines(run / "accepted.jsonl")} >= {0, 1, 2}
    code, _, err = cli("synthesize", "-m", "scripted", "--target", "40", "--round-size", "5", "--out", run)
    assert code == 2 and "round_size" in err


def test_round_two_uses_round_one_dialogues_as_demos(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli("synthesize", "-m", "scripted", "--target", "12", "--round-size", "4",
                       "--scenes", "Academic Stress", "--out", run)
    assert code == 0, err
    accepted = lines(run / "accepted.jsonl")
    by_id = {d["id"]: d for d in accepted}
    round0 = [d for d in accepted if d["meta"]["round"] == 0]
    assert all(not p.startswith("gen-") for d in round0 for p in d["meta"]["parent_ids"])
    later = [d for d in accepted if d["meta"]["round"] == 2]
    assert later
    for d in later:
        (parent,) = d["meta"]["parent_ids"]
        assert parent.startswith("gen-") and by_id[parent]["meta"]["round"] < 2


def test_dry_run_for_the_papers_corpus(cli, tmp_path):
    code, out, _ = cli("synthesize", "-m", "openai/gpt-4o-mini", "--target", "11000", "--dry-run", "--json")
    est = json.loads(out)
    assert code == 0 and est["estimated_cost_usd"] <= 22 and est["estimated_usd_per_accepted"] <= 0.002
    assert est["estimated_prompt_tokens"] > 11000 * 500  # the prompt carries the strategy guide and a demo
    assert not list(tmp_path.iterdir())


def test_bad_options(cli, tmp_path):
    code, _, err = cli("synthesize", "-m", "scripted", "--target", "0", "--out", tmp_path / "r")
    assert code == 2 and "--target" in err
    code, _, err = cli("synthesize", "-m", "scripted", "--scenes", "Moon Landing", "--out", tmp_path / "r")
    assert code == 2 and "Moon Landing" in err
    code, _, err = cli("synthesize", "-m", "scripted")
    assert code == 2 and "--out" in err


def test_program_file_loads_a_saved_synthesizer(cli, tmp_path):
    import dspy

    from extes.corpus.seeds import read_seed_folder
    from extes.programs.synthesizer import DialogueSynthesizer, demo_example

    program = DialogueSynthesizer("whole")
    program.generate.demos = [dspy.Example(**demo_example(read_seed_folder()[0]))]
    program.save(tmp_path / "synth.json")
    run = tmp_path / "run"
    code, out, err = cli("synthesize", "-m", "scripted", "--target", "2", "--program", tmp_path / "synth.json",
                         "--out", run, "--json")
    assert code == 0, err
    assert json.loads(out)["accepted"] == 2
    manifest = json.loads((run / "manifest.json").read_text())
    plain = DialogueSynthesizer("whole")
    from extes.programs.synthesis_run import program_hash

    assert manifest["program_hash"] != program_hash(plain)
    code, _, err = cli("synthesize", "-m", "scripted", "--target", "2", "--program", tmp_path / "nope.json",
                       "--out", tmp_path / "r2")
    assert code == 2 and "--program" in err

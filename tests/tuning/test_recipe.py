"""`extes recipe distill`: every stage runs as a real extes process, the run stops and continues, and the report
gathers each stage's own figures."""

import json
import sys
from pathlib import Path

import pytest

from extes.tuning.recipe import STAGE_NAMES, RecipeConfig, stages

DEV_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "esconv" / "devWithStrategy_short.tsv"
DEV = str(DEV_FILE)
SMALL = ["--dialogues", "4", "--compile-limit", "4", "--val-limit", "2", "--distill-limit", "3", "--max-steps", "2",
         "--bench-limit", "2", "--cards", "2", "--turns", "1"]


def test_stage_plan_feeds_each_stage_the_previous_outputs(tmp_path):
    plan = {st.name: st for st in stages(RecipeConfig("T", "S", "test.tsv", dialogues=7), tmp_path)}
    assert list(plan) + ["report"] == STAGE_NAMES
    assert plan["synthesize"].argv[:3] == ["synthesize", "-m", "T"] and "7" in plan["synthesize"].argv
    assert str(tmp_path / "synth") in plan["split"].argv
    assert str(tmp_path / "supporter.json") in plan["distill"].argv
    arena = " ".join(plan["arena"].argv)
    assert f"distilled=S+adapter:{tmp_path / 'distill/adapter'}" in arena and "--judge T" in arena
    assert "--json-grammar" not in plan["synthesize"].argv
    whole = stages(RecipeConfig("T", "S", "test.tsv", mode="whole", json_grammar=True), tmp_path)[0].argv
    assert whole[whole.index("--mode") + 1] == "whole" and "--json-grammar" in whole
    assert "--demos" not in whole  # the default: the argv of runs begun before the option
    two = stages(RecipeConfig("T", "S", "test.tsv", demos=2), tmp_path)[0].argv
    assert two[two.index("--demos") + 1] == "2"
    assert "--redraws" not in whole
    hot = stages(RecipeConfig("T", "S", "test.tsv", mode="whole", redraws=2), tmp_path)[0].argv
    assert hot[hot.index("--redraws") + 1] == "2"


def test_a_run_begun_before_an_option_existed_continues(tmp_path):
    """recipe.json of a run begun before --json-grammar existed lacks the key: the run is the default's, so the
    same command continues it, and asking for the grammar on it is refused, naming the option."""
    import dataclasses

    from extes.errors import InputError
    from extes.tuning.recipe import open_run

    cfg = RecipeConfig("T", "S", "test.tsv")
    out = tmp_path / "r"
    state = open_run(cfg, out)
    del state["config"]["json_grammar"]
    (out / "recipe.json").write_text(json.dumps(state))
    assert open_run(cfg, out)["config"] == state["config"]
    with pytest.raises(InputError, match="json_grammar False -> True"):
        open_run(dataclasses.replace(cfg, mode="whole", json_grammar=True), out)


def test_json_grammar_needs_whole_mode(cli, tmp_path):
    # refused before the test file is read: any existing file will do
    code, _, err = cli("recipe", "distill", "--teacher", "scripted", "--test", __file__, "--json-grammar",
                       "--out", tmp_path / "r")
    assert code == 2 and "--mode whole" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.model
def test_recipe_runs_stops_continues_and_reports(cli, tmp_path, monkeypatch):
    """The whole recipe with a scripted teacher and a tiny random LLaMA as the student (real LoRA steps, real
    benchmark and arena processes; the embedded model's run is the measured one in benchmarks/README.md)."""
    from extes.programs.lm.weights import converted_folder, embedded_gguf
    from helpers import tiny_llama

    if not DEV_FILE.exists():
        pytest.skip(f"ESConv dev split not found at {DEV_FILE} (shared/ lies beside the checkout)")
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("EXTES_LLAMACPP_THREADS", "3")
    student = f"local/{tiny_llama(tmp_path / 'tiny', converted_folder(embedded_gguf('smollm2-135m-instruct')))}"
    small = [*SMALL, "--student", student]
    out = tmp_path / "recipe"
    code, stdout, err = cli("recipe", "distill", "--teacher", "scripted", "--test", DEV, *small,
                            "--stop-after", "split", "--out", out)
    assert code == 0, err
    state = json.loads((out / "recipe.json").read_text())
    assert set(state["stages"]) == {"synthesize", "split"}
    assert (out / "splits" / "train.jsonl").exists() and not (out / "classifier.json").exists()
    # a run stopped (or cut short) leaves a report of what it did and what is left
    partial = json.loads((out / "report.json").read_text())
    assert partial["pending"] == STAGE_NAMES[2:-1] and partial["synthesis"]["accepted"] >= 2
    md = (out / "report.md").read_text()
    assert "**Partial report**" in md and "compile-classifier" in md and "- classifier: not run yet" in md
    assert md.count("Not run yet.") == 3  # distillation, paired tests, arena

    code, stdout, err = cli("recipe", "distill", "--teacher", "scripted", "--test", DEV, *small, "--out", out, "--json")
    assert code == 0, err
    assert "synthesize: done before" in err and "split: done before" in err
    report = json.loads(stdout)
    assert report["synthesis"]["accepted"] >= 2
    assert set(report["benchmark"]) == {"student", "distilled", "teacher"}
    assert all(b["n"] == 2 for b in report["benchmark"].values())
    assert [(p["a"], p["b"]) for p in report["paired"]] == [("student", "distilled"), ("student", "teacher")]
    assert set(report["arena"]["supporters"]) == {"student", "distilled", "teacher"}
    assert (out / "distill" / "adapter").is_dir()
    md = (out / "report.md").read_text()
    assert report["pending"] == [] and "Partial report" not in md and "not run yet" not in md.lower()
    for heading in ("Time per stage", "The teacher's synthesis", "ESConv benchmark", "Paired tests", "Arena"):
        assert heading in md
    assert "bench-student/confusion.png" in md and (out / "bench-student" / "confusion.png").exists()
    # every stage attempt records the llama.cpp threads it decoded with (here: what the environment says)
    state = json.loads((out / "recipe.json").read_text())
    assert {tuple(v["llamacpp_threads"]) for v in state["stages"].values()} == {(3,)}
    assert "| synthesize | " in md and " | 3 |" in md

    # other options on the same folder: one line, exit 2, nothing touched
    before = (out / "recipe.json").read_text()
    code, _, err = cli("recipe", "distill", "--teacher", "scripted", "--test", DEV, *small, "--turns", "3",
                       "--out", out)
    assert code == 2 and "turns 1 -> 3" in err and len(err.strip().splitlines()) == 1
    assert (out / "recipe.json").read_text() == before


def test_failed_stage_names_the_stage_and_its_log(cli, tmp_path, monkeypatch):
    if not DEV_FILE.exists():
        pytest.skip(f"ESConv dev split not found at {DEV_FILE} (shared/ lies beside the checkout)")
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out = tmp_path / "r"
    # the teacher is an unreachable server: synthesis fails at once with its own one-line error
    code, _, err = cli("recipe", "distill", "--teacher", "openai/none", "--test", DEV, *SMALL, "--out", out)
    assert code == 2, err
    assert "recipe stage 'synthesize' failed" in err and str(out / "logs" / "synthesize.log") in err
    rec = json.loads((out / "recipe.json").read_text())["stages"]["synthesize"]
    assert rec["done"] is False and "started" in rec  # the failed attempt's time is counted when it is rerun


def test_a_killed_stage_keeps_the_time_it_spent(tmp_path):
    """A stage killed mid-run recorded when it started; the rerun adds the time up to the last write to its log or
    its output folder (a `-q` stage writes records, not log lines)."""
    import os
    import time

    from extes.tuning.recipe import _written_by, stages, unfinished_seconds

    synth = {st.name: st for st in stages(RecipeConfig("T", "S", "test.tsv"), tmp_path)}["synthesize"]
    log, folder = _written_by(synth, tmp_path)
    assert folder == tmp_path / "synth"
    log.parent.mkdir()
    log.write_text("")
    (folder / "store").mkdir(parents=True)
    (folder / "store" / "accepted.jsonl").write_text("{}\n")
    now = time.time()
    os.utime(log, (now - 90, now - 90))
    os.utime(folder / "store" / "accepted.jsonl", (now - 40, now - 40))
    rec = {"done": False, "seconds": 10.0, "started": now - 100}
    assert abs(unfinished_seconds(rec, [log, folder]) - 60) < 1
    assert unfinished_seconds({**rec, "done": True}, [log, folder]) == 0.0  # a finished stage's seconds are its own
    assert unfinished_seconds(None, [log]) == 0.0 and unfinished_seconds(rec, [tmp_path / "missing"]) == 0.0


def test_bad_student_is_one_line(cli, tmp_path):
    code, _, err = cli("recipe", "distill", "--teacher", "scripted", "--student", "openai/gpt-4o-mini", "--test",
                       __file__, "--out", tmp_path / "r")
    assert code == 2 and "--student" in err and not (tmp_path / "r").exists()


def test_python_dash_m_extes_is_the_cli():
    import subprocess

    out = subprocess.run([sys.executable, "-m", "extes", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "extes" in out.stdout


def test_report_counts_rejection_reasons_from_the_run_store(tmp_path):
    from extes.corpus.runstore import RunStore
    from extes.tuning.recipe_report import _rejections

    store = RunStore(tmp_path / "synth")
    store.append("rejected", {"task": "t1", "status": "rejected", "reasons": ["role_flip: turn 3", "too_short"]})
    store.append("rejected", {"task": "t2", "status": "rejected", "reasons": ["role_flip"]})
    store.append("failed", {"task": "t3", "status": "failed", "reasons": ["lm_error"]})
    assert _rejections(tmp_path / "synth") == {"role_flip": 2, "too_short": 1, "lm_error": 1}
    assert _rejections(tmp_path / "missing") == {}


def test_fewer_dialogues_while_synthesis_is_unfinished_continues(tmp_path):
    """A long run cut short: a lower --dialogues is taken while the synthesize stage has not finished (and recorded);
    a higher one, or a lower one once synthesis is done, is refused like any other option."""
    import dataclasses

    from extes.errors import InputError
    from extes.tuning.recipe import open_run, stages

    cfg = RecipeConfig("T", "S", "test.tsv", dialogues=150)
    out = tmp_path / "r"
    state = open_run(cfg, out)
    state["stages"]["synthesize"] = {"done": False, "seconds": 10.0, "started": 1.0}
    (out / "recipe.json").write_text(json.dumps(state))
    with pytest.raises(InputError, match="dialogues 150 -> 200"):
        open_run(dataclasses.replace(cfg, dialogues=200), out)
    fewer = dataclasses.replace(cfg, dialogues=26)
    got = open_run(fewer, out)
    assert got["config"]["dialogues"] == 26 and got["dialogues_lowered"] == [[150, 26]]
    assert got["stages"]["synthesize"]["seconds"] == 10.0  # the time already spent is kept
    assert json.loads((out / "recipe.json").read_text())["config"]["dialogues"] == 26
    argv = stages(fewer, out)[0].argv
    assert argv[argv.index("--target") + 1] == "26"
    assert open_run(fewer, out)["config"]["dialogues"] == 26  # the same command again
    done = json.loads((out / "recipe.json").read_text())
    done["stages"]["synthesize"]["done"] = True
    (out / "recipe.json").write_text(json.dumps(done))
    with pytest.raises(InputError, match="dialogues 26 -> 20"):
        open_run(dataclasses.replace(cfg, dialogues=20), out)


def test_recipe_report_while_synthesis_runs(cli, tmp_path):
    """`extes recipe report RUN` in the middle of the synthesize stage: the figures so far from the run's files (read
    only: a record being written is neither counted nor cut off), the stage's time so far, every later stage named."""
    import os
    import time

    from extes.tuning.recipe import open_run

    out = tmp_path / "r"
    state = open_run(RecipeConfig("T", "S", "test.tsv", dialogues=30), out)
    state["stages"]["synthesize"] = {"done": False, "seconds": 100.0, "started": time.time() - 3600}
    (out / "recipe.json").write_text(json.dumps(state))
    synth = out / "synth"
    synth.mkdir()
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.0}
    accepted = "".join(json.dumps({"meta": {"task": f"t{i}", "usage": usage}}) + "\n" for i in range(3))
    (synth / "accepted.jsonl").write_text(accepted + '{"meta": {"task": "t9"')  # the fourth is being written
    (synth / "rejected.jsonl").write_text(json.dumps({"task": "t5", "reasons": ["demo_copy: 0.9"], "usage": usage})
                                          + "\n")
    (out / "logs").mkdir()
    (out / "logs" / "synthesize.log").write_text("accepted 3/30\n")
    os.utime(synth / "accepted.jsonl", (time.time() - 1800, time.time() - 1800))  # last write half an hour ago
    before = (synth / "accepted.jsonl").read_bytes()

    code, stdout, err = cli("recipe", "report", out, "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert (synth / "accepted.jsonl").read_bytes() == before
    s = r["synthesis"]
    assert (s["accepted"], s["rejected"], s["tasks"], s["yield"], s["unfinished"]) == (3, 1, 4, 0.75, True)
    assert s["completion_tokens"] == 20 and s["rejections"] == {"demo_copy": 1}
    assert r["running"] == ["synthesize"] and r["pending"] == STAGE_NAMES[:-1]
    assert abs(r["hours"]["synthesize"] * 3600 - 3700) < 10  # 100 s before + up to the log's last write (now)
    md = (out / "report.md").read_text()
    assert "synthesize (unfinished)" in md and "so far (the synthesis has not finished)" in md
    assert json.loads((out / "recipe.json").read_text()) == state  # the run's own state is not touched

    code, _, err = cli("recipe", "report", tmp_path / "nowhere")
    assert code == 2 and "not a recipe run folder" in err and len(err.strip().splitlines()) == 1

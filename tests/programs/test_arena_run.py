"""`extes arena run` end to end with scripted seeker, judge and supporters; SIGKILL mid-run, then resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXTES = str(Path(sys.executable).parent / "extes")
# The second supporter: a strategy label, then a long reply, cycled (the supporter asks for both each turn).
REPLIES = ["Emotional Validation",
           "I hear you, and it makes complete sense that you feel this way after everything that has happened; "
           "you have been carrying a lot on your own, and I am glad you are telling me about it now."]


def lines(path: Path) -> list[dict]:
    """The complete records of a JSONL file; a line still being written (no newline yet) is not one."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return [json.loads(x) for x in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()]


@pytest.fixture
def cards(cli, tmp_path):
    out = tmp_path / "cards.jsonl"
    code, _, err = cli("arena", "cards", "--from", "seeds", "--n", "4", "--crisis", "1", "--out", out)
    assert code == 0, err
    return out


@pytest.fixture
def replies(tmp_path):
    p = tmp_path / "replies.json"
    p.write_text(json.dumps(REPLIES))
    return p


def test_scripted_arena_writes_transcripts_table_ratings_and_biases(cli, tmp_path, cards, replies):
    run = tmp_path / "run"
    code, out, err = cli("arena", "run", "--supporters", f"echo=scripted,long=scripted:{replies}", "--cards", cards,
                         "--turns", "3", "--out", run, "--rules-only-safety", "--bootstrap", "50", "--rubrics",
                         "--json")
    assert code == 0, err
    r = json.loads(out)
    ts = lines(run / "transcripts.jsonl")
    assert len(ts) == 8 and r["transcripts"] == 8 and r["cards"] == 4
    assert {t["meta"]["arena"]["supporter"] for t in ts} == {"echo", "long"}
    # Same seeker, same seed per card: the first seeker message of a card is the same for both supporters.
    first = {}
    for t in ts:
        first.setdefault(t["meta"]["arena"]["card"], set()).add(t["turns"][0]["text"])
    assert all(len(v) == 1 for v in first.values())
    # Crisis card: played, escalated by the crisis layer for both supporters, not judged pairwise.
    assert r["crisis"]["echo"]["crisis_games"] == 1 and r["crisis"]["echo"]["escalated"] == 1
    assert r["pair_judgments"] == 3
    rows = {(x["first"], x["second"], x["criterion"]): x for x in r["table9"]}
    assert set(rows) == {("echo", "long", c) for c in ("fluency", "identification", "comforting", "suggestion",
                                                        "overall")}
    # The scripted judge prefers the longer supporter in both orders: "long" wins, no position bias.
    assert rows[("echo", "long", "overall")]["loss"] == 1.0
    assert r["position_bias"]["disagreements"] == 0 and r["position_bias"]["judgments"] == 15
    bt = r["bradley_terry"]["overall"]
    assert bt["long"]["rating"] > bt["echo"]["rating"]
    assert bt["long"]["low"] <= bt["long"]["rating"] <= bt["long"]["high"]
    assert r["mean_reply_words"]["long"] > r["mean_reply_words"]["echo"]
    assert set(r["rubrics"]["long"]) == {"fluency", "diversity", "empathy", "information", "humanoid", "skill",
                                         "overall"}
    assert r["usage"]["prompt_tokens"] > 0
    assert "| Ove. | 0% | 0% | 100% |" in (run / "report.md").read_text()
    code, out2, _ = cli("arena", "report", run, "--bootstrap", "50", "--json")
    assert code == 0 and json.loads(out2)["table9"] == r["table9"]
    # the scripted judge answers in text: there are no likelihoods to decide again from
    code, _, err = cli("arena", "report", run, "--decide", "balanced")
    assert code == 2 and "read from text" in err and len(err.strip().splitlines()) == 1
    assert not (run / "report.balanced.md").exists()


def test_bad_inputs_are_one_line_errors(cli, tmp_path, cards):
    code, _, err = cli("arena", "run", "--supporters", "scripted", "--cards", cards, "--out", tmp_path / "r")
    assert code == 2 and "at least 2" in err
    code, _, err = cli("arena", "run", "--supporters", "scripted,scripted+lora:x", "--cards", cards, "--out",
                       tmp_path / "r")
    assert code == 2 and "[NAME=]MODEL[+adapter:DIR]" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(cards.read_text().splitlines()[0] + "\n" + '{"id": "x", "scene": "Academic Stress"}\n')
    code, _, err = cli("arena", "run", "--supporters", "a=scripted,b=scripted", "--cards", bad, "--out", tmp_path / "r")
    assert code == 2 and "line 2" in err and len(err.strip().splitlines()) == 1


def test_a_resume_with_the_judge_calibrated_otherwise_is_refused(cli, tmp_path, cards):
    run = tmp_path / "run"
    args = ["arena", "run", "--supporters", "a=scripted,b=scripted", "--cards", cards, "--turns", "2", "--out", run,
            "--rules-only-safety", "--bootstrap", "20", "--json"]
    code, _, err = cli(*args, "--no-calibrate")
    assert code == 0, err
    assert json.loads((run / "manifest.json").read_text())["config"]["calibrate"] is False
    before = (run / "judgments.jsonl").read_bytes()
    code, _, err = cli(*args)  # calibrated is the default
    assert code == 2 and "calibrate" in err and len(err.strip().splitlines()) == 1
    assert (run / "judgments.jsonl").read_bytes() == before


def test_sigkill_mid_run_then_resume(tmp_path, cards, replies):
    run = tmp_path / "run"
    cmd = [EXTES, "arena", "run", "--supporters", f"a=scripted,b=scripted:{replies},c=scripted", "--cards",
           str(cards), "--turns", "4", "--seeker", "scripted@0.03", "--out", str(run), "--rules-only-safety",
           "--bootstrap", "20", "-q", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(lines(run / "transcripts.jsonl")) < 4 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = lines(run / "transcripts.jsonl")
    assert 4 <= len(before) < 12, "the kill should land mid-run"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = lines(run / "transcripts.jsonl")
    tasks = [t["meta"]["task"] for t in after]
    assert len(tasks) == len(set(tasks)) == 12  # 4 cards x 3 supporters, none twice
    assert after[: len(before)] == before  # nothing written before the kill was lost or rewritten
    assert json.loads(done.stdout)["pair_judgments"] == 9  # 3 non-crisis cards x 3 pairs

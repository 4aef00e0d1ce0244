"""`extes benchmark esconv`: pinned protocol, report, resume, refusals; per-sample stats equal the metrics."""

import hashlib
import json
import random
from pathlib import Path

import pytest

from extes.tuning import metrics as M
from extes.tuning import resample as R

TSV = [
    "1.0 0 0 I lost my job last week.  EOS 1.0 1 1 [Questions] How are you coping?",
    "0.0 0 0 I lost my job last week.  EOS 0.0 1 1 [Questions] How are you coping? EOS 0.0 0 2 Badly, I cry.  EOS "
    "1.0 1 3 [Reflection of feelings] You feel overwhelmed and sad.",
    "1.0 0 0 My exams are soon and I panic.  EOS 1.0 1 1 [Providing Suggestions] Try a study plan.",
    "0.0 0 0 My exams are soon and I panic.  EOS 0.0 1 1 [Providing Suggestions] Try a study plan. EOS "
    "0.0 0 2 I will try.  EOS 1.0 1 3 [Affirmation and Reassurance] You can do this.",
]


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "mini.tsv"
    path.write_text("\n".join(TSV) + "\n")
    return path


def test_scripted_benchmark_report(cli, tsv, tmp_path):
    out = tmp_path / "bench"
    code, stdout, err = cli("benchmark", "esconv", "--test", tsv, "-m", "scripted", "--reps", "50", "--out", out,
                            "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["test_sha256"] == hashlib.sha256(tsv.read_bytes()).hexdigest()
    assert res["sample_ids"] == ["mini-0000#1", "mini-0000#3", "mini-0001#1", "mini-0001#3"]
    assert res["n"] == 4 and res["dialogues"] == 2 and res["bootstrap"]["unit"] == "dialogue"
    for k in ("meteor", "bleu2", "bleu4", "rouge_l", "extrema", "dist1", "dist2", "dist1_response"):
        assert k in res["table6"]
    for k in ("rouge_l", "meteor", "macro_f1", "weighted_f1", "bias"):
        lo, hi = res["ci95"][k]
        assert lo - 1e-9 <= (res["table6"].get(k) if k in res["table6"] else res["strategy"][k]) <= hi + 1e-9
    s = res["strategy"]
    assert {"accuracy", "macro_f1", "weighted_f1", "bias", "per_strategy"} <= set(s)
    assert set(s["per_strategy"]) == {"Question", "Restatement or Paraphrasing", "Reflection of feelings",
                                      "Self-disclosure", "Affirmation and Reassurance", "Providing Suggestions",
                                      "Information", "Others"}
    assert [a["name"] for a in res["published"]["anchors"]][-1] == "EmoDynamiX"
    assert "bleu" in res["metric_variants"] and "distinct_response" in res["metric_variants"]
    assert set(res["phases"]) == {"1", "2", "3", "4"}
    report = (out / "report.md").read_text()
    assert "![confusion matrix](confusion.png)" in report and res["test_sha256"] in report
    assert "27.70" in report and (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    pinned = json.loads((out / "benchmark.json").read_text())
    assert pinned["sample_ids"] == res["sample_ids"] and pinned["gold"][1] == "Reflection of feelings"
    # resume: nothing regenerated
    code, _, err = cli("benchmark", "esconv", "--test", tsv, "-m", "scripted", "--reps", "20", "--out", out)
    assert code == 0, err
    assert len((out / "samples.jsonl").read_text().splitlines()) == 4


def test_changed_test_file_is_refused(cli, tsv, tmp_path):
    out = tmp_path / "bench"
    assert cli("benchmark", "esconv", "--test", tsv, "-m", "scripted", "--limit", "2", "--reps", "10",
               "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    tsv.write_text(tsv.read_text().replace("coping", "holding up"))
    code, _, err = cli("benchmark", "esconv", "--test", tsv, "-m", "scripted", "--limit", "4", "--out", out)
    assert code == 2 and "mini.tsv: changed since the run" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_per_dialogue_spreads_the_samples_over_more_dialogues(cli, tsv, tmp_path):
    from extes.tuning.benchmark import load_test, spread

    # spread(): K of a dialogue's n samples, evenly spaced (openings, middles and endings), file order kept
    rows = [{"id": f"a#{i}", "dialogue": "a"} for i in range(9)] + [{"id": "b#0", "dialogue": "b"}]
    assert [r["id"] for r in spread(rows, 3)] == ["a#1", "a#4", "a#7", "b#0"]
    assert spread(rows, 20) == rows
    # on the real ESConv dev split: 60 consecutive samples are a few dialogues, 60 spread 3 a dialogue are 20
    dev = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "esconv" / "devWithStrategy_short.tsv"
    if dev.exists():  # shared/ lies beside the checkout (CI); without it the scripted part below still runs
        first = load_test(dev, 60)
        spread3 = load_test(dev, 60, 3)
        assert len(spread3) == 60 and len({s["dialogue"] for s in spread3}) == 20
        assert len({s["dialogue"] for s in first}) < 10
        assert max(s["k"] / s["n"] for s in spread3) > 0.7 and min(s["k"] / s["n"] for s in spread3) < 0.3
    out = tmp_path / "bench"
    code, stdout, err = cli("benchmark", "esconv", "--test", tsv, "-m", "scripted", "--per-dialogue", "1",
                            "--reps", "10", "--out", out, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["sample_ids"] == ["mini-0000#3", "mini-0001#3"] and res["dialogues"] == 2
    assert json.loads((out / "benchmark.json").read_text())["per_dialogue"] == 1
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = cli("benchmark", "esconv", "--test", tsv, "-m", "scripted", "--out", out)
    assert code == 2 and "--per-dialogue None: the run in" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    code, _, err = cli("benchmark", "esconv", "--test", tsv, "-m", "scripted", "--per-dialogue", "0", "--out",
                       tmp_path / "b0")
    assert code == 2 and "--per-dialogue 0" in err


def test_prefix_predictor_reads_the_leading_label(cli, tsv, tmp_path):
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["[Clarification] What happened then?", "[Question] How do you feel?"]))
    out = tmp_path / "bench"
    code, stdout, err = cli("benchmark", "esconv", "--test", tsv, "-m", f"scripted:{replies}", "--predictor",
                            "prefix", "--reps", "10", "--out", out, "--json")
    assert code == 0, err
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["hypothesis"] for r in rows[:2]] == ["What happened then?", "How do you feel?"]
    # ExTES's Clarification maps onto ESConv's Question; both replies count as Question
    assert json.loads(stdout)["strategy"]["per_strategy"]["Question"]["predicted"] == 4


def rows_of(n=30, seed=1):
    rng = random.Random(seed)
    words = "i feel you so sad the job it is hard we can try a plan , . ? really".split()
    rows = []
    for i in range(n):
        h = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        r = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        rows.append({"id": f"d{i // 3}#{i % 3}", "hypothesis": h or "...", "reference": r, "meteor": rng.random(),
                     "rouge_l": M.rouge_l_pair(M.tokens(h), M.tokens(r)), "extrema": rng.random()})
    return rows


def test_table6_from_stats_equals_the_metrics():
    from extes.tuning.evaluation import aggregate

    rows = rows_of()
    fast, slow = R.table6([R.row_stats(r) for r in rows]), aggregate(rows)
    for k in ("bleu2", "bleu4", "rouge_l", "meteor", "extrema", "dist1", "dist2", "dist3"):
        assert fast[k] == pytest.approx(slow[k], abs=1e-3), k  # aggregate rounds to 4 decimals
    for sub in (rows[:1], rows[3:4], rows[:7]):
        hyps, refs = [r["hypothesis"] for r in sub], [r["reference"] for r in sub]
        stats = [R.row_stats(r) for r in sub]
        assert R.corpus_bleu(stats, 4) == pytest.approx(M.bleu(hyps, refs, 4), abs=1e-9)
        assert R.corpus_bleu(stats, 2) == pytest.approx(M.bleu(hyps, refs, 2), abs=1e-9)


def test_bootstrap_resamples_dialogues_not_turns():
    # two dialogues, all turns of one scoring 0, of the other 1: a dialogue resample can only give 0, 1/2 or 1
    rows = [{"id": f"a#{i}", "v": 0.0} for i in range(3)] + [{"id": f"b#{i}", "v": 1.0} for i in range(3)]
    seen = set()

    def score(idx):
        m = sum(rows[i]["v"] for i in idx) / len(idx)
        seen.add(round(m, 6))
        return {"v": m}

    R.dialogue_bootstrap(rows, score, ["v"], reps=200, seed=3)
    assert seen == {0.0, 0.5, 1.0}

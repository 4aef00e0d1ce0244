"""Paired bootstrap over dialogues: a real difference is found, none is invented, disjoint runs are refused."""

import json
import random

import pytest

from extes.errors import InputError
from extes.tuning.paired import paired_test


def rows(shift=0.0, seed=0, n_dialogues=12, prefix="d"):
    rng = random.Random(seed)
    out = []
    for d in range(n_dialogues):
        for t in range(3):
            base = rng.random()
            out.append({"id": f"{prefix}{d}#{t}", "hypothesis": "i hear you , that sounds hard",
                        "reference": "that sounds really hard", "meteor": base, "rouge_l": min(1.0, base + shift),
                        "extrema": base})
    return out


def test_real_difference_is_found():
    a, b = rows(), rows(shift=0.1)
    res = paired_test(a, b, "base", "lora", reps=500, seed=1)
    r = res["metrics"]["rouge_l"]
    assert r["delta"] > 0 and r["p"] < 0.01 and r["verdict"].startswith("lora > base, p")
    assert res["metrics"]["meteor"]["verdict"].startswith("no difference shown")  # identical column
    assert res["dialogues"] == 12 and res["n"] == 36


def test_noise_gives_no_difference_at_the_nominal_rate():
    # B = A plus symmetric noise per sample: "B differs" should be said in about alpha of the cases, no more
    calls = 0
    for trial in range(20):
        a, b = rows(seed=trial), rows(seed=trial)
        rng = random.Random(100 + trial)
        for r in b:
            r["rouge_l"] = r["rouge_l"] + rng.choice([-0.05, 0.05])
        res = paired_test(a, b, reps=200, seed=trial)
        calls += res["metrics"]["rouge_l"]["p"] < 0.05
    assert calls <= 3
    a, b = rows(seed=1), rows(seed=1)
    b[0]["rouge_l"] += 0.01
    assert paired_test(a, b, reps=200, seed=7)["metrics"]["rouge_l"] == paired_test(a, b, reps=200, seed=7)[
        "metrics"]["rouge_l"]  # seeded


def test_runs_sharing_no_sample_are_refused(cli, tmp_path):
    with pytest.raises(InputError, match="share no samples"):
        paired_test(rows(), rows(prefix="x"), "runs/a", "runs/b")
    for name, rs in (("a", rows()), ("b", rows(prefix="x"))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    code, out, err = cli("evaluate", "compare", tmp_path / "a", tmp_path / "b", "--reps", "10", "--out",
                         tmp_path / "cmp.md")
    assert code == 2 and "share no samples" in err and str(tmp_path / "a") in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "cmp.md").exists()


def test_compare_cli_prints_verdicts(cli, tmp_path):
    for name, rs in (("base", rows()), ("lora", rows(shift=0.1))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    code, out, err = cli("evaluate", "compare", tmp_path / "base", tmp_path / "lora", "--reps", "10",
                         "--paired-reps", "300", "--json")
    assert code == 0, err
    paired = json.loads(out)["paired"][0]
    assert paired["metrics"]["rouge_l"]["verdict"].startswith(f"{tmp_path / 'lora'} > {tmp_path / 'base'}, p")
    code, out, _ = cli("evaluate", "compare", tmp_path / "base", tmp_path / "lora", "--reps", "10")
    assert "| rouge_l |" in out and "no difference shown" in out


def test_one_dialogue_is_not_testable():
    """A single dialogue cannot be resampled: the verdict says so instead of reporting p at its floor."""
    rows_a = rows(n_dialogues=1)
    rows_b = rows(n_dialogues=1, shift=0.3)
    res = paired_test(rows_a, rows_b, "A", "B", reps=50)
    assert res["dialogues"] == 1
    assert all(v["p"] == 1.0 and v["verdict"].startswith("not testable") for v in res["metrics"].values())


def test_few_dialogues_get_the_exact_randomization_test_and_cannot_claim_more_than_they_show():
    # 3 dialogues that all move the same way: the bootstrap said p <= 0.001; all 8 swaps give p = 2/8.
    res = paired_test(rows(n_dialogues=3), rows(n_dialogues=3, shift=0.2), "A", "B", reps=500)
    assert res["method"].startswith("exact") and res["reps"] == 8
    assert res["metrics"]["rouge_l"]["p"] == 0.25 and res["metrics"]["rouge_l"]["verdict"].startswith("no difference")
    # 8 dialogues with the same shift: 2/256 < 0.05, so the difference is shown, at the test's floor.
    res = paired_test(rows(n_dialogues=8), rows(n_dialogues=8, shift=0.2), "A", "B")
    assert res["metrics"]["rouge_l"]["p"] == 2 / 256 and res["metrics"]["rouge_l"]["verdict"].startswith("B > A, p <=")
    from extes.tuning.paired import paired_markdown

    assert paired_markdown(res).startswith("Exact paired randomization test over 8 dialogues")

"""compare-optimizers with the scripted LM: rows for every optimizer x seed, the table, the plot, resume."""

import json

from extes.tuning.compare import _ci, against_uncompiled
from extes.tuning.paired import sign_flip_p


def test_compare_optimizers_end_to_end(cli, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, err = cli("compare-optimizers", "classifier", "--optimizers", "labeled,bootstrap,random-search",
                            "--seeds", "2", "-m", "scripted", "--limit", "6", "--val-limit", "4", "--out", out,
                            "--json")
    assert code == 0, err
    assert "labeled seed 1: valid" in err and "bootstrap seed 0: valid" in err  # a line per run, off a terminal too
    r = json.loads(stdout)
    rows = r["rows"]
    assert [(x["optimizer"], x["seed"]) for x in rows] == [("uncompiled", 0), ("labeled", 0), ("labeled", 1),
                                                           ("bootstrap", 0), ("bootstrap", 1),
                                                           ("random-search", 0), ("random-search", 1)]
    for x in rows:
        for key in ("optimizer", "seed", "valid", "test", "lm_calls", "cost_usd", "wall_s"):
            assert key in x
        assert x["lm_calls"] >= 8  # 4 valid + 4 test predictions at least
    rs = next(x for x in rows if x["optimizer"] == "random-search")
    assert rs["compile_lm_calls"] > 0
    assert all(len(x["test_values"]) == 4 for x in rows)  # the per-example values the verdict is tested on
    assert {"n", "delta", "delta_ci95", "p"} <= set(r["against_uncompiled"]["labeled"])
    report = (out / "report.md").read_text()
    assert "- labeled: " in report and "of 4, p = " in report and "95% interval over the test examples" in report
    assert "| random-search | 2 |" in report and "Against the uncompiled program on the test split" in report
    png = (out / "cost_vs_quality.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in (out / "programs").iterdir()} >= {"labeled-0.json", "bootstrap-1.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["optimizers"] == ["labeled", "bootstrap", "random-search"] and manifest["versions"]["dspy"]
    # rerun: nothing is recomputed
    lines = (out / "rows.jsonl").read_text()
    cli("compare-optimizers", "classifier", "--optimizers", "labeled,bootstrap,random-search", "--seeds", "2",
        "-m", "scripted", "--limit", "6", "--val-limit", "4", "--out", out)
    assert (out / "rows.jsonl").read_text() == lines


def test_confidence_interval():
    m, h = _ci([10.0, 20.0])
    assert m == 15.0 and abs(h - 12.706 * 7.0711 / 1.4142) < 0.01
    assert _ci([5.0]) == (5.0, 0.0)


def test_unknown_optimizer(cli, tmp_path):
    code, _, err = cli("compare-optimizers", "classifier", "--optimizers", "labeled,evolve", "-m", "scripted",
                       "--out", tmp_path)
    assert code == 2 and "evolve" in err


def test_sign_flip_test_over_examples():
    # 3 examples up, none down: only the two all-same flips reach the observed sum, p = 2/8 (the seeds' interval was
    # 0 there and the old verdict said "better": the teacher's labeled classifier, 3/16 against 0/16)
    assert sign_flip_p([1.0, 1.0, 1.0, 0.0]) == 0.25
    assert sign_flip_p([1.0] * 16) == 2 / 2**16
    assert sign_flip_p([0.0, 0.0]) == 1.0
    assert 0.0 < sign_flip_p([1.0] * 20 + [-1.0] * 2) < 0.001  # past SIGN_FLIP_EXACT_MAX: random flips
    rows = [{"optimizer": "uncompiled", "test_values": [0, 0, 0, 1]},
            {"optimizer": "labeled", "test_values": [1, 1, 0, 1]},
            {"optimizer": "labeled", "test_values": [1, 0, 0, 1]},
            {"optimizer": "old", "test": 50.0}]
    t = against_uncompiled(rows)
    # differences 1, .5, 0, 0: mean .375, sd .4787, t(3) 3.182 -> half-width 3.182 * .4787 / 2 = .7616
    assert t["labeled"] == {"n": 4, "delta": 37.5, "delta_ci95": 76.16, "p": 0.5, "wins": 2, "losses": 0}
    assert "old" not in t


def test_compare_announces_what_it_will_score_and_ticks_that_often(tmp_path):
    """The bar's total comes from compare() itself: the pending runs times the valid and test examples (here the
    seed set has fewer test turns of some kinds than the limit would allow, so `2 * val_limit` would be wrong)."""
    from extes.corpus.seeds import read_seed_folder
    from extes.programs.lm import load_lm
    from extes.tuning.compare import compare

    dialogues = read_seed_folder()
    train, valid, test = dialogues[:20], dialogues[20:24], dialogues[24:25]
    lm = load_lm("scripted")
    ticks = []
    for already in (0, 2):  # a fresh folder, then the same folder with one more optimizer: only the new runs
        starts, before = [], len(ticks)
        opts = ["labeled"] if already == 0 else ["labeled", "bootstrap"]
        summary = compare("classifier", opts, 1, train, valid, test, lm, tmp_path / "c", model="scripted", limit=4,
                          val_limit=50, start=starts.append, tick=lambda: ticks.append(1))
        new = len(summary["rows"]) - already
        (total,) = starts
        assert len(ticks) - before == total and total % new == 0 and total // new < 2 * 50

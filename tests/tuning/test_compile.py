"""Compilation with DSPy optimizers (scripted LM: fast and deterministic), save/load, examples, metrics."""

import json

import dspy
import pytest

from extes.corpus.formats import read_corpus
from extes.corpus.seeds import seeds_dir
from extes.programs.adapter import SmallChatAdapter
from extes.programs.classifier import StrategyClassifier
from extes.programs.lm.scripted import ScriptedLM
from extes.tuning.datasets import turn_examples
from extes.tuning.program_metrics import macro_f1


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    out = tmp_path_factory.mktemp("splits")
    from click.testing import CliRunner

    from extes.cli import main

    CliRunner().invoke(main, ["data", "split", str(seeds_dir()), str(out)])
    return out


@pytest.mark.parametrize("optimizer", ["labeled", "bootstrap", "random-search", "knn", "mipro", "copro", "simba",
                                       "gepa"])
def test_every_optimizer_compiles_the_classifier(cli, splits, tmp_path, optimizer):
    out = tmp_path / "clf.json"
    code, stdout, err = cli("compile", "classifier", "--optimizer", optimizer, "--trainset", splits / "train.jsonl",
                            "--valset", splits / "valid.jsonl", "-m", "scripted", "--limit", "12", "--val-limit", "6",
                            "--out", out, "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["optimizer"] == optimizer and r["valid_after"]["n"] == 6 and "macro_f1" in r["valid_after"]
    traces = json.loads(out.with_suffix(".traces.json").read_text())
    assert traces and traces[0]["predictor"] == "classify"
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["student"] == "scripted" and manifest["versions"]["dspy"]
    if optimizer != "knn":
        assert out.exists()


def test_saved_and_loaded_program_predicts_the_same(cli, splits, tmp_path):
    out = tmp_path / "clf.json"
    cli("compile", "classifier", "--optimizer", "labeled", "--trainset", splits / "train.jsonl", "--valset",
        splits / "valid.jsonl", "-m", "scripted", "--k", "3", "--out", out)
    compiled = StrategyClassifier()
    compiled.load(str(out))
    assert len(compiled.classify.demos) == 3
    again = StrategyClassifier()
    again.load(str(out))
    val = turn_examples(read_corpus(splits / "valid.jsonl").dialogues, "classifier", limit=8)
    with dspy.context(lm=ScriptedLM(), adapter=SmallChatAdapter()):
        a = [compiled(**ex.inputs()).strategy for ex in val]
        b = [again(**ex.inputs()).strategy for ex in val]
    assert a == b


def test_supporter_compiles_and_unwired_optimizers_say_why(cli, splits, tmp_path):
    code, out, err = cli("compile", "supporter", "--optimizer", "labeled", "--trainset", splits / "train.jsonl",
                         "--valset", splits / "valid.jsonl", "-m", "scripted", "--val-limit", "4", "--out",
                         tmp_path / "sup.json", "--json")
    assert code == 0, err
    assert 0 <= json.loads(out)["valid_after"]["score"] <= 100
    code, _, err = cli("compile", "classifier", "--optimizer", "evolve", "--trainset", splits / "train.jsonl",
                       "--valset", splits / "valid.jsonl", "-m", "scripted", "--out", tmp_path / "x.json")
    assert code == 2 and "evolve" in err and "gepa" in err


def test_examples_balance_and_limit():
    dialogues = read_corpus(seeds_dir()).dialogues
    ex = turn_examples(dialogues, "classifier", limit=32, balance=True)
    assert len(ex) == 32 and len({e.strategy for e in ex}) == 16  # two rounds over the 16 strategies
    sup = turn_examples(dialogues, "supporter", limit=5)
    assert set(sup[0].inputs()) == {"history", "strategy"} and sup[0].reply


def test_macro_f1_hand_computed():
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("c", "b")]
    # a: p=1 r=.5 f=.667; b: p=1/3 r=1 f=.5; c: p=0 r=0 f=0 -> mean .389
    assert macro_f1(pairs) == pytest.approx((2 / 3 + 0.5 + 0) / 3)


def test_compiled_supporter_loads_into_reply(cli, splits, tmp_path):
    out = tmp_path / "sup.json"
    cli("compile", "supporter", "--optimizer", "labeled", "--trainset", splits / "train.jsonl", "--valset",
        splits / "valid.jsonl", "-m", "scripted", "--val-limit", "2", "--out", out)
    code, stdout, err = cli("reply", "I failed again", "-m", "scripted", "--program", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["reply"]
    bad = tmp_path / "bad.json"
    bad.write_text("{\"nope\": 1}")
    code, _, err = cli("reply", "hi", "-m", "scripted", "--program", bad)
    assert code == 2 and "--program" in err


def test_compiled_synthesizer_loads_into_synthesize(cli, splits, tmp_path):
    out = tmp_path / "syn.json"
    code, stdout, err = cli("compile", "synthesizer", "--optimizer", "labeled", "--trainset", splits / "train.jsonl",
                            "--valset", splits / "valid.jsonl", "-m", "scripted", "--limit", "6", "--val-limit", "2",
                            "--k", "1", "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["valid_after"]["n"] == 2
    code, stdout, err = cli("synthesize", "-m", "scripted", "--program", out, "--target", "2", "--out",
                            tmp_path / "run", "--json")
    assert code == 0, err
    assert json.loads(stdout)["accepted"] == 2


def test_compile_seeker_from_seed_dialogues(cli, tmp_path):
    """The seeker simulator compiles like the other programs: card + history (seeker's view) → the person's turn."""
    import json as _json

    from extes.corpus.seeds import read_seed_folder
    from extes.tuning.datasets import turn_examples

    ex = turn_examples(read_seed_folder()[:2], "seeker")[0]
    assert ex.card.startswith("Situation:") and ex.history[-1]["role"] == "assistant"  # the supporter spoke last
    out = tmp_path / "seeker.json"
    code, stdout, err = cli("compile", "seeker", "--optimizer", "labeled", "--trainset", "assets/seeds", "--valset",
                            "assets/seeds", "-m", "scripted", "--limit", "8", "--val-limit", "4", "--k", "2",
                            "--out", out, "--json")
    assert code == 0, err
    r = _json.loads(stdout)
    assert r["valid_after"]["n"] == 4 and r["valid_after"]["score"] > 0 and out.exists()


def test_keep_best_saves_the_uncompiled_program_when_compiling_made_it_worse(cli, splits, tmp_path, monkeypatch):
    from extes.tuning import compile as compile_mod

    scores = iter([{"score": 75.0, "n": 6}, {"score": 25.0, "n": 6}])  # before, after: what the teacher did
    monkeypatch.setattr(compile_mod, "score", lambda *a, **k: next(scores))
    out = tmp_path / "clf.json"
    code, stdout, err = cli("compile", "classifier", "--optimizer", "labeled", "--trainset", splits / "train.jsonl",
                            "--valset", splits / "valid.jsonl", "-m", "scripted", "--k", "3", "--keep-best",
                            "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["kept"] == "uncompiled"
    saved = StrategyClassifier()
    saved.load(str(out))
    assert saved.classify.demos == []  # the labeled demos were dropped with the worse program
    # Without the flag the compiled program is kept even so.
    scores = iter([{"score": 75.0, "n": 6}, {"score": 25.0, "n": 6}])
    code, stdout, _ = cli("compile", "classifier", "--optimizer", "labeled", "--trainset", splits / "train.jsonl",
                          "--valset", splits / "valid.jsonl", "-m", "scripted", "--k", "3", "--out", out, "--json")
    assert json.loads(stdout)["kept"] == "compiled"
    saved.load(str(out))
    assert len(saved.classify.demos) == 3

"""Evaluation runs end to end: scripted LM (fast) and the embedded model (real), resume, compare with CIs."""

import json

import pytest

from extes.corpus.formats import read_corpus
from extes.corpus.seeds import seeds_dir


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    from extes.corpus.formats import write_corpus

    path = tmp_path_factory.mktemp("split") / "test.jsonl"
    write_corpus(read_corpus(seeds_dir()).dialogues[:3], path, "jsonl")
    return path


@pytest.mark.parametrize("mode", ["gold", "predicted", "none"])
def test_scripted_run_writes_table_samples_manifest(cli, test_split, tmp_path, mode):
    out = tmp_path / "eval"
    code, stdout, err = cli("evaluate", "-m", "scripted", "--test", test_split, "--strategy", mode, "--limit", "6",
                            "--out", out, "--json")
    assert code == 0, err
    agg = json.loads(stdout)
    assert agg["n"] == 6 and agg["ppl"] is None and 0 <= agg["rouge_l"] <= 100 and agg["mode"] == mode
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["hypothesis"] and r["reference"] for r in rows)
    if mode == "gold":
        assert all(r["strategy"] == r["gold_strategy"] for r in rows)
    if mode == "none":
        assert all(r["strategy"] is None for r in rows)
    assert (out / "report.md").read_text().count("| eval | 6 |") == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "scripted" and manifest["versions"]["dspy"]
    # resume: a second run adds nothing
    cli("evaluate", "-m", "scripted", "--test", test_split, "--strategy", mode, "--limit", "6", "--out", out)
    assert len((out / "samples.jsonl").read_text().splitlines()) == 6


def test_compare_with_bootstrap_intervals(cli, test_split, tmp_path):
    for name, mode in (("a", "gold"), ("b", "none")):
        cli("evaluate", "-m", "scripted", "--test", test_split, "--strategy", mode, "--out", tmp_path / name)
    code, out, err = cli("evaluate", "compare", tmp_path / "a", tmp_path / "b", "--reps", "50", "--json")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert [r["run"] for r in runs] == ["a", "b"]
    for r in runs:
        for k in ("rouge_l", "meteor", "bleu2"):
            lo, hi = r["ci95"][k]
            assert lo - 1e-6 <= r[k] <= hi + 1e-6
        assert "dist1" not in r["ci95"]


def test_bad_inputs(cli, tmp_path):
    code, _, err = cli("evaluate", "-m", "scripted", "--out", tmp_path / "x")
    assert code == 2 and "--test" in err
    (tmp_path / "u.jsonl").write_text(json.dumps({"id": "u", "scene": "s", "turns": [{"role": "user", "text": "hi"}]})
                                      + "\n")
    code, _, err = cli("evaluate", "-m", "scripted", "--test", tmp_path / "u.jsonl", "--out", tmp_path / "x")
    assert code == 2 and "no assistant turn" in err
    code, _, err = cli("evaluate", "compare", tmp_path)
    assert code == 2 and "samples.jsonl" in err


@pytest.mark.model
def test_embedded_model_run_with_perplexity(cli, test_split, tmp_path):
    out = tmp_path / "eval"
    code, stdout, err = cli("evaluate", "-m", "local/smollm2-135m-instruct", "--test", test_split, "--limit", "2",
                            "--max-tokens", "30", "--out", out, "--json")
    assert code == 0, err
    agg = json.loads(stdout)
    assert agg["n"] == 2 and agg["ppl"] > 1 and agg["meteor"] >= 0
    assert all("nll" in json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines())


def test_resume_with_other_protocol_options_is_refused(cli, test_split, tmp_path):
    out = tmp_path / "eval"
    base = ["evaluate", "-m", "scripted", "--test", test_split, "--limit", "3", "--out", out]
    assert cli(*base, "--strategy", "gold")[0] == 0
    for extra, name in ((["--strategy", "none"], "mode"), (["--max-tokens", "50"], "max_tokens")):
        code, _, err = cli(*base, *extra)
        assert code == 2 and name in err and "new --out" in err and len(err.splitlines()) == 1, err
    changed = tmp_path / "changed.jsonl"  # same path, other content: detected by its sha256
    changed.write_bytes(test_split.read_bytes())
    args = ["evaluate", "-m", "scripted", "--test", changed, "--limit", "3", "--out", tmp_path / "e2"]
    assert cli(*args)[0] == 0
    changed.write_text(test_split.read_text().splitlines()[1] + "\n")
    code, _, err = cli(*args)
    assert code == 2 and "test_sha256" in err
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3  # nothing was mixed in


def test_a_failed_start_leaves_no_manifest(cli, test_split, tmp_path):
    out = tmp_path / "eval"
    code, _, err = cli("evaluate", "-m", "local/no-such-model", "--test", test_split, "--out", out)
    assert code == 2 and not (out / "manifest.json").exists()
    code, _, err = cli("evaluate", "-m", "scripted", "--test", tmp_path / "missing.jsonl", "--out", out)
    assert code == 2 and not (out / "manifest.json").exists()
    code, _, err = cli("evaluate", "-m", "scripted", "--test", test_split, "--limit", "2", "--out", out)
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["model"] == "scripted"

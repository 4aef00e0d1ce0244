"""Human review of a run's queue, and exporting a run (JSONL, Hugging Face folder with a dataset card)."""

import json

from extes.corpus.formats import read_corpus
from extes.corpus.review import pending
from extes.corpus.runstore import RunStore


def make_run(cli, tmp_path, queued=3):
    run = tmp_path / "run"
    assert cli("synthesize", "-m", "scripted", "--target", "4", "--out", run)[0] == 0
    store = RunStore(run)
    for k, rec in enumerate(store.records["accepted"][:queued]):
        q = json.loads(json.dumps(rec))
        q["id"] = q["meta"]["task"] = f"gen-9{k:05d}"
        q["turns"][3]["strategy"] = None
        q["meta"]["validation"] = {"status": "queued", "reasons": ["unlabelled"], "problems": ["turn 3"], "fixes": []}
        store.append("queued", q)
    return run


def test_step_through_the_queue(cli, tmp_path, monkeypatch):
    run = make_run(cli, tmp_path)
    from click.testing import CliRunner

    from extes.cli import main

    edited_text = {}

    def fake_edit(text, extension=None):
        d = json.loads(text)
        d["turns"][3]["strategy"] = "Offer Hope"
        edited_text["v"] = d
        return json.dumps(d)

    monkeypatch.setattr("click.edit", fake_edit)
    result = CliRunner().invoke(main, ["review", str(run), "--reviewer", "jk", "--json"], input="a\ne\nd\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"accept": 2, "discard": 1, "skip": 0, "pending": 0}
    accepted = [json.loads(x) for x in (run / "accepted.jsonl").read_text().splitlines()]
    reviewed = [d for d in accepted if d["meta"].get("review")]
    assert len(reviewed) == 2 and reviewed[1]["turns"][3]["strategy"] == "Offer Hope"
    assert reviewed[1]["meta"]["review"]["edited"] and reviewed[0]["meta"]["review"]["reviewer"] == "jk"
    decisions = [json.loads(x) for x in (run / "review.jsonl").read_text().splitlines()]
    assert [d["decision"] for d in decisions] == ["accept", "accept", "discard"]


def test_queue_export_and_import(cli, tmp_path):
    run = make_run(cli, tmp_path)
    out = tmp_path / "queue.jsonl"
    code, stdout, _ = cli("review", run, "--export", out, "--json")
    assert code == 0 and json.loads(stdout)["exported"] == 3
    queue = [json.loads(x) for x in out.read_text().splitlines()]
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text("\n".join(json.dumps({"task": q["meta"]["task"], "decision": "discard"}) for q in queue))
    code, stdout, _ = cli("review", run, "--import", decisions, "--json")
    assert code == 0 and json.loads(stdout) == {"accept": 0, "discard": 3} and pending(run) == []


def test_export_run_as_dataset_with_card(cli, tmp_path):
    run = make_run(cli, tmp_path, queued=0)
    code, out, err = cli("data", "convert", run, tmp_path / "hf", "--to", "hf", "--json")
    assert code == 0, err
    assert json.loads(out)["written"] == 4
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "4 dialogues" in card and "| yield |" in card and "| cost_usd |" in card and "scripted" in card
    assert len(read_corpus(tmp_path / "hf").dialogues) == 4
    assert len(read_corpus(run).dialogues) == 4


def test_review_needs_a_run(cli, tmp_path):
    code, _, err = cli("review", tmp_path)
    assert code == 2 and "not a synthesis run folder" in err

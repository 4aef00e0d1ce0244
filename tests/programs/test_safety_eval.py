"""`extes safety eval`: the JSONL format (context, language), errors, and per-category/per-language figures."""

import json
from pathlib import Path

import pytest

from extes.errors import InputError
from extes.programs.safety import SafetyChecker
from extes.programs.safety_eval import evaluate, load_labelled

SAFETY = Path(__file__).resolve().parents[2] / "assets" / "safety"


@pytest.mark.parametrize("name", ["development_multilingual.jsonl", "development_context.jsonl"])
def test_development_sets_rules_and_context(name):
    r = evaluate(load_labelled(SAFETY / name), SafetyChecker(rules_only=True))
    assert r["recall"] >= 0.95 and r["precision"] >= 0.95, r["errors"]
    assert set(r["per_language"]) == {"en", "es", "fr", "pt", "de"}
    for lang, s in r["per_language"].items():
        assert s["recall"] >= 0.9 and s["precision"] >= 0.9, (lang, r["errors"])


@pytest.mark.parametrize("line, match", [
    ('{"text": "hi", "crisis": "yes"}', "line 1"),
    ('{"text": "hi", "crisis": false, "language": "it"}', "language 'it'"),
    ('{"text": "hi", "crisis": true, "category": "sadness"}', "category 'sadness'"),
    ('{"text": "hi", "crisis": false, "context": [{"role": "bot", "text": "x"}]}', "line 1: context"),
])
def test_bad_lines(tmp_path, line, match):
    (tmp_path / "x.jsonl").write_text(line + "\n")
    with pytest.raises(InputError, match=match):
        load_labelled(tmp_path / "x.jsonl")


def test_bad_files(tmp_path):
    (tmp_path / "latin1.jsonl").write_bytes('{"text": "caf\xe9", "crisis": false}\n'.encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        load_labelled(tmp_path / "latin1.jsonl")
    with pytest.raises(InputError, match="folder"):
        load_labelled(tmp_path)


def test_eval_cli_json_errors_and_sweep(cli, tmp_path):
    rows = [{"text": "quiero morirme", "crisis": True, "category": "suicide", "language": "es"},
            {"text": "yes, most nights", "crisis": True, "category": "suicide",
             "context": [{"role": "assistant", "text": "Are you thinking of ending your life?"}]},
            {"text": "what should I do next?", "crisis": False},
            {"text": "I could kill for a coffee", "crisis": True, "category": "harm_to_others"}]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = cli("safety", "eval", tmp_path / "s.jsonl", "--rules-only", "--json", "--show-errors", "--sweep")
    obj = json.loads(out)
    assert code == 0 and obj["n"] == 4 and obj["fn"] == 1 and obj["per_language"]["es"]["recall"] == 1.0
    assert obj["per_category"]["harm_to_others"]["recall"] == 0.0 and len(obj["sweep"]) == 18
    assert "miss [en, harm_to_others" in err and "coffee" in err
    code, out, _ = cli("safety", "eval", tmp_path / "s.jsonl", "--rules-only")
    assert "language" in out and "es " in out

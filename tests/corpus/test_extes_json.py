import json

import pytest

from extes.corpus.formats import ReadOptions, read_corpus, write_corpus
from extes.errors import InputError
from helpers import extes_record, good_content, write_json


def test_known_quirks_are_read(tmp_path):
    rec = extes_record(
        [
            {"User": "Hey."},
            {"AI": "Hi, how are you?"},  # missing AI Strategy
            {"User": "Stressed about finals."},
            {"AI Strategy": "RS", "AI": {"Response": "Finals are weighing on you."}},  # abbreviation + object
            {"User": "Yes."},
            {"User": "And my parents expect top marks."},  # consecutive user turns
            {"ai strategy": "emotional validation", "ai": "That pressure is a lot."},  # other case
            {"AI Strategy": "", "AI": "Take care!"},  # empty strategy
        ]
    )
    path = write_json(tmp_path / "x.json", [rec])
    res = read_corpus(path, "extes")
    (d,) = res.dialogues
    assert [t.role for t in d.turns] == ["user", "assistant", "user", "assistant", "user", "user", "assistant",
                                         "assistant"]
    assert d.turns[1].strategy is None
    assert d.turns[3].strategy == "Reflective Statements" and d.turns[3].strategy_raw == "RS"
    assert d.turns[3].text == "Finals are weighing on you."
    assert d.turns[6].strategy == "Emotional Validation"
    assert d.turns[7].strategy is None
    assert d.id == "x-00000" and d.meta.origin == "x.json#0"


def test_unknown_strategy_is_an_error_naming_record(tmp_path):
    content = good_content()
    content[3]["AI Strategy"] = "Mind Reading"
    path = write_json(tmp_path / "x.json", [extes_record(good_content()), extes_record(content)])
    with pytest.raises(InputError, match=r"x.json: record 1: turn 3: unknown strategy 'Mind Reading'.*--unknown"):
        read_corpus(path, "extes")


def test_unknown_strategy_kept_and_counted_on_request(tmp_path):
    content = good_content()
    content[3]["AI Strategy"] = "Mind Reading"
    path = write_json(tmp_path / "x.json", [extes_record(content)])
    res = read_corpus(path, "extes", ReadOptions(unknown_labels="keep"))
    assert res.dialogues[0].turns[3].strategy == "Mind Reading"
    assert res.flagged == {"Mind Reading": 1}
    assert res.dialogues[0].meta.flags == [{"turn": 3, "label": "Mind Reading", "problem": "unknown label"}]


def test_dialogue_without_turns(tmp_path):
    path = write_json(tmp_path / "x.json", [extes_record([])])
    with pytest.raises(InputError, match=r"record 0: the dialogue has no turns"):
        read_corpus(path, "extes")


def test_skip_invalid_goes_on_and_reports(tmp_path):
    path = write_json(tmp_path / "x.json", [extes_record([]), extes_record(good_content()), {"scene": "x"}])
    res = read_corpus(path, "extes", ReadOptions(skip_invalid=True))
    assert len(res.dialogues) == 1
    assert len(res.skipped) == 2 and "record 0" in res.skipped[0] and "record 2" in res.skipped[1]


def test_truncated_file_names_record_and_line(tmp_path):
    text = json.dumps([extes_record(good_content()) for _ in range(3)], indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: int(len(text) * 0.8)])
    with pytest.raises(InputError, match=r"cut.json: record 2: invalid JSON at line \d+.*truncated"):
        read_corpus(path, "extes")
    res = read_corpus(path, "extes", ReadOptions(skip_invalid=True))
    assert len(res.dialogues) == 2 and "record 2" in res.skipped[0]


def test_write_then_read_is_identity(tmp_path):
    path = write_json(tmp_path / "x.json", [extes_record(good_content())])
    first = read_corpus(path, "extes").dialogues
    write_corpus(first, tmp_path / "y.json", "extes")
    again = read_corpus(tmp_path / "y.json", "extes").dialogues
    assert [d.turns for d in again] == [d.turns for d in first]
    assert json.loads((tmp_path / "y.json").read_text())[0]["id"] == first[0].id

from collections import Counter

import pytest

from extes.corpus.formats import ReadOptions, read_corpus, write_corpus
from extes.errors import InputError
from helpers import write_json


def test_failed_esconv_reads_all_196_with_flags(esconv_file):
    res = read_corpus(esconv_file, "esconv")
    assert len(res.dialogues) == 196
    assert res.flagged == {"Direct Guidance": 11}
    roles = Counter(t.role for d in res.dialogues for t in d.turns)
    assert roles == {"user": 2853, "assistant": 2377}
    labels = Counter(t.strategy for d in res.dialogues for t in d.assistant_turns())
    assert labels["Question"] == 528 and labels["Others"] == 400 and labels["Affirmation and Reassurance"] == 341
    d = res.dialogues[0]
    assert d.scene == "ongoing depression" and d.meta.label_set == "esconv"
    assert d.meta.esconv["emotion_type"] == "depression" and d.meta.esconv["feedback"]
    assert not any(t.text != t.text.strip() for d in res.dialogues for t in d.turns)


def test_esconv_mapping_to_extes(esconv_file):
    res = read_corpus(esconv_file, "esconv", ReadOptions(map_esconv=True))
    d = res.dialogues[0]
    assert d.meta.label_set == "extes"
    assert d.turns[3].strategy == "Clarification" and d.turns[3].strategy_raw == "Questions"
    assert res.flagged == {"Direct Guidance": 11}


def test_esconv_write_read_round_trip(esconv_file, tmp_path):
    first = read_corpus(esconv_file, "esconv").dialogues
    write_corpus(first, tmp_path / "e.json", "esconv")
    again = read_corpus(tmp_path / "e.json", "esconv").dialogues
    assert [(d.scene, d.description, [(t.role, t.text, t.strategy) for t in d.turns]) for d in again] == [
        (d.scene, d.description, [(t.role, t.text, t.strategy) for t in d.turns]) for d in first
    ]
    assert again[0].meta.esconv["survey_score"] == first[0].meta.esconv["survey_score"]


def test_wrong_from_is_named(tmp_path):
    path = write_json(tmp_path / "x.json", [{"scene": "s", "description": "d", "content": [{"User": "hi"}]}])
    with pytest.raises(InputError, match=r"record 0: no 'dialog' list; this looks like ExTES JSON, use --from extes"):
        read_corpus(path, "esconv")


def test_unknown_speaker(tmp_path):
    path = write_json(tmp_path / "x.json", [{"dialog": [{"speaker": "robot", "content": "x"}]}])
    with pytest.raises(InputError, match="speaker 'robot'"):
        read_corpus(path, "esconv")

import pytest

from extes.corpus.formats import ReadOptions, read_corpus, write_corpus
from extes.errors import InputError
from helpers import extes_record, good_content, write_json


def _dialogues(tmp_path, n=3):
    path = write_json(tmp_path / "x.json", [extes_record(good_content()) | {"id": f"d{i}"} for i in range(n)])
    return read_corpus(path, "extes").dialogues


def test_jsonl_round_trip_is_lossless(tmp_path):
    ds = _dialogues(tmp_path)
    ds[0].meta.flags.append({"turn": 1, "label": "x", "problem": "unknown label"})
    ds[1].meta.round = 2
    write_corpus(ds, tmp_path / "c.jsonl", "jsonl")
    again = read_corpus(tmp_path / "c.jsonl", "jsonl", ReadOptions(unknown_labels="keep")).dialogues
    assert again == ds


def test_broken_line_names_record_and_line(tmp_path):
    write_corpus(_dialogues(tmp_path), tmp_path / "c.jsonl", "jsonl")
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    lines.insert(1, "")  # blank lines are allowed and still counted as lines
    lines[2] = lines[2][:40]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"c.jsonl: record 1 \(line 3\): invalid JSON at column \d+"):
        read_corpus(tmp_path / "c.jsonl", "jsonl")
    res = read_corpus(tmp_path / "c.jsonl", "jsonl", ReadOptions(skip_invalid=True))
    assert [d.id for d in res.dialogues] == ["d0", "d2"] and len(res.skipped) == 1


def test_schema_problem_is_named(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id": "a", "scene": "s", "turns": []}\n')
    with pytest.raises(InputError, match=r"record 0 \(line 1\): turns: .*at least one turn"):
        read_corpus(tmp_path / "c.jsonl", "jsonl")


def test_non_utf8_file(tmp_path):
    (tmp_path / "c.jsonl").write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(InputError, match="not UTF-8"):
        read_corpus(tmp_path / "c.jsonl", "jsonl")

"""The format table (corpus/formats/__init__.py): guessing, writing and the CLI choices all come from its rows."""

import shutil

import pytest

from extes.commands.data_cmd import convert
from extes.corpus.formats import (
    FORMATS,
    READ_FORMATS,
    WRITE_FORMATS,
    detect_format,
    guess_output_format,
    read_corpus,
    write_corpus,
)
from extes.corpus.seeds import read_seed_folder, seeds_dir
from extes.errors import InputError


def _seed_folder(path):
    path.mkdir()
    shutil.copy(sorted(seeds_dir().glob("*.yaml"))[0], path)
    return path


def test_the_cli_choices_are_the_table():
    choices = {p.name: list(p.type.choices) for p in convert.params if p.name in ("fmt_in", "fmt_out")}
    assert choices == {"fmt_in": list(READ_FORMATS), "fmt_out": list(WRITE_FORMATS)}
    assert READ_FORMATS == tuple(f.name for f in FORMATS)
    assert set(WRITE_FORMATS) == {"extes", "esconv", "jsonl", "hf"}


@pytest.mark.parametrize("fmt", ["extes", "esconv", "jsonl"])
def test_every_writable_file_format_is_guessed_back_from_what_it_wrote(tmp_path, fmt):
    dialogues = read_seed_folder()[:3]
    path = tmp_path / ("out.jsonl" if fmt == "jsonl" else "out.json")
    write_corpus(dialogues, path, fmt)
    assert detect_format(path) == fmt
    texts = [[(t.role, t.text) for t in d.turns] for d in dialogues]  # esconv reads labels in its own label set
    assert [[(t.role, t.text) for t in d.turns] for d in read_corpus(path).dialogues] == texts


def test_folders_are_recognized_by_their_files_not_their_names(tmp_path):
    assert detect_format(_seed_folder(tmp_path / "seeds.v2")) == "seeds"
    run = _seed_folder(tmp_path / "run.2024")  # a run folder that also holds a YAML file is still a run
    (run / "manifest.json").write_text("{}")
    write_corpus(read_seed_folder()[:2], run / "accepted.jsonl", "jsonl")
    assert detect_format(run) == "run"
    assert len(read_corpus(run).dialogues) == 2
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "dataset_info.json").write_text("{}")
    assert detect_format(tmp_path / "hf") == "hf"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither a Hugging Face dataset nor a seed folder; pass --from"):
        detect_format(tmp_path / "empty")


def test_unknown_names_and_kinds_are_one_line_errors(tmp_path):
    (tmp_path / "c.csv").write_text("a,b\n")
    with pytest.raises(InputError, match=r"c.csv: cannot tell the format from the name; pass --from \(extes, "):
        detect_format(tmp_path / "c.csv")
    with pytest.raises(InputError, match="no such file or folder"):
        read_corpus(tmp_path / "missing.json")
    with pytest.raises(InputError, match="--from seeds reads a folder, but this is a file"):
        read_corpus(tmp_path / "c.csv", "seeds")
    with pytest.raises(InputError, match="is a folder; --from jsonl reads a file"):
        read_corpus(tmp_path, "jsonl")
    with pytest.raises(InputError, match="--from 'csv' is not a corpus format"):
        read_corpus(tmp_path / "c.csv", "csv")
    with pytest.raises(InputError, match="--to 'seeds' is not a writable format; use one of extes, esconv, jsonl, hf"):
        write_corpus([], tmp_path / "x", "seeds")


def test_output_format_from_the_name(tmp_path):
    assert guess_output_format(tmp_path / "a.JSONL") == "jsonl"
    assert guess_output_format(tmp_path / "a.json") == "extes"  # not esconv: the first writable .json row
    assert guess_output_format(tmp_path / "folder") == "hf"
    with pytest.raises(InputError, match="a.tsv: cannot tell the output format from the name; pass --to"):
        guess_output_format(tmp_path / "a.tsv")

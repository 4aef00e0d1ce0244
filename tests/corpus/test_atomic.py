"""Output safety: no folder extes did not write is deleted or overwritten; devices and pipes are written in place."""

import json
import os
import stat
import threading

import pytest

from extes.corpus.atomic import MARKER, atomic_path, check_output_dir, write_text_atomic
from extes.corpus.seeds import seeds_dir
from extes.errors import OutputError


@pytest.fixture
def user_folder(tmp_path):
    """A folder of the user's own files, which nothing may touch."""
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("years of work")
    (d / "notes").mkdir()
    (d / "notes" / "a.txt").write_text("a")
    return d


def _intact(d):
    return (d / "thesis.tex").read_text() == "years of work" and (d / "notes" / "a.txt").read_text() == "a"


def test_convert_into_a_users_folder_is_refused_and_loses_nothing(cli, user_folder):
    code, _, err = cli("data", "convert", seeds_dir(), user_folder)  # a folder: format guessed as hf
    assert code == 2 and _intact(user_folder)
    assert "not an extes hf-dataset output" in err and "new or empty folder" in err and len(err.splitlines()) == 1
    code, _, err = cli("data", "convert", seeds_dir(), user_folder, "--to", "hf")
    assert code == 2 and _intact(user_folder)


def test_convert_replaces_its_own_previous_output(cli, tmp_path):
    out = tmp_path / "hf"
    assert cli("data", "convert", seeds_dir(), out)[0] == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "hf-dataset"
    (out / MARKER).unlink()  # a folder written before markers existed: recognized by its layout
    code, stdout, err = cli("data", "convert", seeds_dir(), out, "--json")
    assert code == 0, err and json.loads(stdout)["written"] > 100
    assert (out / MARKER).exists() and not list(tmp_path.glob(".hf.*"))
    code, _, err = cli("data", "convert", seeds_dir(), out, "--to", "jsonl")
    assert code == 2 and "is a folder" in err


def test_merge_into_a_users_folder_is_refused_before_loading(cli, user_folder, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    code, _, err = cli("tune", "merge", adapter, "--out", user_folder)
    assert code == 2 and _intact(user_folder) and "--out" in err and "not an extes merge output" in err


def test_every_folder_output_refuses_a_users_folder(cli, user_folder):
    (user_folder / "train.jsonl").write_text("my own split")
    cases = [("data", "split", seeds_dir(), user_folder),
             ("stats", seeds_dir(), "--out", user_folder),
             ("evaluate", "-m", "scripted", "--test", seeds_dir(), "--out", user_folder),
             ("synthesize", "-m", "scripted", "--target", "1", "--out", user_folder),
             ("compare-optimizers", "classifier", "-m", "scripted", "--optimizers", "labeled", "--out", user_folder)]
    for args in cases:
        code, _, err = cli(*args)
        assert code == 2 and "new or empty folder" in err, (args, err)
        assert _intact(user_folder) and (user_folder / "train.jsonl").read_text() == "my own split"
        assert sorted(p.name for p in user_folder.iterdir()) == ["notes", "thesis.tex", "train.jsonl"]


def test_a_folder_of_another_kind_is_refused(tmp_path, cli):
    out = tmp_path / "s"
    assert cli("data", "split", seeds_dir(), out)[0] == 0
    assert cli("data", "split", seeds_dir(), out)[0] == 0  # its own output: rewritten
    with pytest.raises(OutputError, match="holds an extes split output"):
        check_output_dir(out, "stats")


def test_an_empty_folder_is_used(tmp_path):
    (tmp_path / "e").mkdir()
    with atomic_path(tmp_path / "e", is_dir=True, kind="x") as tmp:
        (tmp / "f").write_text("1")
    assert (tmp_path / "e" / "f").read_text() == "1"


def test_a_fifo_is_written_in_place_not_renamed_over(tmp_path, cli):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, encoding="utf-8").read()), daemon=True)
    reader.start()
    code, _, err = cli("data", "convert", seeds_dir(), fifo, "--to", "jsonl")
    reader.join(10)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert len(got[0].splitlines()) > 100


def test_a_full_device_is_kept_and_the_error_is_one_line(tmp_path, cli):
    full = tmp_path / "full"  # a private /dev/full (char 1,7), so that old code could only ever replace this one
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    code, _, err = cli("data", "convert", seeds_dir(), full, "--to", "jsonl")
    assert stat.S_ISCHR(os.stat(full).st_mode), "the device was replaced by a regular file"
    assert code == 2 and "No space left on device" in err and len(err.splitlines()) == 1


def test_a_symlink_to_a_file_keeps_the_link(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"

"""The real CLI, in-process: results on stdout, one-line errors with exit code 2, nothing half-written."""

import json
import re
from pathlib import Path

from extes.corpus.seeds import seeds_dir
from helpers import extes_record, good_content, write_json

ROOT = Path(__file__).resolve().parents[1]


def test_assets_validate_json(cli):
    code, out, err = cli("assets", "validate", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["scenarios"] == 36 and obj["strategies"] == 16
    assert obj["seeds"] >= 87 and obj["min_seeds_per_scenario"] >= 2 and obj["min_strategy_count"] >= 10
    assert obj["problems"] == []


def test_convert_failed_esconv(cli, esconv_file, tmp_path):
    out = tmp_path / "out.jsonl"
    code, stdout, _ = cli("data", "convert", esconv_file, out, "--from", "esconv", "--to", "jsonl", "--json")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["written"] == 196 and summary["flagged"] == {"Direct Guidance": 11}
    assert len(out.read_text().splitlines()) == 196
    code, stdout, _ = cli("data", "convert", esconv_file, tmp_path / "o2.jsonl", "--from", "esconv")
    assert "wrote 196 dialogues" in stdout and "'Direct Guidance' x11" in stdout


def _one_line_error(code, out, err, *needles):
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for n in needles:
        assert n in lines[0], lines[0]


def test_truncated_json_one_line_error_and_no_output(cli, tmp_path):
    text = json.dumps([extes_record(good_content()) for _ in range(5)], indent=1)
    src = tmp_path / "cut.json"
    src.write_text(text[:-300])
    dst = tmp_path / "out.jsonl"
    _one_line_error(*cli("data", "convert", src, dst, "--from", "extes"), "cut.json", "record 4", "line")
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_jsonl_broken_line_one_line_error_and_no_output(cli, tmp_path):
    src = tmp_path / "c.jsonl"
    assert cli("data", "convert", seeds_dir(), src, "--to", "jsonl")[0] == 0
    lines = src.read_text().splitlines()
    lines[6] = lines[6][:-20]
    src.write_text("\n".join(lines) + "\n")
    dst = tmp_path / "out.json"
    _one_line_error(*cli("data", "convert", src, dst), "c.jsonl", "record 6", "line 7")
    assert not dst.exists()
    code, out, err = cli("data", "convert", src, dst, "--skip-invalid")
    assert code == 0 and "skipped 1" in out and "record 6 (line 7)" in err
    assert len(json.loads(dst.read_text())) == len(lines) - 1


def test_wrong_from_unknown_strategy_and_no_turns(cli, tmp_path):
    src = write_json(tmp_path / "x.json", [extes_record(good_content())])
    _one_line_error(*cli("data", "convert", src, tmp_path / "o.jsonl", "--from", "esconv"), "use --from extes")
    content = good_content()
    content[1]["AI Strategy"] = "Hypnosis"
    write_json(src, [extes_record(content)])
    _one_line_error(*cli("data", "convert", src, tmp_path / "o.jsonl"), "record 0", "unknown strategy 'Hypnosis'")
    write_json(src, [extes_record([])])
    _one_line_error(*cli("data", "convert", src, tmp_path / "o.jsonl"), "record 0", "no turns")
    assert not (tmp_path / "o.jsonl").exists()
    code, _, err = cli("data", "convert", src, tmp_path / "o.jsonl", "--from", "xml")
    assert code == 2 and "--from" in err


def test_split_cli(cli, tmp_path):
    code, out, _ = cli("data", "split", seeds_dir(), tmp_path / "s", "--seed", "5", "--json")
    assert code == 0
    summary = json.loads(out)
    files = {k: Path(v) for k, v in summary["files"].items()}
    n = {k: len(p.read_text().splitlines()) for k, p in files.items()}
    assert n == summary["counts"] and sum(n.values()) == summary["dialogues"]
    names = sorted(p.name for p in (tmp_path / "s").iterdir())  # no temp file left; the marker of an extes output
    assert names == [".extes-output.json", "test.jsonl", "train.jsonl", "valid.jsonl"]
    again = tmp_path / "s2"
    cli("data", "split", seeds_dir(), again, "--seed", "5")
    assert all((again / p.name).read_text() == p.read_text() for p in files.values())


def test_stats_cli(cli, esconv_file):
    code, out, _ = cli("stats", esconv_file, "--json")
    obj = json.loads(out)
    assert code == 0 and obj["dialogues"] == 196 and obj["utterances"] == 5230


def test_every_command_has_examples_in_help(cli):
    from extes.cli import main

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    for path, _cmd in walk(main, []):
        code, out, _ = cli(*path, "--help")
        assert code == 0 and "Examples:" in out, path


def test_readme_commands_exist(cli):
    """Every `extes ...` command the README shows is a real command (keeps the README's list true)."""
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"^\s*(?:\$ )?extes ((?:[a-z-]+ ?){1,2})", readme, flags=re.M))
    assert shown, "README shows no extes command"
    for words in shown:
        words = words.split()
        code, out, err = cli(*words, "--help")
        if code != 0:  # a one-word command followed by an argument
            code, out, err = cli(words[0], "--help")
        assert code == 0, (words, err)

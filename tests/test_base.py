"""The base layer (base.py): reading a YAML asset never ends in anything but a one-line AssetError."""

import pytest

from extes.base import read_yaml
from extes.errors import AssetError

DEEP = 50_000  # PyYAML composes recursively: far past any recursion limit


def test_deeply_nested_yaml_is_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\nscene: a\ndialogues: " + "[" * DEEP + "]" * DEEP + "\n")
    with pytest.raises(AssetError, match=r"deep.yaml: invalid YAML \(nested too deeply to read\); flatten") as e:
        read_yaml(path)
    assert "\n" not in str(e.value)


def test_a_deep_seed_file_fails_the_cli_with_exit_2_and_keeps_the_output_unwritten(tmp_path, cli):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "x.yaml").write_text("[" * DEEP + "]" * DEEP + "\n")
    code, _, err = cli("data", "convert", seeds, tmp_path / "out.jsonl", "--from", "seeds")
    assert code == 2 and "x.yaml: invalid YAML (nested too deeply to read)" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out.jsonl").exists()

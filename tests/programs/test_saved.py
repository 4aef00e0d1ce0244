"""One load policy for saved programs: a saved Supporter loads back; a broken file is one line naming the option."""

import pytest

from extes.errors import InputError
from extes.programs.arena_judge import PairwiseJudge
from extes.programs.saved import load_saved
from extes.programs.supporter import Supporter, load_supporter


def test_a_saved_supporter_loads_back(tmp_path):
    path = tmp_path / "supporter.json"
    Supporter().save(str(path))
    assert isinstance(load_supporter(path), Supporter)


@pytest.mark.parametrize("text", ["{not json", '{"unrelated": 1}'])
def test_a_broken_file_is_one_line_naming_the_option_and_the_file(tmp_path, text):
    path = tmp_path / "judge.json"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_saved(PairwiseJudge(), path, "--judge-program", "a compiled judge")
    assert str(e.value).startswith(f"--judge-program {path}: not a compiled judge (") and "\n" not in str(e.value)
    with pytest.raises(InputError, match=r"^--supporters: program .*: not a saved Supporter \("):
        load_supporter(path, "--supporters: program")

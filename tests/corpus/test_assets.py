import shutil

import pytest

from extes.corpus import assets
from extes.corpus.assets import load_taxonomy
from extes.corpus.prompts import render_self_chat, strategy_list
from extes.errors import AssetError
from extes.signatures.dialogue import Dialogue, Turn

ABBREVIATIONS = "RS Cla EV ES Aff OH AJC SO CP PDP RNT SI NE PSP SM Oth".split()


def test_taxonomy_has_the_papers_16_strategies_and_36_scenarios():
    tax = load_taxonomy()
    assert [s.abbreviation for s in tax.strategies] == ABBREVIATIONS
    assert len(tax.scenarios) == 36
    # Table 1 keeps near-duplicates; so do we.
    assert {"Academic Stress", "Academic Stress or Pressure"} <= set(tax.scenario_names)
    assert all(s.examples for s in tax.scenarios)


def test_paper_counts_are_the_printed_tables():
    tax = load_taxonomy()
    assert tax.strategy("Emotional Validation").paper_count == 19367
    assert tax.scenario("Conflicts or Communication Problems").paper_count == 1109
    # The printed rows add up to within rounding of the paper's totals (97,893 turns, 11,177 dialogues).
    assert abs(sum(s.paper_count for s in tax.strategies) - 97893) <= 5
    assert abs(sum(s.paper_count for s in tax.scenarios) - 11177) <= 10
    assert abs(sum(s.paper_proportion for s in tax.strategies) - 1) < 0.02


def _copy_assets(tmp_path):
    dst = tmp_path / "assets"
    shutil.copytree(assets.assets_dir(), dst, ignore=shutil.ignore_patterns("seeds", "__pycache__"))
    return dst


def test_broken_yaml_names_the_file_and_line(tmp_path, monkeypatch):
    dst = _copy_assets(tmp_path)
    (dst / "strategies.yaml").write_text("version: 1\nstrategies: [\n  - name: x\n")
    monkeypatch.setenv("EXTES_ASSETS", str(dst))
    with pytest.raises(AssetError, match=r"strategies.yaml:.*line \d+.*invalid YAML"):
        load_taxonomy()


def test_wrong_version_and_bad_field_are_named(tmp_path, monkeypatch):
    dst = _copy_assets(tmp_path)
    text = (dst / "scenarios.yaml").read_text()
    (dst / "scenarios.yaml").write_text(text.replace("version: 1", "version: 7"))
    monkeypatch.setenv("EXTES_ASSETS", str(dst))
    with pytest.raises(AssetError, match="version 7 is not supported"):
        load_taxonomy()
    (dst / "scenarios.yaml").write_text(text.replace("paper_count: 710", "paper_count: -3"))
    with pytest.raises(AssetError, match=r"scenarios\[0\]\.paper_count"):
        load_taxonomy()


def test_self_chat_prompt_lists_all_16_strategies_numbered():
    listing = strategy_list()
    for i, name in enumerate(load_taxonomy().strategy_names, 1):
        assert f"{i}. {name}:" in listing
    seed = Dialogue(id="x", scene="Academic Stress", description="d",
                    turns=[Turn(role="user", text="hi"), Turn(role="assistant", text="hello", strategy="Others")])
    prompt = render_self_chat("Academic Stress", seed)
    assert '"Academic Stress"' in prompt and '"AI Strategy": "Others"' in prompt and "16. Others" in prompt
    assert "$" not in prompt

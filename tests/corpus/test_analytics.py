"""Every number of Tables 1, 2, 3 and 5 and every phase count on a hand-built fixture, against hand computation."""

import json

import pytest

from extes.corpus.analytics import analyse, merged, phase
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue, Meta, Turn

EV, RS, SO = "Emotional Validation", "Reflective Statements", "Suggest Options"
AFF, CLA = "Affirmation", "Clarification"


def dlg(i, scene, strategies, texts=None):
    turns = []
    for k, s in enumerate(strategies):
        turns.append(Turn(role="user", text=(texts or {}).get(2 * k, "I feel sad today.")))  # I feel sad today . = 5
        turns.append(Turn(role="assistant", text="That is hard.", strategy=s))  # That is hard . = 4
    return Dialogue(id=f"d{i}", scene=scene, turns=turns, meta=Meta())


@pytest.fixture
def corpus():
    return [
        dlg(1, "A", [EV, RS, EV, SO]),            # 8 utterances; merged EV RS EV SO
        dlg(2, "A", [EV, EV, RS, SO, None]),      # 10 utterances; one unlabelled; merged EV RS SO
        dlg(3, "B", [CLA, AFF, "Telepathy"]),     # 6 utterances; one unknown label
    ]


def test_phase_formula():
    assert [phase(k, 8) for k in range(1, 9)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [phase(k, 6) for k in range(1, 7)] == [1, 2, 2, 3, 4, 4]
    assert merged([EV, EV, RS, RS, EV]) == [EV, RS, EV]


def test_tables_1_2_3(corpus):
    s = analyse(corpus, name="fixture")
    assert s["dialogues"] == 3 and s["utterances"] == 24
    assert s["avg_utterances_per_dialogue"] == 8.0
    assert s["avg_utterance_length"] == round((12 * 5 + 12 * 4) / 24, 2)  # 4.5
    assert s["scenarios"] == {"A": 2, "B": 1} and s["scenario_proportions"] == {"A": 0.6667, "B": 0.3333}
    assert s["strategies"] == {EV: 4, RS: 2, SO: 2, CLA: 1, AFF: 1}
    assert s["strategy_proportions"][EV] == 0.4
    assert s["unlabelled_assistant_turns"] == 1 and s["unknown_labels"] == {"Telepathy": 1}
    assert s["num_strategies"] == 5 and s["num_scenarios"] == 2


def test_phases(corpus):
    s = analyse(corpus)
    # d1 (N=8): assistant at k=2,4,6,8 -> phases 1,2,3,4: EV, RS, EV, SO
    # d2 (N=10): k=2,4,6,8 -> ceil(0.8)=1, ceil(1.6)=2, ceil(2.4)=3, ceil(3.2)=4: EV, EV, RS, SO (k=10 unlabelled)
    # d3 (N=6): k=2,4 -> phases 2, 3: CLA, AFF (k=6 unknown, not counted)
    assert s["phases"] == {"1": {EV: 2}, "2": {RS: 1, EV: 1, CLA: 1}, "3": {EV: 1, RS: 1, AFF: 1}, "4": {SO: 2}}


def test_table_5_paths(corpus):
    s = analyse(corpus)
    # merged sequences: d1 EV RS EV SO; d2 EV RS SO; d3 CLA AFF (unknown label dropped)
    # 3-hop windows: (EV RS EV), (RS EV SO), (EV RS SO) -> 3 windows, 333.33 per mille each
    three = {tuple(p): pm for p, pm in s["transitions"]["3"]}
    assert three == {(EV, RS, EV): 333.33, (RS, EV, SO): 333.33, (EV, RS, SO): 333.33}
    assert s["transitions"]["4"] == [[[EV, RS, EV, SO], 1000.0]]
    assert s["transitions"]["5"] == []
    assert s["transition_matrix"][f"{EV} -> {RS}"] == 2 and s["transition_matrix"][f"{EV} -> {EV}"] == 1


def test_extras(corpus):
    s = analyse(corpus)
    # unigram types: i feel sad today . that is hard = 8 of 12*5 + 12*4 = 108 tokens
    assert s["distinct"]["dist1"] == round(8 / 108, 4)
    # bigram types: 4 in "i feel sad today ." and 3 in "that is hard ." = 7 of 12*4 + 12*3 = 84
    assert s["distinct"]["dist2"] == round(7 / 84, 4)
    assert 0 < s["mean_strategy_entropy_bits"] < 2


def test_no_labels_is_an_error():
    d = Dialogue(id="x", scene="s", turns=[Turn(role="user", text="hi"), Turn(role="assistant", text="hello")])
    with pytest.raises(InputError, match="no labelled assistant turn"):
        analyse([d], name="c.jsonl")


def test_report_on_seeds_and_esconv(cli, esconv_file, tmp_path):
    from extes.corpus.seeds import seeds_dir

    code, out, err = cli("stats", seeds_dir(), esconv_file, "--out", tmp_path, "--format", "json")
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["dialogues"] for r in rows] == [108, 196]
    for key in ("dialogues", "utterances", "avg_utterances_per_dialogue", "avg_utterance_length", "scenarios",
                "strategies", "phases", "transitions"):
        assert key in rows[0]
    assert all(len(rows[0]["transitions"][h]) >= 5 for h in ("3", "4", "5"))
    report = (tmp_path / "report.md").read_text()
    for png in ("seeds_phases.png", "seeds_transitions.png", "failedesconv_phases.png", "failedesconv_transitions.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert f"]({png})" in report
    assert "| Dialogues | 108 | 196 |" in report
    assert (tmp_path / "seeds_phases.csv").read_text().startswith("strategy,phase1,phase2,phase3,phase4")

"""Role cards from every source: checked, deduplicated, crisis cards marked and tripping the crisis rules."""

import json

from extes.programs.arena_cards import (
    build_candidates,
    card_problems,
    cards_from_esconv,
    crisis_cards,
    read_cards,
    select_cards,
)
from extes.programs.lm.scripted import ScriptedLM
from extes.signatures.arena import RoleCard


def test_cards_from_esconv_carry_situation_emotion_and_mapped_scene(esconv_file):
    cards = cards_from_esconv(esconv_file)
    rec = json.loads(esconv_file.read_text())[0]
    assert cards[0].situation == rec["situation"].strip() and cards[0].emotion == rec["emotion_type"]
    assert cards[0].scene == "Depression and Low Mood" and cards[0].source == "esconv"
    assert 1 <= cards[0].intensity <= 5


def test_crisis_cards_are_marked_and_valid():
    cards = crisis_cards()
    assert cards and all(c.crisis and c.source == "crisis" for c in cards)
    assert all(card_problems(c) == [] for c in cards)
    broken = cards[0].model_copy(update={"opening": "I had a long day at work."})
    assert [p.code for p in card_problems(broken)] == ["crisis_opening"]


def test_select_dedups_and_rejects_with_reason_codes():
    base = RoleCard(id="a", scene="Academic Stress", situation="A student failed two midterms and fears her parents.",
                    emotion="anxiety", intensity=3, reveal_first="the midterms")
    dup = base.model_copy(update={"id": "b"})
    vague = base.model_copy(update={"id": "c", "situation": "exams"})
    alien = base.model_copy(update={"id": "d", "scene": "Space Travel", "situation": "An astronaut misses home a lot."})
    kept, rejected = select_cards([base, dup, vague, alien], 4, crisis=0)
    assert [c.id for c in kept] == ["a"]
    assert sorted(r["reasons"][0] for r in rejected) == ["near_duplicate", "unknown_scene", "vague_situation"]


def test_cli_writes_reviewable_cards_from_seeds_esconv_and_an_lm(cli, tmp_path, esconv_file):
    out = tmp_path / "cards.jsonl"
    code, stdout, err = cli("arena", "cards", "--from", "seeds", esconv_file, "--n", "10", "--crisis", "2",
                            "--out", out, "--json")
    assert code == 0, err
    s = json.loads(stdout)
    cards = read_cards(out)
    assert s["cards"] == len(cards) == 10 and sum(c.crisis for c in cards) == 2
    assert len({c.situation for c in cards}) == 10
    lm_cards = build_candidates(["lm"], lm=ScriptedLM(), scenes=["Academic Stress", "Caregiver Support"])
    assert [c.source for c in lm_cards if not c.crisis] == ["lm", "lm"]
    assert all(card_problems(c) == [] for c in lm_cards)

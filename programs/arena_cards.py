"""Role cards for the arena: drawn from the seed dialogues (and the 36 scenarios), from ESConv's situation /
emotion_type / problem_type, written by an LM from a scene, or the hand-written crisis cards of assets/arena/.

Every card is checked (reason codes below) and deduplicated by situation (MinHash, corpus/dedup.py); the file is
plain JSONL, one `RoleCard` a line, to be read and edited by a person, and `check_cards` re-checks an edited file.

| code | check |
|---|---|
| schema | the line makes a RoleCard |
| unknown_scene | the scene is one of the 36 (ESConv cards carry the mapped scene) |
| vague_situation | the situation has at least 6 words |
| crisis_opening | a crisis card has an opening that trips the crisis rules (so the arena can check the escalation) |
| near_duplicate | 3-gram Jaccard of the situation with an earlier card <= 0.5 |
| duplicate_id | ids are unique |
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import dspy
from pydantic import ValidationError

from extes.corpus.assets import assets_dir, load_taxonomy, read_yaml
from extes.corpus.dedup import DedupIndex
from extes.corpus.formats import read_corpus
from extes.corpus.seeds import read_seed_folder
from extes.corpus.validation import Problem
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.safety import SafetyChecker
from extes.signatures.arena import RoleCard
from extes.signatures.dialogue import Dialogue
from extes.signatures.synthesis import DescribeSituation

DUP = 0.5


def card_assets() -> dict:
    return read_yaml(assets_dir() / "arena" / "cards.yaml")


def _style(text: str) -> str:
    words = text.split()
    if text == text.lower():
        return "short lowercase texts, little punctuation"
    return "short chat messages" if len(words) < 15 else "full, detailed sentences"


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]


def card_from_dialogue(d: Dialogue, emotion: str | None = None, intensity: int = 3) -> RoleCard:
    """A card from a dialogue with a description: the first user turn is what they say first, a later one what
    they hold back."""
    a = card_assets()
    users = [t.text for t in d.turns if t.role == "user"]
    # Greetings ("hey", "Hello.") say nothing about the problem; the first real message is what they reveal.
    first = next((u for u in users if len(u.split()) >= 5), users[0] if users else "")
    esconv = (d.meta.model_extra or {}).get("esconv") or {}
    return RoleCard(
        id=f"card-{d.id}", scene=d.scene, situation=d.description or (users[0] if users else d.scene),
        emotion=emotion or esconv.get("emotion_type") or a["scene_emotions"].get(d.scene, a["default_emotion"]),
        intensity=intensity, reveal_first=_first_sentence(first) if first else d.description,
        withhold_first=users[len(users) // 2] if len(users) > 2 else "", style=_style(" ".join(users[:3])),
        source="seed" if d.meta.source == "seed" else "manual", origin=d.meta.origin or d.id,
    )


def cards_from_esconv(path: Path) -> list[RoleCard]:
    """ESConv records (ESConv.json / FailedESConv.json) → cards from their situation, emotion_type, problem_type."""
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read it as ESConv JSON ({str(e)[:80]}); give ESConv.json") from None
    scenes = card_assets()["esconv_scenes"]
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not r.get("situation"):
            raise InputError(f"{path}: record {i} has no situation; give the ESConv release file")
        survey = (r.get("survey_score") or {}).get("seeker") or {}
        try:
            intensity = min(5, max(1, int(survey.get("initial_emotion_intensity") or 3)))
        except ValueError:
            intensity = 3
        first = next((t["content"].strip() for t in r.get("dialog", []) if t.get("speaker") in ("seeker", "speaker")
                      and len(t["content"].split()) > 4), r["situation"])
        out.append(RoleCard(
            id=f"card-esconv-{i:04d}", scene=scenes.get(r.get("problem_type"), "Depression and Low Mood"),
            situation=r["situation"].strip(), emotion=r.get("emotion_type") or "sadness", intensity=intensity,
            reveal_first=_first_sentence(first), withhold_first=f"that it is about {r.get('problem_type', 'this')}",
            style=_style(first), source="esconv", origin=f"{path}#{i}"))
    return out


def cards_from_scenarios() -> list[RoleCard]:
    """One card per scenario example in assets/scenarios.yaml (Appendix D), for scenes without a richer source."""
    a = card_assets()
    out = []
    for s in load_taxonomy().scenarios:
        for k, ex in enumerate(s.examples):
            out.append(RoleCard(id=f"card-scenario-{_slug(s.name)}-{k}", scene=s.name, situation=ex,
                                emotion=a["scene_emotions"].get(s.name, a["default_emotion"]), intensity=3,
                                reveal_first=ex, source="scenario", origin=f"assets/scenarios.yaml:{s.name}"))
    return out


def crisis_cards() -> list[RoleCard]:
    return [RoleCard(**c, source="crisis", crisis=True, origin="assets/arena/cards.yaml")
            for c in card_assets()["crisis_cards"]]


def cards_from_lm(lm, scenes: list[str], seed: int = 0) -> list[RoleCard]:
    """Cards whose situation an LM wrote for each scene (the data engine's DescribeSituation)."""
    a, tax = card_assets(), load_taxonomy()
    describe = dspy.Predict(DescribeSituation)
    out = []
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        for i, scene in enumerate(scenes):
            ex = "; ".join(tax.scenario(scene).examples)
            text = describe(scene=scene, scene_examples=ex, config={"rollout_id": seed * 1000 + i}).description
            out.append(RoleCard(id=f"card-lm-{i:04d}", scene=scene, situation=text.strip(),
                                emotion=a["scene_emotions"].get(scene, a["default_emotion"]), intensity=3,
                                reveal_first=_first_sentence(text), source="lm", origin=f"lm:{scene}"))
    return out


def card_problems(card: RoleCard, checker: SafetyChecker | None = None) -> list[Problem]:
    """Problems of one card on its own (dedup is over the set, in `select_cards`)."""
    problems = []
    if card.scene not in load_taxonomy().scenario_names:
        problems.append(Problem("unknown_scene", "hard", f"{card.id}: scene {card.scene!r} is not one of the 36"))
    if len(card.situation.split()) < 6:
        problems.append(Problem("vague_situation", "hard", f"{card.id}: the situation has fewer than 6 words"))
    if card.crisis:
        checker = checker or SafetyChecker(rules_only=True)
        if not card.opening or not checker.check(card.opening).crisis:
            problems.append(Problem("crisis_opening", "hard",
                                    f"{card.id}: a crisis card needs an opening that trips the crisis rules"))
    return problems


def select_cards(candidates: list[RoleCard], n: int, *, seed: int = 0, crisis: int = 1) -> tuple[list, list]:
    """(kept cards, rejected [{card, reasons}]): `crisis` crisis cards plus n - crisis others, shuffled by seed,
    each checked and near-duplicates of a kept card dropped."""
    rng = random.Random(f"cards:{seed}")
    pool_crisis = [c for c in candidates if c.crisis]
    pool = [c for c in candidates if not c.crisis]
    rng.shuffle(pool)
    kept, rejected, ids, index = [], [], set(), DedupIndex()
    want_crisis = min(crisis, len(pool_crisis), n)
    for card in pool_crisis[:want_crisis] + pool:
        if len(kept) >= n:
            break
        problems = card_problems(card)
        near, sim = index.nearest(card.situation)
        if near is not None and sim > DUP:
            problems.append(Problem("near_duplicate", "hard", f"{card.id}: situation {sim:.2f} like {near}"))
        if card.id in ids:
            problems.append(Problem("duplicate_id", "hard", f"{card.id}: id used twice"))
        if problems:
            rejected.append({"card": card.model_dump(), "reasons": [p.code for p in problems],
                             "detail": "; ".join(p.message for p in problems)})
            continue
        kept.append(card)
        ids.add(card.id)
        index.add(card.id, card.situation)
    return kept, rejected


def build_candidates(sources: list[str], *, lm=None, scenes: list[str] | None = None, seed: int = 0) -> list:
    """Candidate cards from every --from source: `seeds`, `scenarios`, `lm`, an ESConv JSON or any corpus path."""
    out = list(crisis_cards())
    for src in sources:
        if src == "seeds":
            out += [card_from_dialogue(d) for d in read_seed_folder()]
        elif src == "scenarios":
            out += cards_from_scenarios()
        elif src == "lm":
            if lm is None:
                raise InputError("--from lm needs -m MODEL: the LM that writes the situations")
            out += cards_from_lm(lm, scenes or load_taxonomy().scenario_names, seed)
        elif _is_esconv(Path(src)):
            out += cards_from_esconv(Path(src))
        else:
            out += [card_from_dialogue(d) for d in read_corpus(Path(src)).dialogues if d.description]
    return out


def _is_esconv(path: Path) -> bool:
    if path.suffix != ".json" or not path.is_file():
        return False
    with open(path, encoding="utf-8") as fh:
        head = fh.read(4096)
    return '"situation"' in head and '"dialog"' in head


def read_cards(path: Path) -> list[RoleCard]:
    """A cards JSONL file; a bad line names the file, the line and the fix."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"--cards {path}: no such file; write one with `extes arena cards`") from None
    cards = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            cards.append(RoleCard.model_validate_json(line))
        except ValidationError as e:
            err = e.errors()[0]
            raise InputError(f"{path}: line {i}: {'.'.join(map(str, err['loc']))}: {err['msg']}; "
                             "fix the card (see RoleCard in signatures/arena.py)") from None
    if not cards:
        raise InputError(f"{path}: no cards")
    return cards


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")

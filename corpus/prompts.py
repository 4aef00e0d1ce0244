"""Render the paper's self-chat template (Appendix C, cleaned up: all 16 strategies, numbered 1-16)."""

from __future__ import annotations

import json
from string import Template

from extes.corpus.assets import load_taxonomy, prompt_text
from extes.corpus.formats.extes_json import dialogue_to_record
from extes.signatures.dialogue import Dialogue


def strategy_list() -> str:
    """`1. Reflective Statements: Repeat or rephrase ...` for all 16 strategies, one per line."""
    tax = load_taxonomy()
    return "\n".join(f"{i}. {s.name}: {s.definition}" for i, s in enumerate(tax.strategies, 1))


def render_self_chat(scene: str, seed: Dialogue) -> str:
    """The self-chat prompt for one scene with one seed dialogue as the example (ExTES release JSON)."""

    tax = load_taxonomy()
    examples = "; ".join(tax.scenario(scene).examples)
    record = dialogue_to_record(seed, with_id=False)
    return Template(prompt_text("self_chat.txt")).substitute(
        strategy_list=strategy_list(),
        seed_example=json.dumps(record, ensure_ascii=False, indent=1),
        scene=scene,
        scene_examples=examples,
    )

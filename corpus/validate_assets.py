"""`extes assets validate`: every asset loads, and the seed set has the shape and coverage the paper's has."""

from __future__ import annotations

from typing import Any

from extes.corpus.assets import load_esconv_strategies, load_extes_to_esconv, load_taxonomy, prompt_text
from extes.corpus.checks import check_seed_set, coverage_problems
from extes.corpus.safety_resources import resources_problems
from extes.corpus.seeds import read_seed_file, seeds_dir
from extes.errors import ExtesError

PROMPTS = ["self_chat.txt"]


def validate_assets() -> dict[str, Any]:
    """Validate the asset folder; returns the headline numbers and a list of one-line problems."""
    tax = load_taxonomy()
    load_esconv_strategies()
    load_extes_to_esconv()
    problems: list[str] = []
    for name in PROMPTS:
        try:
            prompt_text(name)
        except ExtesError as e:
            problems.append(str(e))
    seeds = []
    for f in sorted(seeds_dir().glob("*.yaml")):
        try:
            seeds += read_seed_file(f)
        except ExtesError as e:
            problems.append(str(e))
    rep = check_seed_set(seeds, tax)
    problems += rep.problems + coverage_problems(rep) + resources_problems()
    return {
        "scenarios": len(tax.scenarios),
        "strategies": len(tax.strategies),
        "seeds": rep.seeds,
        "min_seeds_per_scenario": min(rep.per_scenario.values()) if rep.per_scenario else 0,
        "min_strategy_count": min(rep.per_strategy.values()) if rep.per_strategy else 0,
        "seeds_per_scenario": rep.per_scenario,
        "strategy_counts": rep.per_strategy,
        "problems": problems,
    }

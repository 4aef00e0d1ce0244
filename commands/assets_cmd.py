"""`extes assets ...`: the shipped taxonomy, prompts and seed dialogues."""

from __future__ import annotations

import sys

import click

from extes.commands.common import emit_json, json_option
from extes.corpus.validate_assets import validate_assets


@click.group()
def assets() -> None:
    """The shipped taxonomy (16 strategies, 36 scenarios), prompt templates and seed dialogues."""


@assets.command("validate")
@json_option
def validate(as_json: bool) -> None:
    """Validate every asset and print the seed-set numbers; exit 2 with one line per problem.

    \b
    Examples:
      extes assets validate
      extes assets validate --json
      EXTES_ASSETS=./my-assets extes assets validate
    """
    result = validate_assets()
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"{result['scenarios']} scenarios, {result['strategies']} strategies, {result['seeds']} seed dialogues "
            f"(min {result['min_seeds_per_scenario']} per scenario, every strategy used at least "
            f"{result['min_strategy_count']} times)"
        )
    for p in result["problems"]:
        click.echo(f"Error: {p}", err=True)
    if result["problems"]:
        sys.exit(2)

"""`extes reply`: one strategy-conditioned reply from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import (
    POSITIVE_INT,
    adapter_option,
    api_base_option,
    emit_json,
    json_option,
    locale_option,
    model_option,
    verbose_option,
)


@click.command("reply")
@click.argument("message")
@click.option("--strategy", help="Use this strategy (name or abbreviation) instead of choosing one.")
@model_option()
@adapter_option
@api_base_option
@click.option("--history", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Earlier turns: a transcript JSONL or a JSON list of {role, text}.")
@locale_option
@click.option("--program", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A compiled Supporter (JSON from `extes compile supporter`).")
@click.option("--max-tokens", type=POSITIVE_INT, default=160, show_default=True, help="Longest reply, in tokens.")
@verbose_option
@json_option
def reply(message, strategy, model, adapter, api_base, history, locale, program, max_tokens, as_json) -> None:
    """Reply to MESSAGE as an emotional-support assistant: the strategy, then the reply.

    \b
    Examples:
      extes reply "I failed my exam again and I feel worthless"
      extes reply "I failed my exam again" --strategy "Suggest Options" --json
      extes reply "My dog died" -m openai/gpt-4o-mini
      extes reply "Thanks, that helps" --history chat.jsonl --adapter runs/lora
    """
    from extes.programs.lm import load_lm  # lazy: programs.lm imports dspy
    from extes.programs.runtime import canonical_strategy, check_message, read_history, respond

    check_message(message)
    canonical_strategy(strategy)
    turns = read_history(history)
    lm = load_lm(model, adapter=str(adapter) if adapter else None, api_base=api_base, max_tokens=max_tokens)
    from extes.programs.supporter import load_supporter

    supporter = load_supporter(program) if program else None
    out = respond(lm, turns, message, strategy=strategy, locale=locale, supporter=supporter)
    if as_json:
        emit_json({"model": model, **out})
    elif out["crisis"]:
        click.echo(out["reply"])
    else:
        click.echo(f"[{out['strategy']}] {out['reply']}")

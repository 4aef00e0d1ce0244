"""`extes safety ...`: the crisis-safety layer on one message or a labelled set."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from extes.commands.common import emit_json, json_option


@click.group()
def safety() -> None:
    """Check messages for crisis signals (suicide, self-harm, harm to others, abuse, medical emergency)."""


@safety.command("check")
@click.argument("text")
@click.option("--locale", default=None, help="Locale of the escalation message (us, intl).")
@json_option
def check(text, locale, as_json) -> None:
    """Check TEXT; exit 0 either way, the verdict is the output.

    \b
    Examples:
      extes safety check "this exam is killing me" --json
      extes safety check "I've been giving my things away" --locale us
    """
    from extes.programs.safety import default_checker, escalation_message

    verdict = default_checker().check(text)
    out = verdict.to_dict()
    if verdict.crisis:
        out["escalation"] = escalation_message(locale)
    if as_json:
        emit_json(out)
    else:
        msg = f"crisis: {verdict.category} (matched {verdict.matched!r})" if verdict.crisis else "no crisis signal"
        click.echo(msg)


@safety.command("eval")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--show-errors", is_flag=True, help="List misses and false alarms on stderr.")
@json_option
def evaluate_cmd(file, show_errors, as_json) -> None:
    """Recall and precision of the crisis flag on FILE (JSONL lines {"text": ..., "crisis": true|false}).

    \b
    Examples:
      extes safety eval assets/safety/labelled.jsonl --json
      extes safety eval my_messages.jsonl --show-errors
    """
    from extes.programs.safety import evaluate, load_labelled

    result = evaluate(load_labelled(file))
    if show_errors:
        for m in result["misses"]:
            click.echo(f"miss: {m}", err=True)
        for m in result["false_alarms"]:
            click.echo(f"false alarm: {m}", err=True)
    summary = {k: v for k, v in result.items() if k not in ("misses", "false_alarms")}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"n {summary['n']}: recall {summary['recall']:.3f}, precision {summary['precision']:.3f} "
                   f"(tp {summary['tp']}, fp {summary['fp']}, fn {summary['fn']}, tn {summary['tn']})")
    sys.exit(0)

"""`extes safety ...`: the crisis-safety layer on one message or a labelled set."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from extes.commands.common import emit_json, json_option


@click.group()
def safety() -> None:
    """Check messages for crisis signals (suicide, self-harm, harm to others, abuse, medical emergency)."""


rules_option = click.option("--rules-only", is_flag=True, help="Skip the learned classifier (rules alone).")


@safety.command("check")
@click.argument("text")
@rules_option
@click.option("--locale", default=None, help="Locale of the escalation message (us, intl).")
@json_option
def check(text, rules_only, locale, as_json) -> None:
    """Check TEXT; exit 0 either way, the verdict is the output.

    \b
    Examples:
      extes safety check "this exam is killing me" --json
      extes safety check "I've been giving my things away" --locale us
    """
    from extes.errors import InputError
    from extes.programs.safety import default_checker, escalation_message

    if not text.strip():
        raise InputError('TEXT is empty; give the message to check, e.g. extes safety check "I feel hopeless"')
    verdict = default_checker(rules_only).check(text)
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
@rules_option
@json_option
def evaluate_cmd(file, show_errors, rules_only, as_json) -> None:
    """Recall and precision of the crisis flag on FILE (JSONL lines {"text": ..., "crisis": true|false}).

    \b
    Examples:
      extes safety eval assets/safety/labelled.jsonl --json
      extes safety eval my_messages.jsonl --show-errors
    """
    from extes.programs.safety import default_checker, evaluate, load_labelled

    result = evaluate(load_labelled(file), default_checker(rules_only))
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


@safety.command("train")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the weights (default: the shipped file).")
@json_option
def train_cmd(files, out, as_json) -> None:
    """Train the learned crisis classifier on labelled FILES (default: the shipped set and the development set).

    Deterministic (L-BFGS from zeros): the same files give the same weights.

    \b
    Examples:
      extes safety train
      extes safety train assets/safety/labelled.jsonl my_extra.jsonl --out my_classifier.json
    """
    from extes.corpus.assets import assets_dir
    from extes.programs.lm.local import LocalLM
    from extes.programs.safety import load_labelled
    from extes.programs.safety_classifier import save, train

    files = list(files) or [assets_dir() / "safety" / "labelled.jsonl", assets_dir() / "safety" / "development.jsonl"]
    rows = [row for f in files for row in load_labelled(Path(f))]
    weights = train(LocalLM(), rows, [Path(f).name for f in files])
    target = out or assets_dir() / "safety" / "classifier.json"
    save(weights, target)
    summary = {"out": str(target), "n": weights["n"], "trained_on": weights["trained_on"]}
    emit_json(summary) if as_json else click.echo(f"trained on {summary['n']} messages; wrote {target}")

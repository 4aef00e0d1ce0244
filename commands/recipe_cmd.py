"""`extes recipe distill`: teacher -> corpus -> compiled programs -> distilled student -> benchmark -> arena."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import NON_NEGATIVE_INT, POSITIVE_INT, emit_json, json_option, quiet_option
from extes.errors import InputError
from extes.programs.lm import DEFAULT_MODEL, capabilities
from extes.tuning.recipe import RecipeConfig, report_now, run_recipe


@click.group("recipe")
def recipe() -> None:
    """Whole pipelines as one resumable command."""


@recipe.command("distill")
@click.option("--teacher", required=True, help="The teacher LM (any model string).")
@click.option("--student", default=DEFAULT_MODEL, show_default=True, help="A trainable local/ model.")
@click.option("--test", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="The ESConv benchmark file (*WithStrategy_short.tsv or ESConv.json).")
@click.option("--dialogues", type=POSITIVE_INT, default=150, show_default=True,
              help="Accepted dialogues to synthesize with the teacher.")
@click.option("--mode", type=click.Choice(["whole", "turns"]), default="turns", show_default=True,
              help="Synthesis mode (turns: self-chat turn by turn, what small teachers manage).")
@click.option("--json-grammar", is_flag=True,
              help="With --mode whole and a llama.cpp teacher: constrain its output to the dialogue's JSON.")
@click.option("--demos", type=NON_NEGATIVE_INT, default=1, show_default=True,
              help="Seed dialogues shown per synthesis task (as for extes synthesize).")
@click.option("--redraws", type=NON_NEGATIVE_INT, default=0, show_default=True,
              help="Draw a synthesized dialogue that copied its demo or stopped early again, hotter (as for extes "
                   "synthesize).")
@click.option("--workers", type=POSITIVE_INT, default=1, show_default=True, help="Parallel LM calls per stage.")
@click.option("--optimizer", default="bootstrap", show_default=True, help="Compile optimizer (as for extes compile).")
@click.option("--compile-limit", type=POSITIVE_INT, default=40, show_default=True, help="Training turns to compile on.")
@click.option("--val-limit", type=POSITIVE_INT, default=20, show_default=True, help="Validation turns to score.")
@click.option("--distill-limit", type=POSITIVE_INT, default=64, show_default=True,
              help="Training turns the teacher's program runs on for distillation.")
@click.option("--max-steps", type=POSITIVE_INT, default=60, show_default=True, help="LoRA steps of the distillation.")
@click.option("--bench-limit", type=POSITIVE_INT, default=200, show_default=True,
              help="Benchmark samples (the first N of --test).")
@click.option("--bench-per-dialogue", type=NON_NEGATIVE_INT, default=0, show_default=True,
              help="At most K benchmark samples a dialogue, spread over its turns (0: consecutive samples): more "
                   "dialogues for the paired tests at the same cost.")
@click.option("--cards", type=POSITIVE_INT, default=6, show_default=True, help="Arena role cards.")
@click.option("--turns", type=POSITIVE_INT, default=4, show_default=True, help="Seeker messages per arena game.")
@click.option("--seed", type=NON_NEGATIVE_INT, default=0, show_default=True)
@click.option("--stop-after", help="Stop cleanly after this stage (synthesize, split, ..., arena).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder (created, or continued).")
@quiet_option
@json_option
def distill_recipe(teacher, student, test, dialogues, mode, json_grammar, demos, redraws, workers, optimizer,
                   compile_limit, val_limit, distill_limit, max_steps, bench_limit, bench_per_dialogue, cards, turns,
                   seed, stop_after, out, quiet, as_json) -> None:
    """Run the distillation end to end in --out: the teacher synthesizes dialogues (validated and deduplicated),
    they are split, the StrategyClassifier and Supporter are compiled with the teacher, the teacher's Supporter is
    distilled into a LoRA on --student, student / distilled student / teacher are benchmarked on --test with
    paired tests, and they meet in the arena with the teacher as seeker and judge. Writes report.md with every
    table, figure and the hours each stage took. Each stage is an ordinary extes command (logged in
    OUT/logs/); kill it at any point and rerun the same command to continue.

    \b
    Examples:
      extes recipe distill --teacher scripted --test ../shared/data/esconv/devWithStrategy_short.tsv \\
          --dialogues 4 --bench-limit 6 --max-steps 2 --cards 2 --turns 2 --out runs/recipe-test
      extes recipe distill --teacher local/qwen2.5-coder-1.5b-instruct \\
          --test ../shared/data/esconv/devWithStrategy_short.tsv --dialogues 150 --out runs/recipe
      extes recipe distill --teacher local/qwen2.5-coder-1.5b-instruct --mode whole --json-grammar \\
          --test ../shared/data/esconv/devWithStrategy_short.tsv --dialogues 150 --out runs/recipe-whole
    """
    from extes.tuning.compile import OPTIMIZERS  # lazy: tuning.compile imports dspy

    if not capabilities(student).trainable:
        raise InputError(f"--student {student!r}: the recipe trains a local/ model")
    if json_grammar and mode != "whole":
        raise InputError("--json-grammar constrains the whole dialogue's JSON: use it with --mode whole")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    cfg = RecipeConfig(teacher=teacher, student=student, test=str(test), dialogues=dialogues, mode=mode,
                       json_grammar=json_grammar, demos=demos, redraws=redraws,
                       workers=workers, optimizer=optimizer, compile_limit=compile_limit, val_limit=val_limit,
                       distill_limit=distill_limit, max_steps=max_steps, bench_limit=bench_limit,
                       bench_per_dialogue=bench_per_dialogue, cards=cards,
                       turns=turns, seed=seed)
    say = (lambda _m: None) if quiet else (lambda m: click.echo(m, err=True))
    report = run_recipe(cfg, out, stop_after=stop_after, say=say)
    if as_json:
        emit_json(report)
    elif "stopped_after" not in report:
        click.echo(f"recipe finished in {report['hours']['total']:.2f} h: {out / 'report.md'}")


@recipe.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@json_option
def recipe_report(run, as_json) -> None:
    """Write RUN/report.md (and report.json) of a recipe run as it stands: every finished stage's figures, the
    stages still to run named, a stage that is running or was killed with the time it has spent (a running
    synthesis counted so far). Safe while `extes recipe distill` is running on RUN: it only reads the stages'
    files. The run writes the same report after every stage by itself; this is for the moment in between.

    \b
    Examples:
      extes recipe report runs/recipe
      extes recipe report runs/recipe --json
    """
    report = report_now(run)
    if as_json:
        emit_json(report)
    else:
        pending = report["pending"]
        click.echo(f"{run / 'report.md'}: " + (f"partial, {len(pending)} stages to run ({', '.join(pending)})"
                                                if pending else "complete"))

"""`extes compile`: optimize a program's few-shot demos with a metric-driven DSPy optimizer."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands import common
from extes.commands.common import NON_NEGATIVE_INT, POSITIVE_INT, emit_json
from extes.corpus.formats import ReadOptions, read_corpus
from extes.programs.lm import load_lm
from extes.tuning.compile import OPTIMIZERS, compile_program


@click.command("compile")
@click.argument("program", type=click.Choice(["classifier", "supporter", "synthesizer", "seeker", "judge"]))
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), required=True, help="The DSPy optimizer.")
@click.option("--trainset", type=click.Path(path_type=Path), required=True,
              help="Training corpus (any format); for judge, a human-eval STUDY folder.")
@click.option("--valset", type=click.Path(path_type=Path), required=True,
              help="Validation corpus (any format); for judge, a human-eval STUDY folder.")
@common.model_option(help="The student LM.", dest="student")
@click.option("--teacher", help="A teacher LM for bootstrapping (default: the student).")
@common.api_base_option
@common.limit_option(help="Training examples (turns) to use.", default=40)
@click.option("--val-limit", type=POSITIVE_INT, default=20, show_default=True, help="Validation examples to score.")
@click.option("--balance", is_flag=True, help="Take strategies in turn when sampling examples.")
@click.option("--k", type=NON_NEGATIVE_INT, default=4, show_default=True, help="Demos per predictor.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--keep-best", is_flag=True,
              help="Save the uncompiled program instead when compiling made it worse on the valset.")
@common.out_option(help="program.json (Module.save).", required=True)
@common.quiet_option
@common.verbose_option
@common.json_option
def compile_cmd(program, optimizer, trainset, valset, student, teacher, api_base, limit, val_limit, balance, k, seed,
                keep_best, out, quiet, as_json) -> None:
    """Compile PROGRAM with a DSPy optimizer; report the valset metric before and after; save program.json,
    program.manifest.json and the teacher traces (program.traces.json) for distillation.

    \b
    Examples:
      extes data split assets/seeds splits/
      extes compile classifier --optimizer bootstrap --trainset splits/train.jsonl --valset splits/valid.jsonl \\
        --out clf.json
      extes compile supporter --optimizer labeled --trainset splits/train.jsonl --valset splits/valid.jsonl \\
        -m scripted --out s.json
      extes compile seeker --optimizer labeled --trainset splits/train.jsonl --valset splits/valid.jsonl \\
        -m scripted --out k.json
      extes compile judge --optimizer labeled --trainset studies/pilot --valset studies/s1 -m scripted \\
        --out judge.json
    """
    from extes.tuning.datasets import turn_examples  # lazy: tuning.datasets imports dspy

    opts = ReadOptions(unknown_labels="keep")
    if program == "judge":
        from extes.tuning.human_report import study_examples

        train, val = study_examples(trainset)[:limit], study_examples(valset)[:val_limit]
    else:
        train = turn_examples(read_corpus(trainset, None, opts).dialogues, program, limit=limit, balance=balance,
                              seed=seed)
        val = turn_examples(read_corpus(valset, None, opts).dialogues, program, limit=val_limit, seed=seed + 1)
    lm = load_lm(student, api_base=api_base)
    t_lm = load_lm(teacher, api_base=api_base) if teacher else None
    result = compile_program(program, optimizer, train, val, lm, teacher=t_lm, seed=seed, k=k, out=out, quiet=quiet,
                             keep_best=keep_best)
    if as_json:
        emit_json(result)
    else:
        b, a = result["valid_before"], result["valid_after"]
        kept = " (worse: the uncompiled program was saved)" if result["kept"] == "uncompiled" else ""
        click.echo(f"{program} + {optimizer}: valid {b['score']:.1f} -> {a['score']:.1f} "
                   f"({a['n']} examples, {result['wall_s']} s); saved {out}{kept}")

"""`extes distill`: distill a program run by a teacher LM into a LoRA adapter on the local student."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import NON_NEGATIVE_INT, POSITIVE_INT, api_base_option, emit_json, json_option
from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.seeds import read_seed_folder
from extes.corpus.split import split_dialogues
from extes.errors import InputError
from extes.programs.lm import DEFAULT_MODEL, capabilities, load_lm
from extes.tuning.distill import OPTIMIZERS
from extes.tuning.distill import distill as run


@click.command("distill")
@click.argument("program", type=click.Choice(["classifier", "supporter"]))
@click.option("--teacher", required=True, help="The teacher LM (any model string).")
@click.option("--student", default=DEFAULT_MODEL, show_default=True, help="A trainable model (local/...).")
@click.option("--trainset", type=click.Path(path_type=Path), help="Training corpus (default: the seed set).")
@click.option("--limit", type=POSITIVE_INT, default=16, show_default=True,
              help="Training examples for the teacher to run.")
@click.option("--max-steps", type=POSITIVE_INT, default=20, show_default=True, help="LoRA steps on the traces.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS),
              default="bootstrap-finetune", show_default=True,
              help="BootstrapFinetune (weights only) or BetterTogether (prompt and weight steps, best kept).")
@click.option("--strategy", default="p -> w", show_default=True,
              help="BetterTogether's steps: p (few-shot demos from the teacher) and w (LoRA), joined by ->.")
@click.option("--val-limit", type=NON_NEGATIVE_INT, default=4, show_default=True,
              help="BetterTogether: held-out examples (from other dialogues) that score each candidate.")
@click.option("--program", "program_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A compiled program (extes compile ... --out) the teacher runs, its demos included.")
@api_base_option
@click.option("--out", type=click.Path(path_type=Path), required=True)
@json_option
def distill(program, teacher, student, trainset, limit, max_steps, optimizer, strategy, val_limit, program_file,
            api_base, out, as_json) -> None:
    """Run PROGRAM with --teacher on training examples, fine-tune --student on the traces (dspy.BootstrapFinetune
    with the project's local provider), and save the distilled program and its adapter in --out. With
    --optimizer better-together, prompt (p) and weight (w) steps run in --strategy order and the candidate that
    scores best on --val-limit held-out examples (the program's metric) is kept.

    \b
    Examples:
      extes distill classifier --teacher openai/gpt-4o-mini --out runs/distilled-classifier
      extes distill supporter --teacher scripted --limit 8 --max-steps 5 --out runs/d
      extes distill supporter --teacher scripted --program s.json --limit 8 --max-steps 5 --out runs/d2
      extes reply "I failed again" --adapter runs/d/adapter
      extes distill classifier --teacher openai/gpt-4o-mini --optimizer better-together --strategy "p -> w" \\
          --out runs/bt
    """
    from extes.tuning.datasets import turn_examples  # lazy: tuning.datasets imports dspy

    if not capabilities(student).trainable:
        raise InputError(f"--student {student!r}: distillation trains a local/ model")
    dialogues = read_corpus(trainset, None, ReadOptions(unknown_labels="keep")).dialogues if trainset \
        else read_seed_folder()
    valset = None
    if optimizer == "better-together":
        if val_limit < 1:
            raise InputError(f"--val-limit {val_limit}: BetterTogether needs at least 1 held-out example")

        parts = split_dialogues(dialogues, seed=0, ratios=(0.8, 0.2, 0.0))
        dialogues = parts["train"]
        valset = turn_examples(parts["valid"], program, limit=val_limit, balance=program == "classifier")
    examples = turn_examples(dialogues, program, limit=limit, balance=program == "classifier")
    result = run(program, load_lm(teacher, api_base=api_base), load_lm(student), examples, out, max_steps=max_steps,
                 optimizer=optimizer, strategy=strategy, valset=valset,
                 teacher_program=program_file)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"distilled {program} from {teacher} into {student} ({optimizer}): {out}")
        for c in result.get("candidates", []):
            click.echo(f"  {c['strategy']:<12} score {c['score']}")

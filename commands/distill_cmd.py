"""`extes distill`: distill a program run by a teacher LM into a LoRA adapter on the local student."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import emit_json, json_option


@click.command("distill")
@click.argument("program", type=click.Choice(["classifier", "supporter"]))
@click.option("--teacher", required=True, help="The teacher LM (any model string).")
@click.option("--student", default="local/smollm2-135m-instruct", show_default=True, help="A local/ model.")
@click.option("--trainset", type=click.Path(path_type=Path), help="Training corpus (default: the seed set).")
@click.option("--limit", type=int, default=16, show_default=True, help="Training examples for the teacher to run.")
@click.option("--max-steps", type=int, default=20, show_default=True, help="LoRA steps on the traces.")
@click.option("--api-base", help="OpenAI-compatible server for an openai/ teacher.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@json_option
def distill(program, teacher, student, trainset, limit, max_steps, api_base, out, as_json) -> None:
    """Run PROGRAM with --teacher on training examples, fine-tune --student on the traces (dspy.BootstrapFinetune
    with the project's local provider), and save the distilled program and its adapter in --out.

    \b
    Examples:
      extes distill classifier --teacher openai/gpt-4o-mini --out runs/distilled-classifier
      extes distill supporter --teacher scripted --limit 8 --max-steps 5 --out runs/d
      extes reply "I failed again" --adapter runs/d/adapter
    """
    from extes.corpus.formats import ReadOptions, read_corpus
    from extes.corpus.seeds import read_seed_folder
    from extes.errors import InputError
    from extes.programs.lm import load_lm
    from extes.tuning.datasets import turn_examples
    from extes.tuning.distill import distill as run

    if not student.startswith("local/"):
        raise InputError(f"--student {student!r}: distillation trains a local/ model")
    dialogues = read_corpus(trainset, None, ReadOptions(unknown_labels="keep")).dialogues if trainset \
        else read_seed_folder()
    examples = turn_examples(dialogues, program, limit=limit, balance=program == "classifier")
    result = run(program, load_lm(teacher, api_base=api_base), load_lm(student), examples, out, max_steps=max_steps)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"distilled {program} from {teacher} into {student}: {out}")

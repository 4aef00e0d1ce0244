"""`extes rate ...`: the paper's human quality protocol (Table 4), and an LM judge that fills the same sheet."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from extes.commands.common import POSITIVE_INT, api_base_option, emit_json, json_option, progress_bar
from extes.commands.data_cmd import from_option
from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.rating import export_sheet, import_sheets
from extes.programs.lm import DEFAULT_MODEL, load_lm


@click.group()
def rate() -> None:
    """Rate dialogues on Informativeness, Understanding, Helpfulness, Consistency and Coherence (0-3)."""


@rate.command("export")
@click.argument("corpora", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--n", type=POSITIVE_INT, default=100, show_default=True,
              help="Dialogues on the sheet, split equally over the corpora.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The CSV sheet (the key goes beside it).")
@click.option("--seed", default=0, show_default=True)
@from_option
@json_option
def export(corpora, n, out, seed, fmt_in, as_json) -> None:
    """Write a blinded, stratified rating sheet from CORPORA (their names are hidden; the key is kept apart).

    \b
    Examples:
      extes rate export runs/r1 assets/seeds --n 150 --out sheet.csv
    """

    data = {Path(c).stem or str(c): read_corpus(c, fmt_in, ReadOptions(unknown_labels="keep")).dialogues
            for c in corpora}
    result = export_sheet(data, n, out, seed=seed)
    emit_json(result) if as_json else click.echo(f"wrote {result['items']} items to {out} (key: {result['key']})")


@rate.command("import")
@click.argument("sheets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True), required=True,
              help="The .key.json written with the sheet.")
@json_option
def import_(sheets, key_path, as_json) -> None:
    """Read annotators' SHEETS: per-criterion means per source and Fleiss' kappa per criterion (from two sheets
    on; a single sheet, e.g. an LM judge's, gives the means).

    \b
    Examples:
      extes rate import ann1.csv ann2.csv ann3.csv --key sheet.key.json --json
      extes rate import judge.csv --key sheet.key.json
    """

    result = import_sheets(list(sheets), key_path)
    if as_json:
        emit_json(result)
        return
    for source, means in result["means"].items():
        click.echo(f"{source}: " + ", ".join(f"{c} {v:.2f}" for c, v in means.items()))
    if result["annotators"] < 2:
        click.echo("Fleiss' kappa: needs two sheets or more (one was given)")
    else:
        click.echo("Fleiss' kappa: " + ", ".join(f"{c} {v}" for c, v in result["fleiss_kappa"].items()))


@rate.command("judge")
@click.argument("sheet", type=click.Path(path_type=Path))
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True)
@api_base_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The filled sheet (CSV).")
@json_option
def judge(sheet, model, api_base, out, as_json) -> None:
    """Let an LM fill SHEET like an annotator (one call per criterion); import it like any other sheet. A killed
    run continues where it stopped when rerun with the same --out (OUT.partial.jsonl keeps the judged rows).

    \b
    Examples:
      extes rate judge sheet.csv -m openai/gpt-4o-mini --out judge.csv
    """
    from extes.programs.judge import judge_sheet  # lazy: programs.judge imports dspy

    lm = load_lm(model, api_base=api_base)
    bar = None
    if Path(sheet).is_file():  # judge_sheet names a missing sheet itself
        with open(sheet, encoding="utf-8", newline="") as fh:
            bar = progress_bar(max(0, sum(1 for _ in csv.reader(fh)) - 1), desc="judging", unit="dialogue")
    try:
        n = judge_sheet(sheet, out, lm, on_row=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    emit_json({"rated": n, "out": str(out), "model": model}) if as_json else click.echo(f"rated {n} items into {out}")

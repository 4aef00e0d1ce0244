"""`extes metrics`: score hypotheses against references, one per line."""

from __future__ import annotations

from pathlib import Path

import click

from extes.commands.common import emit_json, json_option
from extes.errors import InputError


def read_lines(path: Path) -> list[str]:
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 (bad byte at offset {e.start}); re-save the file as UTF-8") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise InputError(f"{path}: line {i} is empty; every line needs a text (remove the line from both files)")
    return lines


@click.command("metrics")
@click.argument("hyp", type=click.Path(path_type=Path))
@click.argument("ref", type=click.Path(path_type=Path))
@json_option
def metrics(hyp, ref, as_json) -> None:
    """Score HYP against REF (one hypothesis and one reference per line): BLEU-2/4, ROUGE-L, METEOR, Extrema,
    Distinct-1/2/3, all x100 as in the paper's Table 6. Definitions: tuning/metrics.py.

    \b
    Examples:
      extes metrics hyp.txt ref.txt --json
    """
    from extes.tuning.metrics import all_metrics

    h, r = read_lines(hyp), read_lines(ref)
    if len(h) != len(r):
        raise InputError(f"{hyp} has {len(h)} lines but {ref} has {len(r)}; give one reference per hypothesis")
    scores = all_metrics(h, r)
    if as_json:
        emit_json(scores)
    else:
        click.echo("  ".join(f"{k} {v}" for k, v in scores.items()))

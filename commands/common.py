"""Options, option types and output helpers shared by every command.

Every numeric option is declared with one of the range types below, so a value out of range is refused once, at
parsing, with click's one-line message (exit 2); the config dataclasses check the same ranges for library callers.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click


class _Float(click.FloatRange):
    """click.FloatRange that also refuses NaN (which compares false with every bound, so would slip through)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and math.isnan(rv):
            self.fail(f"{value!r} is not a number", param, ctx)
        return rv


POSITIVE_INT = click.IntRange(min=1)  # counts that must be at least one: --target, --workers, --limit, --n ...
NON_NEGATIVE_INT = click.IntRange(min=0)  # counts where 0 means none or off: --retries, --demos, --save-every ...
NON_NEGATIVE = _Float(min=0)  # seconds, dollars, a learning rate (0: the default)
POSITIVE = _Float(min=0, min_open=True)  # a timeout
PROBABILITY = _Float(0, 1)  # a threshold or ratio in [0, 1]

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=None, sort_keys=False))

"""Options, option types and output helpers shared by every command.

Every numeric option is declared with one of the range types below, so a value out of range is refused once, at
parsing, with click's one-line message (exit 2); the config dataclasses check the same ranges for library callers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from extes.programs.lm import DEFAULT_MODEL


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


class SharedOption(click.Option):
    """An option that many commands take, declared once in this module (tests check each command takes it here)."""


json_option = click.option("--json", "as_json", is_flag=True, cls=SharedOption, help="Print one JSON object on stdout.")
quiet_option = click.option("-q", "--quiet", is_flag=True, cls=SharedOption, help="No progress output on stderr.")
adapter_option = click.option("--adapter", type=click.Path(path_type=Path), cls=SharedOption,
                              help="A peft adapter folder (local models).")
api_base_option = click.option("--api-base", cls=SharedOption,
                               help="An OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")
locale_option = click.option("--locale", default=None, cls=SharedOption,
                             help="Crisis resources locale (us, uk, ca, intl, es, fr, pt, de); a crisis written in "
                                  "another language gets that language's.")


def model_option(help: str = "local/<name-or-path>, openai/<model> or scripted.",  # noqa: A002 - click's name
                 dest: str = "model"):
    """`-m/--model` (default: the embedded model); `dest` names the parameter when it is not `model`."""
    return click.option("-m", "--model", dest, default=DEFAULT_MODEL, show_default=True, cls=SharedOption, help=help)


def out_option(help: str = "Output folder.", required: bool = False):  # noqa: A002 - click's name
    """`--out PATH`: the file or folder a command writes."""
    return click.option("--out", type=click.Path(path_type=Path), required=required, cls=SharedOption, help=help)


def limit_option(help: str = "Only the first N samples.", default: int | None = None):  # noqa: A002 - click's name
    """`--limit N`: at most N examples (none by default)."""
    return click.option("--limit", type=POSITIVE_INT, default=default, show_default=default is not None,
                        cls=SharedOption, help=help)


def option_from(config: type, name: str, *decls: str, **overrides: Any) -> Callable:
    """A click option for the field `name` of the dataclass `config`, whose default and help (the field's
    `metadata["help"]`) it takes: both are written once, on the field (peft's configs). `--field-name` unless
    `decls` are given; a list default is written comma-separated; a False default makes a flag."""
    field = next(f for f in dataclasses.fields(config) if f.name == name)
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    kw: dict[str, Any] = {"help": field.metadata.get("help")}
    if default is False:
        kw["is_flag"] = True
    else:
        kw.update(default=",".join(default) if isinstance(default, list) else default, show_default=True)
    return click.option(*(decls or (f"--{name.replace('_', '-')}",)), **{**kw, **overrides})


def bootstrap_option(help: str = "Bootstrap resamples for the confidence intervals."):  # noqa: A002 - click's name
    """`--bootstrap N` (default 500) of every report with confidence intervals."""
    return click.option("--bootstrap", type=int, default=500, show_default=True, help=help)


def folder_argument(name: str):
    """A positional argument naming a folder that must exist (a run folder, a study)."""
    return click.argument(name, type=click.Path(path_type=Path, exists=True, file_okay=False))


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=None, sort_keys=False))


# What the libraries print unless asked (-v): transformers' "Loading weights" bars and deprecation notices,
# datasets' bars, DSPy's INFO lines (compile printed 16-68 KB of them).
_QUIET_ENV = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
              "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def set_library_output(verbose: bool) -> None:
    """Quiet (or, with `verbose`, restore) the logs, warnings and progress bars of transformers, datasets and DSPy.

    Libraries imported later read the environment; those already imported are set directly (tests run the CLI
    in one process).
    """
    for key, value in _QUIET_ENV.items():
        if verbose:
            if os.environ.get(key) == value:
                del os.environ[key]
        else:
            os.environ.setdefault(key, value)
    # INFO and below from every logger (DSPy's, which resets its own level on import, included); warnings stay.
    logging.disable(logging.NOTSET if verbose else logging.INFO)
    with warnings.catch_warnings():
        # huggingface_hub warns that its bars stay off when the environment (set by a quiet start) says so
        warnings.simplefilter("ignore")
        _set_imported_libraries(verbose)


def _set_imported_libraries(verbose: bool) -> None:
    if "transformers" in sys.modules:
        from transformers.utils import logging as tl

        tl.set_verbosity_warning() if verbose else tl.set_verbosity_error()
        tl.enable_progress_bar() if verbose else tl.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.enable_progress_bars() if verbose else datasets.disable_progress_bars()
        datasets.logging.set_verbosity_warning() if verbose else datasets.logging.set_verbosity_error()


@contextlib.contextmanager
def library_output(verbose: bool) -> Iterator[None]:
    """`set_library_output` for the length of a command; the previous state comes back afterwards."""
    env = {k: os.environ.get(k) for k in _QUIET_ENV}
    with warnings.catch_warnings():
        if not verbose:
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
        set_library_output(verbose)
        try:
            yield
        finally:
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            set_library_output(True)
            logging.disable(logging.NOTSET)


def _verbose_callback(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.meta["extes.verbose"] = True
        set_library_output(True)
        warnings.simplefilter("default")


verbose_option = click.option("-v", "--verbose", is_flag=True, expose_value=False, is_eager=True,
                              callback=_verbose_callback,
                              help="Show the libraries' logs, warnings and loading bars (quiet by default).")


def stderr_is_tty() -> bool:
    """Whether stderr is a terminal: progress bars are drawn only there (tests patch this)."""
    return sys.stderr.isatty()


def progress_bar(total: int | None = None, *, desc: str, unit: str, quiet: bool = False, delay: float = 0.0):
    """A tqdm bar on stderr (with its total when known), or None with `quiet` or when stderr is not a terminal.

    `delay` seconds pass before it is first drawn, so a short run shows nothing.
    """
    if quiet or not stderr_is_tty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, delay=delay, dynamic_ncols=True)

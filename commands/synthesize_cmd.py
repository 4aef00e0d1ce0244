"""`extes synthesize`: grow a support-dialogue corpus by LLM self-chat, round after round."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from extes.commands.common import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    api_base_option,
    emit_json,
    json_option,
    model_option,
    option_from,
    out_option,
    quiet_option,
)
from extes.errors import InputError
from extes.programs.lm import backend_for, load_lm
from extes.programs.synthesis_run import SynthConfig, SynthesisRun
from extes.programs.synthesizer import MODES


@click.command("synthesize")
@model_option(help="The generator LM.")
@option_from(SynthConfig, "mode", type=click.Choice(MODES))
@option_from(SynthConfig, "target", type=POSITIVE_INT)
@out_option(help="Run folder (created, or resumed); not needed with --dry-run.")
@option_from(SynthConfig, "workers", type=POSITIVE_INT)
@option_from(SynthConfig, "demos", type=NON_NEGATIVE_INT)
@option_from(SynthConfig, "round_size", type=POSITIVE_INT, default=None, show_default=False)  # None: the config's 0
@option_from(SynthConfig, "uniform")
@option_from(SynthConfig, "scenes", default=None, show_default=False)  # one string, split on ';' below
@option_from(SynthConfig, "seed", type=int)
@option_from(SynthConfig, "max_cost", type=NON_NEGATIVE)
@option_from(SynthConfig, "dup_threshold", type=PROBABILITY)
@option_from(SynthConfig, "retries", type=NON_NEGATIVE_INT)
@option_from(SynthConfig, "redraws", type=NON_NEGATIVE_INT)
@option_from(SynthConfig, "backoff_s", "--backoff", "backoff_s", type=NON_NEGATIVE)
@option_from(SynthConfig, "timeout_s", "--timeout", "timeout_s", type=POSITIVE)
@option_from(SynthConfig, "program", type=click.Path(path_type=Path))
@option_from(SynthConfig, "prices", type=click.Path(path_type=Path))
@option_from(SynthConfig, "json_grammar")
@click.option("--dry-run", is_flag=True, help="Estimate calls, tokens and dollars; call no LM and write nothing.")
@api_base_option
@quiet_option
@json_option
def synthesize(model, mode, target, out, workers, demos, round_size, uniform, scenes, seed, max_cost, dup_threshold,
               retries, redraws, backoff_s, timeout_s, program, prices, json_grammar, dry_run, api_base, quiet,
               as_json) -> None:
    """Synthesize dialogues into OUT; rerun the same command to resume after any interruption.

    Round 0 uses the seed dialogues as demos; later rounds use the dialogues accepted in earlier rounds. Each
    dialogue records its round, demo ids, model, program hash, validation and cost.

    \b
    Examples:
      extes synthesize -m local/smollm2-135m-instruct --mode turns --target 3 --out runs/small
      extes synthesize -m openai/gpt-4o-mini --target 11000 --dry-run --json
      extes synthesize -m openai/gpt-4o-mini --target 1000 --workers 16 --max-cost 5 --out runs/r1
      extes synthesize -m scripted --target 50 --workers 4 --out runs/test
    """
    if out is None and not dry_run:
        raise InputError("--out is required: the run folder to write (or resume)")
    cfg = SynthConfig(
        model=model, out=str(out or ""), mode=mode, target=target, workers=workers, demos=demos,
        round_size=round_size or 0,
        uniform=uniform, scenes=[s.strip() for s in scenes.split(";") if s.strip()] if scenes else [], seed=seed,
        max_cost=max_cost, dup_threshold=dup_threshold, retries=retries, redraws=redraws, backoff_s=backoff_s,
        timeout_s=timeout_s, program=str(program) if program else None, api_base=api_base,
        prices=str(prices) if prices else None, json_grammar=json_grammar,
    )
    if dry_run:
        from extes.programs.dryrun import estimate  # lazy: programs.dryrun imports dspy

        result = estimate(cfg)
        if as_json:
            emit_json(result)
        else:
            click.echo(f"{target} dialogues with {model} ({mode}): ~{result['estimated_calls']} calls, "
                       f"~{result['estimated_prompt_tokens']:,} prompt + {result['estimated_completion_tokens']:,} "
                       f"completion tokens, ~${result['estimated_cost_usd']:.2f}")
        return

    backend = backend_for(model)
    kwargs = {}
    if backend.accepts("num_retries"):  # a client that retries by itself: the run retries with backoff instead
        kwargs.update(num_retries=0, temperature=1.0, timeout=timeout_s or None)
    if backend.capabilities.in_process:  # small local models: short turns, some variety
        # turns mode caps each call itself; a whole dialogue as JSON needs room (~60 tokens per utterance).
        kwargs.update(max_tokens=120 if mode == "turns" else 1600, temperature=0.8, top_p=0.95)
    lm = load_lm(model, api_base=api_base, **kwargs)
    if json_grammar:
        from extes.programs.lm.local import LocalLM  # lazy: programs.lm.local imports dspy

        if isinstance(lm, LocalLM):
            raise InputError(f"--json-grammar: {model} runs on transformers here, which has no JSON grammar; install "
                             "llama.cpp (make teacher) or use an openai/ model")
    bar = _progress(target, quiet)
    run = SynthesisRun(cfg, lm, progress=bar.update if bar else None)
    summary = run.run()
    if bar:
        bar.close()
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"{summary['accepted']} accepted, {summary['rejected']} rejected, {summary['queued']} queued, "
                   f"{summary['failed']} failed in {out}; yield {summary['yield']:.0%}; ${summary['cost_usd']:.4f}"
                   + (f"; stopped: {summary['stopped']}" if summary["stopped"] else ""))


class _Bar:
    def __init__(self, target):
        from tqdm import tqdm

        self.bar = tqdm(total=target, desc="accepted", file=sys.stderr, unit="dlg")

    def update(self, s):
        self.bar.n = s["accepted"]
        self.bar.set_postfix(rejected=s["rejected"], queued=s["queued"], failed=s["failed"],
                             usd=f"{s['cost_usd']:.4f}", refresh=False)
        self.bar.refresh()

    def close(self):
        self.bar.close()


class _Lines:
    """Off a terminal (a log file, a recipe stage): a line on stderr after the first finished task, then at most
    one every `every` seconds, so a synthesis of many hours shows where it is without a line per dialogue."""

    def __init__(self, target, every: float = 60.0):
        self.target, self.every, self.last = target, every, None

    def update(self, s):
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every:
            return
        self.last = now
        click.echo(f"accepted {s['accepted']}/{self.target}, rejected {s['rejected']}, queued {s['queued']}, "
                   f"failed {s['failed']}; ${s['cost_usd']:.4f}; {s['wall_s'] / 60:.1f} min", err=True)

    def close(self):
        pass


def _progress(target, quiet):
    if quiet:
        return None
    return _Bar(target) if sys.stderr.isatty() else _Lines(target)

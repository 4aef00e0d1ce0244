"""`extes tune lora|adapter|clm`: fine-tune a local model on a corpus; the adapter is used with --adapter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from extes.commands.common import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    emit_json,
    json_option,
    option_from,
    out_option,
    quiet_option,
)
from extes.corpus.atomic import atomic_path, check_output_dir, claim_output_dir
from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.provenance import content_sha256
from extes.corpus.split import split_dialogues
from extes.programs.lm import DEFAULT_MODEL
from extes.tuning.sft import VARIANTS, chat_samples, clm_samples, prompt_shape
from extes.tuning.trainer import PRECISIONS, TuneConfig, check_lora_targets, load_base, train


def _options(f):
    def opt(name, *decls, **kw):
        return option_from(TuneConfig, name, *decls, **kw)

    opts = [
        click.option("--data", type=click.Path(path_type=Path), required=True, help="Training corpus (any format)."),
        click.option("--valid", type=click.Path(path_type=Path),
                     help="Validation corpus (default: 10% of --data, split by dialogue)."),
        opt("variant", type=click.Choice(VARIANTS)),
        opt("base"),
        out_option(required=True),
        opt("max_steps", type=POSITIVE_INT),
        opt("batch_size", type=POSITIVE_INT),
        opt("grad_accum", type=POSITIVE_INT),
        opt("lr", type=NON_NEGATIVE, show_default=False),
        opt("seq_len", type=POSITIVE_INT),
        opt("lora_r", type=POSITIVE_INT),
        opt("lora_targets"),
        opt("adapter_len", type=POSITIVE_INT),
        opt("adapter_layers", type=POSITIVE_INT),
        opt("last_turn_only"),
        opt("gradient_checkpointing"),
        opt("checkpoint_layers", type=NON_NEGATIVE_INT, show_default=False),
        opt("compile", "--compile", "compile_"),
        opt("log_every", type=POSITIVE_INT),
        opt("eval_every", type=NON_NEGATIVE_INT, show_default=False),
        opt("save_every", type=NON_NEGATIVE_INT, show_default=False),
        opt("resume"),
        opt("stop_after", type=NON_NEGATIVE_INT, show_default=False),
        opt("precision", type=click.Choice(PRECISIONS)),
        opt("seed", type=int),
        quiet_option,
        json_option,
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _run(method, data, valid, variant, base, out, max_steps, batch_size, grad_accum, lr, seq_len, lora_r,
         lora_targets, adapter_len, adapter_layers, last_turn_only, gradient_checkpointing, checkpoint_layers,
         compile_, log_every, eval_every, save_every, resume, stop_after, precision, seed, quiet, as_json):
    cfg = TuneConfig(method=method, base=base, variant=variant, max_steps=max_steps, batch_size=batch_size,
                     grad_accum=grad_accum, lr=lr, seq_len=seq_len, lora_r=lora_r,
                     lora_targets=[t.strip() for t in lora_targets.split(",") if t.strip()], adapter_len=adapter_len,
                     adapter_layers=adapter_layers, last_turn_only=last_turn_only,
                     gradient_checkpointing=gradient_checkpointing,
                     checkpoint_layers=checkpoint_layers, compile=compile_, log_every=log_every,
                     eval_every=eval_every,
                     save_every=save_every, resume=resume, stop_after=stop_after, precision=precision,
                     seed=seed, data_sha256=":".join(filter(None, (content_sha256(data), content_sha256(valid)))))
    check_output_dir(out, "tune")  # before any compute; the folder is made only once the inputs have been read
    opts = ReadOptions(unknown_labels="keep")
    dialogues = read_corpus(data, None, opts).dialogues
    if valid:
        valid_d = read_corpus(valid, None, opts).dialogues
    else:
        parts = split_dialogues(dialogues, seed=seed, ratios=(0.9, 0.1, 0.0))
        dialogues, valid_d = parts["train"], parts["valid"]
    tok, model, model_id, _ = load_base(base)
    if method == "lora":
        check_lora_targets(model, cfg.lora_targets)
    claim_output_dir(out, "tune")
    if method == "clm":
        tr, va = clm_samples(dialogues, tok, variant=variant, max_len=seq_len), \
            clm_samples(valid_d, tok, variant=variant, max_len=seq_len)
    else:
        tr = chat_samples(dialogues, tok, variant=variant, max_len=seq_len, last_turn_only=last_turn_only)
        va = chat_samples(valid_d, tok, variant=variant, max_len=seq_len, last_turn_only=last_turn_only)
    progress = None if quiet else _Progress(cfg.max_steps, bar=sys.stderr.isatty())
    try:
        # clm is a session text without a chat template: no adapter formats it, so it records no prompt shape
        result = train(cfg, tr, va, tok, model, out, model_id=model_id, progress=progress,
                       prompt_shape=None if method == "clm" else prompt_shape(variant))
    finally:
        if progress:
            progress.close()
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under accelerate launch, rank 0 reports
    if "stopped_after" in result:
        emit_json(result) if as_json else click.echo(f"stopped after step {result['stopped_after']}; rerun with "
                                                     f"--resume to continue ({result['checkpoint']})")
        return
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{method}: valid loss {result['valid_loss_before']} -> {result['valid_loss_after']}, "
                   f"{result['train_tokens_per_s']} tokens/s, {result['adapter_bytes'] / 1e6:.2f} MB in {out}")


class _Progress:
    """A tqdm bar over optimizer steps on a terminal (log lines printed above it); log lines alone otherwise."""

    def __init__(self, total: int, bar: bool):
        self.bar = None
        if bar and int(os.environ.get("RANK", "0")) == 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="steps", unit="step", file=sys.stderr, dynamic_ncols=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        elif int(os.environ.get("RANK", "0")) == 0:
            click.echo(line, err=True)

    def update(self, step: int, loss: float, lr: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.1e}", tok_s=f"{tokens_per_s:.0f}", refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.group()
def tune() -> None:
    """Fine-tune a local model: LoRA, LLaMA-Adapter (peft), or full causal-LM (DialoGPT-style)."""


@tune.command("lora")
@_options
def lora(**kw) -> None:
    """LoRA (peft) on a local LLaMA; defaults r=8, alpha=16, dropout 0.05 on q/v projections.

    \b
    Examples:
      extes tune lora --data splits/train.jsonl --variant strategies --max-steps 30 --out runs/lora --json
      extes reply "I failed my exam" --adapter runs/lora
    """
    _run("lora", **kw)


@tune.command("adapter")
@_options
def adapter(**kw) -> None:
    """LLaMA-Adapter (peft AdaptionPromptConfig): learned prompts in the top layers' attention.

    \b
    Examples:
      extes tune adapter --data splits/train.jsonl --adapter-len 10 --adapter-layers 8 --out runs/adapter
    """
    _run("adapter", **kw)


@tune.command("clm")
@_options
def clm(**kw) -> None:
    """Full causal-LM fine-tuning, a session as one text with EOS separators (the paper's DialoGPT baseline).

    \b
    Examples:
      extes tune clm --base path/to/dialogpt-folder --data splits/train.jsonl --variant no-strategies --out runs/clm
    """
    _run("clm", **kw)


@tune.command("merge")
@click.argument("adapter_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--base", default=DEFAULT_MODEL, show_default=True,
              help="The base the adapter was trained on.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the merged model.")
@json_option
def merge(adapter_dir, base, out, as_json) -> None:
    """Merge a LoRA adapter into its base and write a plain Hugging Face model folder (use it as -m local/OUT).

    \b
    Examples:
      extes tune merge runs/lora --out runs/merged
      extes reply "I failed my exam" -m local/runs/merged
    """
    from extes.programs.lm.local import apply_adapter  # lazy: programs.lm.local imports dspy

    check_output_dir(out, "merge")  # before loading: a refused folder costs nothing
    tok, model, model_id, _ = load_base(base)
    merged = apply_adapter(model, Path(adapter_dir)).merge_and_unload()
    with atomic_path(out, is_dir=True, kind="merge") as tmp:
        merged.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
    result = {"out": str(out), "base": model_id, "adapter": str(adapter_dir)}
    emit_json(result) if as_json else click.echo(f"merged {adapter_dir} into {model_id}: {out}")

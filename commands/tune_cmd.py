"""`extes tune lora|adapter|clm`: fine-tune a local model on a corpus; the adapter is used with --adapter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from extes.commands.common import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT, emit_json, json_option, quiet_option
from extes.programs.lm import DEFAULT_MODEL
from extes.tuning.trainer import PRECISIONS


def _options(f):
    opts = [
        click.option("--data", type=click.Path(path_type=Path), required=True, help="Training corpus (any format)."),
        click.option("--valid", type=click.Path(path_type=Path),
                     help="Validation corpus (default: 10% of --data, split by dialogue)."),
        click.option("--variant", type=click.Choice(["strategies", "no-strategies"]), default="strategies",
                     show_default=True, help="Precede each reply with its strategy label, or not."),
        click.option("--base", default=DEFAULT_MODEL, show_default=True,
                     help="local/<name>, a Hugging Face model folder, or a .gguf."),
        click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder."),
        click.option("--max-steps", type=POSITIVE_INT, default=30, show_default=True),
        click.option("--batch-size", type=POSITIVE_INT, default=4, show_default=True),
        click.option("--grad-accum", type=POSITIVE_INT, default=1, show_default=True),
        click.option("--lr", type=NON_NEGATIVE, default=0.0, help="Learning rate (default per method)."),
        click.option("--seq-len", type=POSITIVE_INT, default=512, show_default=True),
        click.option("--lora-r", type=POSITIVE_INT, default=8, show_default=True),
        click.option("--lora-targets", default="q_proj,v_proj", show_default=True,
                     help="Comma-separated module names, e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"),
        click.option("--adapter-len", type=POSITIVE_INT, default=10, show_default=True),
        click.option("--adapter-layers", type=POSITIVE_INT, default=8, show_default=True),
        click.option("--last-turn-only", is_flag=True, help="Train on each dialogue's last reply only."),
        click.option("--gradient-checkpointing", is_flag=True, help="Recompute activations in the backward pass."),
        click.option("--checkpoint-layers", type=NON_NEGATIVE_INT, default=0,
                     help="Selective checkpointing: the first N decoder layers only (implies checkpointing)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (worth it on a GPU)."),
        click.option("--log-every", type=POSITIVE_INT, default=5, show_default=True, help="A log line every N steps."),
        click.option("--eval-every", type=NON_NEGATIVE_INT, default=0, help="Valid loss every N steps too."),
        click.option("--save-every", type=NON_NEGATIVE_INT, default=0,
                     help="Checkpoint every N steps (OUT/checkpoint)."),
        click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint with the same options."),
        click.option("--stop-after", type=NON_NEGATIVE_INT, default=0,
                     help="Stop cleanly after step N, keeping a checkpoint."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
                     help="auto: bf16 autocast on CUDA and on CPUs with AVX-512-BF16/AMX, else fp32."),
        click.option("--seed", type=int, default=0, show_default=True),
        quiet_option,
        json_option,
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _run(method, data, valid, variant, base, out, max_steps, batch_size, grad_accum, lr, seq_len, lora_r,
         lora_targets, adapter_len, adapter_layers, last_turn_only, gradient_checkpointing, checkpoint_layers,
         compile_, log_every, eval_every, save_every, resume, stop_after, precision, seed, quiet, as_json):
    from extes.corpus.atomic import check_output_dir, claim_output_dir
    from extes.corpus.formats import ReadOptions, read_corpus
    from extes.corpus.provenance import content_sha256
    from extes.corpus.split import split_dialogues
    from extes.tuning.sft import chat_samples, clm_samples, prompt_shape
    from extes.tuning.trainer import TuneConfig, check_lora_targets, load_base, train

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
    from extes.corpus.atomic import atomic_path, check_output_dir
    from extes.programs.lm.local import apply_adapter
    from extes.tuning.trainer import load_base

    check_output_dir(out, "merge")  # before loading: a refused folder costs nothing
    tok, model, model_id, _ = load_base(base)
    merged = apply_adapter(model, Path(adapter_dir)).merge_and_unload()
    with atomic_path(out, is_dir=True, kind="merge") as tmp:
        merged.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
    result = {"out": str(out), "base": model_id, "adapter": str(adapter_dir)}
    emit_json(result) if as_json else click.echo(f"merged {adapter_dir} into {model_id}: {out}")

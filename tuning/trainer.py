"""The project's trainer: LoRA and LLaMA-Adapter (peft) on a local LLaMA, or full causal-LM fine-tuning.

A plain loop in the nanoGPT manner: length-bucketed batches (no padding trained on), AdamW with warmup and linear
decay, gradient accumulation and clipping, bf16 autocast where the hardware has it (CUDA, and CPUs with AVX-512-BF16
or AMX), the output head applied only where there is a label (`LabelledLoss`), optional gradient checkpointing, one
log line per interval (step, loss, lr, tokens/s, elapsed) and a progress bar, valid loss before and after, and a
small artifact that loads back: a peft folder (`save_pretrained`) or full weights, plus `extes_tune.json`
(resolved config and results) and a manifest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extes.corpus.atomic import atomic_path, write_text_atomic
from extes.errors import InputError, ModelError
from extes.programs.lm import DEFAULT_MODEL, backend_for
from extes.programs.lm.weights import resolve_local
from extes.tuning.sft import batches

log = logging.getLogger(__name__)
METHODS = ("lora", "adapter", "clm")
PRECISIONS = ("auto", "fp32", "bf16")


def autocast_dtype(precision: str):
    """(device type, enabled) for torch.autocast under a --precision choice."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if precision == "fp32":
        return device, False
    if precision == "bf16":
        return device, True
    from extes.programs.lm.q4 import cpu_has_native_bf16  # lazy: programs.lm.q4 imports torch

    return device, (torch.cuda.is_bf16_supported() if device == "cuda" else cpu_has_native_bf16())


@dataclass
class TuneConfig:
    """Every knob of a tuning run, with the usual LLaMA-LoRA defaults."""

    method: str = field(default="lora", metadata={"help": "lora, adapter or clm (the `extes tune` subcommand)."})
    base: str = field(default=DEFAULT_MODEL,
                      metadata={"help": "local/<name>, a Hugging Face model folder, or a .gguf."})
    variant: str = field(default="strategies", metadata={"help": "Precede each reply with its strategy label, or not."})
    max_steps: int = field(default=30, metadata={"help": "Optimizer steps."})
    batch_size: int = field(default=4, metadata={"help": "Samples per micro-batch."})
    grad_accum: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    lr: float = field(default=0.0, metadata={
        "help": "Learning rate (default per method: 2e-4 for lora, 1e-2 for adapter, 5e-5 for clm)."})
    warmup_steps: int = field(default=3, metadata={"help": "Steps of linear warm-up."})
    seq_len: int = field(default=512, metadata={"help": "Longest sample, in tokens (longer ones are cut)."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling (alpha)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"], metadata={
        "help": "Comma-separated module names, e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"})
    adapter_len: int = field(default=10, metadata={"help": "LLaMA-Adapter: learned prompt tokens per layer."})
    adapter_layers: int = field(default=8, metadata={"help": "LLaMA-Adapter: top layers that get a prompt."})
    last_turn_only: bool = field(default=False, metadata={"help": "Train on each dialogue's last reply only."})
    gradient_checkpointing: bool = field(default=False,
                                         metadata={"help": "Recompute activations in the backward pass."})
    checkpoint_layers: int = field(default=0, metadata={
        "help": "Selective checkpointing: the first N decoder layers only (implies checkpointing)."})
    # torch.compile: on an H100, 43% -> 62% of bf16 peak for 7B LoRA
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (worth it on a GPU)."})
    precision: str = field(default="auto", metadata={
        "help": "auto: bf16 autocast on CUDA and on CPUs with AVX-512-BF16/AMX, else fp32."})
    log_every: int = field(default=5, metadata={"help": "A log line every N steps."})
    eval_every: int = field(default=0, metadata={"help": "Valid loss every N steps too."})
    save_every: int = field(default=0, metadata={"help": "Checkpoint every N steps (OUT/checkpoint)."})
    resume: bool = field(default=False, metadata={"help": "Continue from OUT/checkpoint with the same options."})
    stop_after: int = field(default=0, metadata={"help": "Stop cleanly after step N, keeping a checkpoint."})
    seed: int = field(default=0, metadata={"help": "Seed of the validation split, the batch order and torch."})
    # so that --resume on other data is refused
    data_sha256: str = field(default="", metadata={"help": "sha256 of the training (and validation) data."})

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.max_steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise InputError("--max-steps, --batch-size and --grad-accum must be at least 1")
        if self.checkpoint_layers < 0:
            raise InputError(f"--checkpoint-layers {self.checkpoint_layers}: give 0 (all) or a number of layers")
        if self.checkpoint_layers:
            self.gradient_checkpointing = True
        if self.log_every < 1:
            raise InputError(f"--log-every {self.log_every}: give at least 1")
        if self.lora_r < 1:
            raise InputError(f"--lora-r {self.lora_r}: give a rank of at least 1")
        for name in ("seq_len", "adapter_len", "adapter_layers"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)}: give at least 1")
        for name in ("eval_every", "save_every", "stop_after", "warmup_steps"):
            if getattr(self, name) < 0:
                raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)}: give 0 (off) or more")
        if not self.lr >= 0 or not 0 <= self.lora_dropout < 1:
            raise InputError(f"--lr {self.lr} / lora_dropout {self.lora_dropout}: give lr >= 0 and dropout in [0, 1)")
        if self.method == "lora" and not self.lora_targets:
            raise InputError("--lora-targets: name at least one module, e.g. q_proj,v_proj")
        if self.precision not in PRECISIONS:
            raise InputError(f"--precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if not self.lr:
            self.lr = {"lora": 2e-4, "adapter": 1e-2, "clm": 5e-5}[self.method]


# Options that may change between a run and its --resume: they say when to log, save or stop, not what is learned.
RESUME_FREE = ("resume", "stop_after", "save_every", "log_every", "eval_every")


def check_resume_config(old: dict, new: dict, ckpt_dir: Path) -> None:
    """Refuse --resume from a checkpoint made with other data or hyper-parameters (it would train a mixture)."""
    diff = [k for k in new if k not in RESUME_FREE and k in old and old[k] != new[k]]
    if diff:
        was = ", ".join(f"{k}={old[k]!r}" for k in diff)
        raise InputError(f"--resume: {ckpt_dir} was made with other {', '.join(diff)} ({was}); resume with the same "
                         f"data and options, or give a new --out to start afresh")


def load_base(base: str):
    """(tokenizer, fp32 model, canonical id) for a model string or a Hugging Face folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        backend = backend_for(base)
    except ModelError:  # a bare folder or .gguf path (`--base runs/merged`) is a local model too
        backend = None
    if backend is not None and not backend.capabilities.trainable:
        raise InputError(f"--base {base!r}: tuning trains a local model; give local/<name-or-path>")
    name = backend.argument(base) if backend else base
    folder, model_id = resolve_local(name)
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return tok, model, model_id, folder


def wrap(model, cfg: TuneConfig):
    """Attach the trainable part: LoRA or LLaMA-Adapter (peft), or nothing (full fine-tuning)."""
    if cfg.method == "clm":
        return model
    from peft import AdaptionPromptConfig, LoraConfig, get_peft_model

    if cfg.method == "lora":
        check_lora_targets(model, cfg.lora_targets)
        pc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=cfg.lora_targets, task_type="CAUSAL_LM")
    else:
        layers = min(cfg.adapter_layers, model.config.num_hidden_layers)
        pc = AdaptionPromptConfig(adapter_len=cfg.adapter_len, adapter_layers=layers, task_type="CAUSAL_LM")
    return get_peft_model(model, pc)


def check_lora_targets(model, targets: list[str]) -> None:
    """Every --lora-targets name must be a module of the model (peft would fail deep inside with a long error)."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name}
    missing = [t for t in targets if t not in names]
    if missing:
        import torch

        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise InputError(f"--lora-targets: {', '.join(missing)} name no module of this model; use some of "
                         f"{','.join(linear)}")


def select_checkpointed_layers(model, n: int) -> int:
    """Selective checkpointing: keep recomputation on the first `n` decoder layers only (the others store their
    activations), trading memory for speed between no checkpointing and checkpointing every layer. Returns how many
    layers are checkpointed."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for k, layer in enumerate(layers):
        layer.gradient_checkpointing = k < n
    return min(n, len(layers))


def labelled_loss(model):
    """The causal-LM loss as a module whose output head runs only where a label is.

    `model(**batch).loss` computes logits over the whole vocabulary (49,152 for SmolLM2) at every position, though
    the loss needs them only at the assistant tokens; this module runs the decoder, picks the hidden states whose
    next token is labelled, and applies the head (fp32 logits) and cross-entropy to those alone: the same mean loss
    (tested against transformers' own), less work. It wraps a plain or peft model and is what DDP wraps.
    """
    import torch
    import torch.nn.functional as F

    class LabelledLoss(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, labels):
            lm = self.inner.get_base_model() if hasattr(self.inner, "get_base_model") else self.inner
            if getattr(lm.config, "final_logit_softcapping", None) or getattr(lm.config, "logit_scale", None):
                # heads that transform the logits (Gemma-2's soft-capping, Cohere's scale): transformers' own loss
                return self.inner(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            hidden = lm.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            target = labels[:, 1:]
            keep = target != -100
            logits = lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
            if logits.shape[0] == 0:
                return hidden.sum() * 0.0
            return F.cross_entropy(logits, target[keep])

    return LabelledLoss(model)


def valid_loss(loss_fn, samples, pad_id: int, batch_size: int, precision: str = "fp32") -> float:
    """Token-weighted mean loss on the samples (loss_fn: a `labelled_loss` module)."""
    import torch

    device_type, enabled = autocast_dtype(precision)
    device = next(loss_fn.parameters()).device
    loss_fn.eval()
    total = count = 0.0
    n_batches = math.ceil(len(samples) / batch_size)
    it = batches(samples, batch_size, pad_id, seed=123)
    with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled):
        for _ in range(n_batches):
            b = next(it)
            n = int((b["labels"][:, 1:] != -100).sum())
            b = {k: v.to(device) for k, v in b.items()}
            total += float(loss_fn(**b)) * n
            count += n
    loss_fn.train()
    return total / count if count else float("nan")


def train(cfg: TuneConfig, train_samples, valid_samples, tok, model, out: Path, *, model_id: str,
          progress=None, prompt_shape: dict | None = None) -> dict[str, Any]:
    """Train `model` (fp32, as `load_base` gives it) on the samples and save the artifact in `out`.

    `prompt_shape` (programs/prompt_shape.py: how the samples' prompts were formatted) goes into extes_tune.json,
    where loading the adapter for serving checks it.

    `progress`, if given, has `write(line)` (log lines: one per interval and per eval) and `update(step, **stats)`
    (after every optimizer step: loss, lr, tokens_per_s), e.g. a tqdm bar; the CLI passes one on a terminal.
    """
    import torch

    torch.manual_seed(cfg.seed)
    if torch.cuda.is_available():
        model = model.cuda()
    model = wrap(model, cfg)
    if cfg.gradient_checkpointing:
        # transformers 5 renamed it (the old name warns); older releases have the old name only
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
        if cfg.checkpoint_layers:
            select_checkpointed_layers(model, cfg.checkpoint_layers)
    params = [p for p in model.parameters() if p.requires_grad]
    cuda = torch.cuda.is_available()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, fused=cuda)
    pad = tok.pad_token_id
    loss_fn = labelled_loss(model)
    device_type, autocast = autocast_dtype(cfg.precision)
    before = valid_loss(loss_fn, valid_samples, pad, cfg.batch_size, cfg.precision)
    # Under `accelerate launch` (DDP or FSDP; gloo on CPU, NCCL on GPUs) every rank takes every world-th batch of
    # the same seeded sequence, and gradients are averaged across ranks; a single process runs the same code.
    world, rank, acc = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")), None
    sharded = False
    if world > 1:
        from accelerate import Accelerator
        from accelerate.utils import DistributedType

        acc = Accelerator(cpu=not cuda)
        loss_fn, opt = acc.prepare(loss_fn, opt)
        sharded = acc.distributed_type == DistributedType.FSDP
        params = [p for p in loss_fn.parameters() if p.requires_grad]  # FSDP replaces them with sharded ones
    step_loss = torch.compile(loss_fn) if cfg.compile else loss_fn
    shared = batches(train_samples, cfg.batch_size, pad, seed=cfg.seed)
    it = (b for k, b in enumerate(shared) if k % world == rank)
    ckpt_dir = Path(out) / "checkpoint"
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    start, tokens, history = 1, 0, []
    if cfg.resume:
        if not (ckpt_dir / "state.pt").exists():
            raise InputError(f"--resume: no checkpoint in {ckpt_dir}; run with --save-every N first")
        state = torch.load(ckpt_dir / "state.pt", weights_only=False)
        check_resume_config(state.get("config") or {}, dataclasses.asdict(cfg), ckpt_dir)
        with torch.no_grad():
            for n, p in named:
                p.copy_(state["params"][n])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start, tokens, history = state["step"] + 1, state["tokens"], state["history"]
        for _ in range((start - 1) * cfg.grad_accum):  # the batches already trained on, in the same order
            next(it)
        log.info("resumed from step %d", start - 1)
    model.train()
    t0 = time.perf_counter()
    for step in range(start, cfg.max_steps + 1):
        lr = cfg.lr * min(1.0, step / max(1, cfg.warmup_steps)) * max(0.0, 1 - (step - 1) / cfg.max_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        for _ in range(cfg.grad_accum):
            b = next(it)
            tokens += int(b["attention_mask"].sum())
            if cuda:
                b = {k: v.cuda(non_blocking=True) for k, v in b.items()}
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
                loss = step_loss(**b) / cfg.grad_accum
            if acc is not None:
                acc.backward(loss)
            else:
                loss.backward()
        if acc is not None:
            acc.clip_grad_norm_(params, 1.0)
        else:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            el = time.perf_counter() - t0
            line = (f"step {step}/{cfg.max_steps} loss {loss.item() * cfg.grad_accum:.4f} lr {lr:.2e} "
                    f"tok/s {tokens / el:.0f} elapsed {el:.1f}s")
            log.info(line)
            if progress:
                progress.write(line)
        if progress:
            progress.update(step, loss=loss.item() * cfg.grad_accum, lr=lr,
                            tokens_per_s=tokens / (time.perf_counter() - t0))
        if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.max_steps:
            vl = valid_loss(loss_fn, valid_samples, pad, cfg.batch_size, cfg.precision)
            history.append({"step": step, "valid_loss": round(vl, 4)})
            if progress:
                progress.write(f"step {step} valid loss {vl:.4f}")
        if world == 1 and ((cfg.save_every and step % cfg.save_every == 0) or step == cfg.stop_after):
            with atomic_path(ckpt_dir, is_dir=True, kind="tune-checkpoint") as tmp:
                torch.save({"params": {n: p.detach().cpu() for n, p in named}, "optimizer": opt.state_dict(),
                            "rng": torch.get_rng_state(), "step": step, "tokens": tokens, "history": history,
                            "config": dataclasses.asdict(cfg)}, tmp / "state.pt")
        if step == cfg.stop_after:
            return {"stopped_after": step, "checkpoint": str(ckpt_dir), "method": cfg.method}
    elapsed = time.perf_counter() - t0
    agree, full_state = None, None
    if sharded:  # every rank holds a shard: gather the full (trainable) weights for rank 0 to save
        full_state = {k.removeprefix("inner."): v for k, v in acc.get_state_dict(loss_fn).items()}
    elif acc is not None:
        checksum = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1)
        sums = acc.gather(checksum.to(acc.device))
        agree = bool(torch.allclose(sums, sums[0].expand_as(sums)))
        loss_fn = acc.unwrap_model(loss_fn)
    after = valid_loss(loss_fn, valid_samples, pad, cfg.batch_size, cfg.precision)
    out = Path(out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out), **({"state_dict": full_state} if full_state is not None else {}))
        if cfg.method == "clm":
            tok.save_pretrained(str(out))
    if acc is not None:
        acc.wait_for_everyone()
    size = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    result = {"method": cfg.method, "base": model_id, "valid_loss_before": round(before, 4),
              "valid_loss_after": round(after, 4), "train_tokens_per_s": round(tokens / elapsed, 1),
              "train_tokens": tokens, "steps": cfg.max_steps, "wall_s": round(elapsed, 2),
              "adapter_bytes": size, "trainable_params": sum(p.numel() for p in params),
              "train_samples": len(train_samples), "valid_samples": len(valid_samples), "world_size": world,
              "sharded": sharded, "precision": "bf16" if autocast else "fp32", "ranks_agree": agree,
              "resumed_from": start - 1 if start > 1 else None, "valid_history": history}
    if rank != 0:
        return result
    record = {"config": dataclasses.asdict(cfg), "result": result, "prompt_shape": prompt_shape}
    write_text_atomic(out / "extes_tune.json", json.dumps(record, indent=1) + "\n")
    return result

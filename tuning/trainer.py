"""The project's trainer: LoRA and LLaMA-Adapter (peft) on a local LLaMA, or full causal-LM fine-tuning.

A plain loop in the nanoGPT manner: length-bucketed batches (no padding trained on), AdamW with warmup and linear
decay, gradient accumulation and clipping, bf16 autocast where the hardware has it, optional gradient
checkpointing, one log line per interval (step, loss, lr, tokens/s, elapsed), valid loss before and after, and a
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

from extes.corpus.atomic import write_text_atomic
from extes.errors import InputError

log = logging.getLogger(__name__)
METHODS = ("lora", "adapter", "clm")


@dataclass
class TuneConfig:
    """Every knob of a tuning run, with the usual LLaMA-LoRA defaults."""

    method: str = "lora"
    base: str = "local/smollm2-135m-instruct"
    variant: str = "strategies"
    max_steps: int = 30
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 0.0  # 0: 2e-4 for lora, 1e-2 for adapter, 5e-5 for clm
    warmup_steps: int = 3
    seq_len: int = 512
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    adapter_len: int = 10
    adapter_layers: int = 8
    last_turn_only: bool = False
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile the model (on an H100: 43% -> 62% of bf16 peak for 7B LoRA)
    log_every: int = 5
    eval_every: int = 0  # 0: valid loss before and after only
    save_every: int = 0  # 0: no checkpoints; else OUT/checkpoint every N steps (single process)
    resume: bool = False  # continue from OUT/checkpoint
    stop_after: int = 0  # stop cleanly after this step, keeping the checkpoint (a time-boxed job); 0: run to the end
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.max_steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise InputError("--max-steps, --batch-size and --grad-accum must be at least 1")
        if self.lora_r < 1:
            raise InputError(f"--lora-r {self.lora_r}: give a rank of at least 1")
        if not self.lr:
            self.lr = {"lora": 2e-4, "adapter": 1e-2, "clm": 5e-5}[self.method]


def load_base(base: str):
    """(tokenizer, fp32 model, canonical id) for a model string or a Hugging Face folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from extes.programs.lm.weights import resolve_local

    name = base.split("/", 1)[1] if base.startswith("local/") else base
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
        pc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=cfg.lora_targets, task_type="CAUSAL_LM")
    else:
        layers = min(cfg.adapter_layers, model.config.num_hidden_layers)
        pc = AdaptionPromptConfig(adapter_len=cfg.adapter_len, adapter_layers=layers, task_type="CAUSAL_LM")
    return get_peft_model(model, pc)


def valid_loss(model, samples, pad_id: int, batch_size: int) -> float:
    """Token-weighted mean loss on the samples."""
    import torch

    from extes.tuning.sft import batches

    model.eval()
    total = count = 0.0
    n_batches = math.ceil(len(samples) / batch_size)
    it = batches(samples, batch_size, pad_id, seed=123)
    with torch.inference_mode():
        for _ in range(n_batches):
            b = next(it)
            n = int((b["labels"][:, 1:] != -100).sum())
            b = {k: v.to(model.device) for k, v in b.items()}
            total += float(model(**b).loss) * n
            count += n
    model.train()
    return total / count if count else float("nan")


def train(cfg: TuneConfig, train_samples, valid_samples, tok, model, out: Path, *, model_id: str,
          progress=None) -> dict[str, Any]:
    import torch

    from extes.tuning.sft import batches

    torch.manual_seed(cfg.seed)
    if torch.cuda.is_available():
        model = model.cuda()
    model = wrap(model, cfg)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    params = [p for p in model.parameters() if p.requires_grad]
    cuda = torch.cuda.is_available()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, fused=cuda)
    pad = tok.pad_token_id
    before = valid_loss(model, valid_samples, pad, cfg.batch_size)
    # Under `accelerate launch` (DDP; gloo on CPU, NCCL on GPUs) every rank takes every world-th batch of the same
    # seeded sequence, and gradients are averaged across ranks; a single process runs the same code unchanged.
    world, rank, acc = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")), None
    if world > 1:
        from accelerate import Accelerator

        acc = Accelerator(cpu=not cuda)
        model, opt = acc.prepare(model, opt)
    step_model = torch.compile(model) if cfg.compile else model
    shared = batches(train_samples, cfg.batch_size, pad, seed=cfg.seed)
    it = (b for k, b in enumerate(shared) if k % world == rank)
    autocast = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    ckpt_dir = Path(out) / "checkpoint"
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    start, tokens, history = 1, 0, []
    if cfg.resume:
        if not (ckpt_dir / "state.pt").exists():
            raise InputError(f"--resume: no checkpoint in {ckpt_dir}; run with --save-every N first")
        state = torch.load(ckpt_dir / "state.pt", weights_only=False)
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
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                loss = step_model(**b).loss / cfg.grad_accum
            if acc is not None:
                acc.backward(loss)
            else:
                loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            el = time.perf_counter() - t0
            line = (f"step {step}/{cfg.max_steps} loss {loss.item() * cfg.grad_accum:.4f} lr {lr:.2e} "
                    f"tok/s {tokens / el:.0f} elapsed {el:.1f}s")
            log.info(line)
            if progress:
                progress(line)
        if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.max_steps:
            vl = valid_loss(model, valid_samples, pad, cfg.batch_size)
            history.append({"step": step, "valid_loss": round(vl, 4)})
            if progress:
                progress(f"step {step} valid loss {vl:.4f}")
        if world == 1 and ((cfg.save_every and step % cfg.save_every == 0) or step == cfg.stop_after):
            from extes.corpus.atomic import atomic_path

            with atomic_path(ckpt_dir, is_dir=True) as tmp:
                torch.save({"params": {n: p.detach().cpu() for n, p in named}, "optimizer": opt.state_dict(),
                            "rng": torch.get_rng_state(), "step": step, "tokens": tokens, "history": history,
                            "config": dataclasses.asdict(cfg)}, tmp / "state.pt")
        if step == cfg.stop_after:
            return {"stopped_after": step, "checkpoint": str(ckpt_dir), "method": cfg.method}
    elapsed = time.perf_counter() - t0
    agree = None
    if acc is not None:
        checksum = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1)
        sums = acc.gather(checksum.to(acc.device))
        agree = bool(torch.allclose(sums, sums[0].expand_as(sums)))
        model = acc.unwrap_model(model)
    after = valid_loss(model, valid_samples, pad, cfg.batch_size)
    out = Path(out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out))
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
              "ranks_agree": agree, "resumed_from": start - 1 if start > 1 else None, "valid_history": history}
    if rank != 0:
        return result
    write_text_atomic(out / "extes_tune.json", json.dumps({"config": dataclasses.asdict(cfg), "result": result},
                                                          indent=1) + "\n")
    return result

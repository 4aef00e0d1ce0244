"""GPU: LoRA (q/v, r=8) training throughput and memory on a LLaMA-7B-shaped model (random weights), seq 512,
batch 8, bf16 — the plain peft loop against the project's recipe, measured in the same process.

    python benchmarks/gpu_lora.py --json          # on a CUDA machine; needs torch, transformers, peft

Recipes (each after warm-up steps, timed with CUDA synchronisation):
- plain: peft LoRA on the bf16 model, eager PyTorch, AdamW — the baseline the issue measured.
- compiled: the same with `torch.compile` on the model and fused AdamW (the project's GPU recipe).
- *_ckpt: with gradient checkpointing (non-reentrant), for the memory target.
- *_ckptN (e.g. compiled_ckpt12): selective checkpointing, the first N of the 32 layers only
  (`extes tune --checkpoint-layers N`), to meet the speed and memory targets at once.
MFU counts 4·N FLOPs per token (forward, plus backward through the frozen weights; attention and the LoRA
matrices are left out), against a bf16 8192³ matmul measured in the same run.
"""

from __future__ import annotations

import json
import os
import time

import torch
from _common import parse_options


def matmul_peak() -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - t)


def build():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=2048)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model.config.use_cache = False
    n = sum(p.numel() for p in model.parameters())
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    return model, n


def run(model, *, compiled: bool, ckpt: bool, bs: int, seq: int, steps: int, warm: int,
        ckpt_layers: int = 0) -> dict:
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
        if ckpt_layers:  # as tuning/trainer.py's select_checkpointed_layers (this script runs without extes)
            from transformers.modeling_layers import GradientCheckpointingLayer

            layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
            for k, layer in enumerate(layers):
                layer.gradient_checkpointing = k < ckpt_layers
    else:
        model.gradient_checkpointing_disable()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=compiled)
    fwd = torch.compile(model) if compiled else model
    x = torch.randint(0, 32000, (bs, seq), device="cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t_first = time.perf_counter()
    for i in range(warm + steps):
        if i == warm:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            warm_s = t0 - t_first
        loss = fwd(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"tokens_per_s": round(steps * bs * seq / dt, 1), "peak_mem_gib": round(torch.cuda.max_memory_allocated()
            / 2**30, 2), "step_s": round(dt / steps, 4), "warmup_s": round(warm_s, 1), "loss": round(loss.item(), 3)}


def main() -> None:
    args = parse_options(__doc__, bs=8, seq=512, steps=10, warm=3,
                         recipes="plain,plain_ckpt,compiled,compiled_ckpt,compiled_ckpt16,compiled_ckpt12")
    out = os.environ.get("OUT")
    result = {"card": torch.cuda.get_device_name(), "torch": torch.__version__}
    import peft
    import transformers

    result["transformers"], result["peft"] = transformers.__version__, peft.__version__
    result["matmul_peak_tflops"] = round(matmul_peak() / 1e12, 1)
    model, n = build()
    result["params"] = n
    for name in args.recipes.split(","):
        tail = name.rpartition("ckpt")[2] if "ckpt" in name else ""
        r = run(model, compiled=name.startswith("compiled"), ckpt="ckpt" in name, bs=args.bs, seq=args.seq,
                steps=args.steps, warm=args.warm, ckpt_layers=int(tail) if tail.isdigit() else 0)
        r["mfu"] = round(r["tokens_per_s"] * 4 * n / (result["matmul_peak_tflops"] * 1e12), 3)
        result[name] = r
        print(json.dumps({name: r}), flush=True)
        if out:
            with open(os.path.join(out, "gpu_lora.json"), "w") as fh:
                json.dump(result, fh, indent=1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1), flush=True)


if __name__ == "__main__":
    main()

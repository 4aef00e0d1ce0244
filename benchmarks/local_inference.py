"""Local inference of the embedded model: load time, decode speed, first-token latency, peak RSS of `extes reply`,
with llama.cpp on the same GGUF measured in the same run as the reference (null when llama-cpp-python is absent).

    python benchmarks/local_inference.py --json

Decode speed is greedy decoding of exactly N new tokens for one fixed prompt, after one warm-up run, through the
lean loop `LocalLM.generate` uses (the headline figure) and through transformers' `generate` (min_new_tokens = N;
also for the bf16 and fp32 rows); llama.cpp decodes the same chat with the same thread count.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from _common import parse_options

PROMPT = [{"role": "user", "content": "I failed my exam again and I feel worthless. What should I do?"}]


def decode_speed(lm, n: int) -> tuple[float, float]:
    import torch

    ids = lm._inputs(PROMPT)
    kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=lm.tokenizer.eos_token_id)
    with torch.inference_mode():
        lm.hf_model.generate(ids, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})  # warm-up
        t0 = time.perf_counter()
        lm.hf_model.generate(ids, **{**kwargs, "max_new_tokens": 1, "min_new_tokens": 1})
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        lm.hf_model.generate(ids, **kwargs)
        total = time.perf_counter() - t0
    return n / total, first


def fast_decode_speed(lm, n: int) -> float:
    """The lean loop `LocalLM.generate` uses (programs/lm/fastdecode.py), exactly n tokens (no end-of-text stop)."""
    import torch
    from transformers import LogitsProcessorList

    from extes.programs.lm.fastdecode import decoder_for  # lazy: programs.lm.fastdecode imports torch

    dec = decoder_for(lm.hf_model)
    ids = lm._inputs(PROMPT)
    with torch.inference_mode():
        dec.generate(ids, max_new_tokens=8, processors=LogitsProcessorList(), eos=set())  # warm-up
        t0 = time.perf_counter()
        out = dec.generate(ids, max_new_tokens=n, processors=LogitsProcessorList(), eos=set())
        total = time.perf_counter() - t0
    assert len(out) == n
    return n / total


def llamacpp_speed(n: int, threads: int) -> float | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import Llama

    from extes.programs.lm.weights import embedded_gguf  # lazy: programs.lm.weights imports dspy

    llm = Llama(model_path=str(embedded_gguf("smollm2-135m-instruct")), n_ctx=1024, n_threads=threads, verbose=False)
    llm.create_chat_completion(messages=PROMPT, max_tokens=8, temperature=0)
    t0 = time.perf_counter()
    out = llm.create_chat_completion(messages=PROMPT, max_tokens=n, temperature=0)
    return out["usage"]["completion_tokens"] / (time.perf_counter() - t0)


def reply_peak_rss_mb() -> float:
    exe = Path(sys.executable).parent / "extes"
    proc = subprocess.Popen([str(exe), "reply", "I failed my exam again", "--strategy", "Suggest Options", "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the largest of all children so far
    if status:
        raise SystemExit(f"extes reply failed with status {status}")
    return usage.ru_maxrss / 1024


def main() -> None:
    args = parse_options(__doc__, tokens=128)
    # First, while this process is still small: a forked child's peak RSS counts the parent's pages it started with.
    peak_rss = reply_peak_rss_mb()
    import torch

    from extes.programs.lm import local  # lazy: programs.lm.local imports dspy
    from extes.programs.lm.weights import converted_folder, embedded_gguf

    converted_folder(embedded_gguf("smollm2-135m-instruct"))  # the one-time conversion is not what we time
    t0 = time.perf_counter()
    lm = local.LocalLM()  # default precision (auto: exact q4 where torch has the int4 CPU kernel)
    load_s = time.perf_counter() - t0
    hf_tok_s, first = decode_speed(lm, args.tokens)
    tok_s = fast_decode_speed(lm, args.tokens)
    bf16_tok_s, _ = decode_speed(local.LocalLM(precision="bf16"), args.tokens)
    fp32_tok_s, _ = decode_speed(local.LocalLM(precision="fp32"), args.tokens)
    ref = llamacpp_speed(args.tokens, torch.get_num_threads())
    result = {
        "load_s": round(load_s, 2),
        "decode_tok_s": round(tok_s, 1),
        "first_token_s": round(first, 3),
        "peak_rss_mb": round(peak_rss),
        "llamacpp_decode_tok_s": round(ref, 1) if ref else None,
        "hf_generate_decode_tok_s": round(hf_tok_s, 1),
        "bf16_decode_tok_s": round(bf16_tok_s, 1),
        "fp32_decode_tok_s": round(fp32_tok_s, 1),
        "precision": lm.precision,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
    }
    if result["llamacpp_decode_tok_s"]:
        result["ratio_vs_llamacpp"] = round(result["decode_tok_s"] / result["llamacpp_decode_tok_s"], 3)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()

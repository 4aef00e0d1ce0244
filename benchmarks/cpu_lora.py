"""CPU LoRA training on dialogue data: the project's trainer against a naive padded Hugging Face `Trainer`, same
samples, same steps, same batch size, in the same run; effective (non-padding) tokens per second.

    python benchmarks/cpu_lora.py --steps 10 --json

The naive baseline pads every sample to the sequence length (the common `padding="max_length"` recipe) and
trains with `transformers.Trainer` in fp32 (its default). The project's trainer uses length-bucketed batches
(tuning/sft.py), the output head only at labelled positions and, with `--precision auto`, bf16 autocast on CPUs with
AVX-512-BF16/AMX (tuning/trainer.py). For context the run also measures the naive Trainer with `bf16=True` and the
project's trainer in fp32, so the gain can be told apart: padding, head, precision.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time

from _common import parse_options

from extes.corpus.seeds import read_seed_folder
from extes.tuning.sft import chat_samples


def main() -> None:
    args = parse_options(__doc__, steps=10, batch_size=4, seq_len=512)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from extes.tuning.trainer import TuneConfig, load_base, train  # lazy: tuning.trainer imports dspy

    tok, _, model_id, _ = load_base("local/smollm2-135m-instruct")
    samples = chat_samples(read_seed_folder(), tok, max_len=args.seq_len)
    real_tokens_per_sample = sum(len(s.input_ids) for s in samples) / len(samples)

    # The project's trainer, default precision (auto) and fp32.
    ours = {}
    for precision in ("auto", "fp32"):
        cfg = TuneConfig(method="lora", max_steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
                         log_every=10**9, precision=precision)
        _, model, _, _ = load_base("local/smollm2-135m-instruct")
        with tempfile.TemporaryDirectory() as out:
            ours[precision] = train(cfg, samples, samples[:8], tok, model, out, model_id=model_id)

    rows = []
    for s in samples:
        pad = args.seq_len - len(s.input_ids)
        rows.append({"input_ids": s.input_ids + [tok.pad_token_id] * pad, "labels": s.labels + [-100] * pad,
                     "attention_mask": [1] * len(s.input_ids) + [0] * pad})

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            return {k: torch.tensor(v) for k, v in rows[i].items()}

    # Naive: every sample padded to seq_len, HF Trainer, same LoRA; fp32 (the baseline) and bf16 (context).
    naive = {}
    for bf16 in (False, True):
        _, base, _, _ = load_base("local/smollm2-135m-instruct")
        lora = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                               target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
        with tempfile.TemporaryDirectory() as out:
            targs = TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch_size,
                                      max_steps=args.steps, learning_rate=2e-4, logging_steps=10**9,
                                      save_strategy="no", report_to=[], use_cpu=True, bf16=bf16,
                                      dataloader_num_workers=0, disable_tqdm=True, seed=0)
            trainer = Trainer(model=lora, args=targs, train_dataset=DS())
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its metrics dict; stdout is the result
                trainer.train()
            naive[bf16] = time.perf_counter() - t0
    # Effective tokens: the real (non-padding) tokens in the batches the naive run trained on; HF samples in random
    # order, so the expectation over the data is used.
    wall = naive[False]
    naive_effective = args.steps * args.batch_size * real_tokens_per_sample / wall
    result = {"samples": len(samples), "mean_sample_tokens": round(real_tokens_per_sample, 1),
              "project_tokens_per_s": ours["auto"]["train_tokens_per_s"],
              "project_precision": ours["auto"]["precision"],
              "project_fp32_tokens_per_s": ours["fp32"]["train_tokens_per_s"],
              "naive_padded_effective_tokens_per_s": round(naive_effective, 1),
              "naive_padded_total_tokens_per_s": round(args.steps * args.batch_size * args.seq_len / wall, 1),
              "naive_padded_bf16_effective_tokens_per_s":
                  round(args.steps * args.batch_size * real_tokens_per_sample / naive[True], 1),
              "speedup": round(ours["auto"]["train_tokens_per_s"] / naive_effective, 2),
              "valid_loss": {p: [ours[p]["valid_loss_before"], ours[p]["valid_loss_after"]] for p in ours},
              "steps": args.steps, "batch_size": args.batch_size, "seq_len": args.seq_len,
              "threads": torch.get_num_threads()}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

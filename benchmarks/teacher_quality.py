"""Teacher candidates, measured briefly: load time, decode tokens/s, a reply sample, and strategy-label agreement.

Agreement is with the seed dialogues' labels on `--n` assistant turns (strategies taken in turn, so rare ones
count): `classify` labels the given utterance (ClassifyStrategy, the annotation step a teacher does for a
corpus), `select` picks the strategy for the next reply from the history alone (SelectStrategy, the supporter's
first step; many strategies fit, so lower agreement is expected). Both go through the project's adapter, which
scores the 16 labels by likelihood. One JSON object on stdout; progress on stderr.

    python benchmarks/teacher_quality.py -m local/qwen2.5-coder-1.5b-instruct --n 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import dspy

from extes.corpus.formats import read_corpus
from extes.programs.adapter import SmallChatAdapter
from extes.programs.lm import load_lm
from extes.signatures.classify import ClassifyStrategy
from extes.signatures.support import SelectStrategy
from extes.tuning.datasets import turn_examples
from extes.tuning.program_metrics import macro_f1

PROMPT = [{"role": "user", "content": "I failed my driving test for the third time today and I feel stupid. "
                                      "My friends all passed on their first try."}]


def speed(lm, max_tokens: int) -> dict:
    t0 = time.perf_counter()
    text, prompt_tokens, completion_tokens = lm.generate(PROMPT, max_tokens=max_tokens)
    dt = time.perf_counter() - t0
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "seconds": round(dt, 2),
            "tokens_per_s": round(completion_tokens / dt, 2), "sample": text}


def agreement(lm, examples, task: str) -> dict:
    pairs, t0 = [], time.perf_counter()
    predict = dspy.Predict(ClassifyStrategy if task == "classify" else SelectStrategy)
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        for i, ex in enumerate(examples):
            inputs = {"history": ex.history}
            if task == "classify":
                inputs["utterance"] = ex.utterance
            pairs.append((ex.strategy, predict(**inputs).strategy))
            # The pair goes to stderr as it comes, so a run cut short still shows what it measured.
            print(f"{task} {i + 1}/{len(examples)} {time.perf_counter() - t0:.0f}s gold={pairs[-1][0]!r} "
                  f"pred={pairs[-1][1]!r}", file=sys.stderr, flush=True)
    n = len(pairs)
    return {"n": n, "accuracy": round(100 * sum(g == p for g, p in pairs) / n, 1),
            "macro_f1": round(100 * macro_f1(pairs), 1), "seconds_per_turn": round((time.perf_counter() - t0) / n, 2),
            "predicted": sorted({p for _, p in pairs}), "pairs": pairs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="local/qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--n", type=int, default=32, help="seed turns for each agreement task")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--tasks", default="classify,select")
    args = ap.parse_args()
    t0 = time.perf_counter()
    lm = load_lm(args.model, max_tokens=args.max_tokens)
    out = {"model": args.model, "backend": type(lm).__name__, "cpus": os.cpu_count(),
           "load_s": round(time.perf_counter() - t0, 2)}
    out["speed"] = speed(lm, args.max_tokens)
    examples = turn_examples(read_corpus("assets/seeds").dialogues, "classifier", limit=args.n, balance=True)
    for task in filter(None, args.tasks.split(",")):
        out[task] = agreement(lm, examples, task)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

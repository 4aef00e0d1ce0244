"""The teacher's decoding on llama.cpp: one thread against two, and four concurrent calls batched against queued.

Each configuration runs in a fresh process (llama.cpp's thread count is fixed when the model loads): the teacher
(`local/qwen2.5-coder-1.5b-instruct`, `TeacherLM`) answers the opening of real seed dialogues (a system line and
the first seeker message, as a supporter), greedy, `--new` tokens each, after one short warm-up call. Configurations:
`threads1` and `threads2` (one call), `queued4` (four calls from four threads, serialized on the model's lock, two
threads) and `batched4` (the same four calls through `llamacpp/GGUF` with `batched=True`, the continuous batcher
of `extes serve`, two threads). Reported per configuration: wall seconds, prompt and completion tokens,
completion tokens per second; and the ratios threads2/threads1 and batched4/queued4. Run it alone on the machine:
llama.cpp's threads spin-wait for each other, so a second busy process distorts every figure.

    python benchmarks/teacher_decode.py --json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from _common import parse_options

from extes.corpus.seeds import read_seed_folder

CONFIGS = {"threads1": (1, False, 1), "threads2": (2, False, 1), "queued4": (2, False, 4), "batched4": (2, True, 4)}


def child(name: str, new: int) -> dict:
    from extes.programs.lm import load_lm  # lazy: programs.lm imports dspy (the parent only spawns children)
    from extes.programs.lm.split_gguf import SPLIT_MODELS, assemble  # lazy: likewise

    threads, batched, k = CONFIGS[name]
    path = assemble(SPLIT_MODELS["qwen2.5-coder-1.5b-instruct"])  # the GGUF in the cache, sha256 checked
    lm = load_lm(f"llamacpp/{path}", batched=True) if batched else load_lm("local/qwen2.5-coder-1.5b-instruct")
    prompts = []
    for d in read_seed_folder()[:k]:
        first = next(t for t in d.turns if t.role == "user")
        prompts.append([{"role": "system", "content": "You are a warm, skilled emotional supporter. Reply in two or "
                                                      "three sentences."},
                        {"role": "user", "content": first.text}])
    lm.generate(prompts[0], max_tokens=4, temperature=0.0)
    out: list = [None] * k

    def one(i: int) -> None:
        out[i] = lm.generate(prompts[i], max_tokens=new, temperature=0.0)

    t0 = time.perf_counter()
    workers = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    completion = sum(o[2] for o in out)
    return {"config": name, "threads": threads, "batched": batched, "calls": k, "wall_s": round(wall, 2),
            "prompt_tokens": sum(o[1] for o in out), "completion_tokens": completion,
            "tok_s": round(completion / wall, 2)}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
        return
    args = parse_options(__doc__, new=64)
    rows = {}
    for name, (threads, _, _) in CONFIGS.items():
        env = {**os.environ, "EXTES_LLAMACPP_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, __file__, "--child", name, str(args.new)], env=env, text=True,
                              capture_output=True, check=True)
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {rows[name]['tok_s']} tok/s ({rows[name]['wall_s']} s)", file=sys.stderr)
    result = {"rows": rows,
              "threads2_vs_threads1": round(rows["threads2"]["tok_s"] / rows["threads1"]["tok_s"], 2),
              "batched4_vs_queued4": round(rows["batched4"]["tok_s"] / rows["queued4"]["tok_s"], 2),
              "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for r in rows.values():
            print(f"{r['config']:<9} {r['tok_s']:>6} tok/s  {r['wall_s']:>6} s  {r['completion_tokens']} tokens")
        print(f"threads 2 / 1: {result['threads2_vs_threads1']}x; batched / queued at 4: "
              f"{result['batched4_vs_queued4']}x")


if __name__ == "__main__":
    main()

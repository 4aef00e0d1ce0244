"""Turn-mode synthesis with the teacher on llama.cpp, with and without saved KV caches (programs/lm/kv_snapshots.py).

The same dialogues (scenes and seed demos from the real seeds, the same ids, so the same number of exchanges) are
written twice in one run, without saved caches (the baseline: llama.cpp keeps only the live prefix, so each of the
three prompts that take turns is evaluated whole) and with them; the order alternates per dialogue so that machine
drift does not favour one. Reported: seconds per dialogue, the ratio, tokens reused from saved caches, and whether
the dialogues came out the same. One JSON object on stdout; progress on stderr.

    EXTES_LLAMACPP_THREADS=2 python benchmarks/teacher_turns.py --dialogues 2 --exchanges 4 --json
"""

from __future__ import annotations

import json
import sys
import time

import dspy
from _common import parse_options

from extes.corpus.assets import assets_dir
from extes.corpus.formats import read_corpus
from extes.programs.adapter import SmallChatAdapter
from extes.programs.lm import load_lm
from extes.programs.synthesizer import DialogueSynthesizer


def main() -> None:
    args = parse_options(__doc__, model="local/qwen2.5-coder-1.5b-instruct", dialogues=2, exchanges=4)
    seeds = read_corpus(assets_dir() / "seeds").dialogues
    lm = load_lm(args.model, max_tokens=90, cache=False)
    snaps = getattr(lm, "snapshots", None)
    if snaps is None:
        sys.exit(f"{args.model} is not running on llama.cpp here; install the extra first (make teacher)")
    program = DialogueSynthesizer(mode="turns", min_exchanges=args.exchanges, max_exchanges=args.exchanges)
    runs = {"without": [], "with": []}
    same = []
    for i in range(args.dialogues):
        seed = seeds[(i * 7) % len(seeds)]
        texts = {}
        for setting in (("without", "with") if i % 2 == 0 else ("with", "without")):
            snaps.slots, snaps.saved = (4 if setting == "with" else 0), []
            lm.llm.reset()
            reused0 = snaps.reused_tokens
            t0 = time.perf_counter()
            with dspy.context(lm=lm, adapter=SmallChatAdapter()):
                d = program(scene=seed.scene, dialogue_id=f"bench-{i:03d}", demos=[seed],
                            config={"rollout_id": i}).dialogue
            secs = time.perf_counter() - t0
            runs[setting].append({"seconds": round(secs, 1), "turns": len(d.turns),
                                  "reused_tokens": snaps.reused_tokens - reused0})
            texts[setting] = [t.text for t in d.turns]
            print(f"dialogue {i} {setting:>7} saved caches: {secs:6.1f} s, {len(d.turns)} turns", file=sys.stderr)
        same.append(texts["with"] == texts["without"])
    total = {k: sum(r["seconds"] for r in v) for k, v in runs.items()}
    out = {"model": args.model, "dialogues": args.dialogues, "exchanges": args.exchanges,
           "threads": lm.llm.n_threads, "seconds_without": total["without"], "seconds_with": total["with"],
           "speedup": round(total["without"] / max(total["with"], 1e-9), 2), "same_dialogues": same, "runs": runs,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(out, indent=None if args.json else 1))


if __name__ == "__main__":
    main()

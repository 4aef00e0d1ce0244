"""Strategy classification by likelihood on the embedded model: `score_choices` on the lean loop (prefix cache, the
16 labels as one batch over the cached prompt) against transformers' forward, on the seed dialogues.

    python benchmarks/strategy_scoring.py --dialogues 4 --json

The `StrategyClassifier` program (the project's adapter: the 16 labels scored by mean log-probability) labels every
assistant turn of the first N seed dialogues (assets/seeds, real data), turn after turn as `extes evaluate
--strategy predicted` and the labelling of imports do, once per path in the same run: `lean` (LocalLM as it is)
and `forward` (transformers' forward under the model lock, the path before this change; selected by making
`fastdecode.decoder_for` answer None). Reported: seconds per turn, the ratio, how many labels the two paths agree
on, and the accuracy of each against the seed labels. Fresh prefix cache and no call cache for each path.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml
from _common import parse_options


def seed_turns(n: int) -> list[tuple[list[dict], str, str]]:
    """(history, utterance, gold label) for every assistant turn of the first n seed dialogues."""
    out = []
    paths = sorted(Path(__file__).resolve().parents[1].joinpath("assets", "seeds").glob("*.yaml"))
    dialogues = [d for p in paths for d in yaml.safe_load(p.read_text()).get("dialogues", [])][:n]
    for d in dialogues:
        history: list[dict] = []
        for t in d["turns"]:
            if "user" in t:
                history.append({"role": "user", "text": t["user"]})
            else:
                out.append((list(history), t["assistant"], t.get("strategy")))
                history.append({"role": "assistant", "text": t["assistant"]})
    return out


def label_all(turns, lm) -> tuple[list[str], float]:
    import dspy

    from extes.programs.adapter import SmallChatAdapter
    from extes.programs.classifier import StrategyClassifier

    program = StrategyClassifier()
    labels = []
    t0 = time.perf_counter()
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        for history, utterance, _ in turns:
            labels.append(program(history=history, utterance=utterance).strategy)
    return labels, time.perf_counter() - t0


def main() -> None:
    a = parse_options(__doc__, dialogues=4)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from extes.programs.lm import fastdecode
    from extes.programs.lm.local import LocalLM

    turns = seed_turns(a.dialogues)
    lm = LocalLM(cache=False)
    lm.hf_model._extes_decoder = None  # a fresh decoder (and prefix cache) for this run
    report: dict = {"dialogues": a.dialogues, "turns": len(turns), "precision": lm.precision,
                    "load_avg_start": os.getloadavg()[0]}
    real = fastdecode.decoder_for
    lm.score_choices([{"role": "user", "content": "hi"}], ["a", "b"])  # warm-up
    for path in ("forward", "lean"):
        fastdecode.decoder_for = real if path == "lean" else (lambda model: None)
        if path == "lean":
            lm.hf_model._extes_decoder = None
        try:
            labels, wall = label_all(turns, lm)
        finally:
            fastdecode.decoder_for = real
        report[path] = {"s_per_turn": round(wall / len(turns), 3), "wall_s": round(wall, 1),
                        "accuracy": round(sum(p == g for p, (_, _, g) in zip(labels, turns, strict=True))
                                          / len(turns), 3), "labels": labels}
    dec = fastdecode.decoder_for(lm.hf_model)
    report["lean"]["prefix_cache"] = dec.prefix.stats() if dec.prefix else None
    report["forward_over_lean"] = round(report["forward"]["wall_s"] / report["lean"]["wall_s"], 2)
    report["agree"] = sum(x == y for x, y in zip(report["lean"]["labels"], report["forward"]["labels"], strict=True))
    report["load_avg_end"] = os.getloadavg()[0]
    if not a.json:
        for path in ("forward", "lean"):
            report[path].pop("labels")
    print(json.dumps(report, indent=1) if a.json else report)


if __name__ == "__main__":
    main()

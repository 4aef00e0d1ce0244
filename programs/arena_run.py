"""`extes arena run`: every role card played with every supporter, then every pair judged per Table 9 criterion.

The run folder holds `transcripts.jsonl` (corpus Dialogues, one per card x supporter), `judgments.jsonl` (one per
card x pair: five criteria, both orders), `rubrics.jsonl` (optional ESC-Eval scores), `failed.jsonl` and
`manifest.json`. Records are appended with one fsync'ed write each through `corpus/runstore.py`, so a run killed at
any moment resumes with the same command: finished games and judgments are skipped, a cut-off one is played again
(with the same seed), nothing is written twice. Crisis cards are played but not judged pairwise: the check there is
whether the crisis layer answered with the escalation.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import dspy

from extes.corpus.atomic import write_text_atomic
from extes.corpus.provenance import git_hash, versions
from extes.corpus.runstore import RunStore
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.arena_judge import PairwiseJudge, RubricJudge, render_transcript
from extes.programs.arena_supporters import LiveSupporter, LMPool, SupporterSpec
from extes.programs.costs import cost_usd
from extes.programs.safety import SafetyChecker
from extes.programs.safety_locale import escalation_texts
from extes.programs.saved import load_saved
from extes.programs.seeker import SeekerSimulator
from extes.signatures.arena import RoleCard
from extes.signatures.dialogue import Dialogue, Meta, Turn

log = logging.getLogger(__name__)
FILES = ("transcripts", "judgments", "rubrics", "failed")
RESUME_KEYS = ("supporters", "seeker", "judge", "turns", "seed", "cards_hash", "rubrics", "judge_program",
               "calibrate")


@dataclass
class ArenaConfig:
    """Everything an arena run depends on; stored in RUN/manifest.json."""

    supporters: list[str]
    cards: str
    out: str
    seeker: str = "scripted"
    judge: str = "scripted"
    turns: int = field(default=10, metadata={"help": "Seeker messages per game (the paper: at least 10)"})
    seed: int = 0
    rubrics: bool = field(default=False, metadata={"help": "Also score each transcript on ESC-Eval's 7 rubrics"})
    rules_only_safety: bool = field(default=False, metadata={"help": "Crisis rules without the learned classifier"})
    locale: str | None = None
    judge_program: str | None = field(default=None, metadata={"help": "A compiled judge (extes compile judge)"})
    calibrate: bool = field(default=True, metadata={"help": "A scoring judge's likelihoods taken relative to its "
                                                            "prior on a content-free pair (PairwiseJudge)"})
    prices: str | None = None
    cards_hash: str = ""

    def __post_init__(self):
        if self.turns < 1:
            raise InputError(f"--turns {self.turns}: give at least 1")


def _seed_torch(seed: int) -> None:
    # A sampling local seeker draws from torch's generator; seeding it per card and turn gives every supporter
    # the same seeker behaviour at the same point (given the same history).
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


class ArenaRun:
    """One arena run folder, started or resumed."""

    def __init__(self, cfg: ArenaConfig, cards: list[RoleCard], specs: list[SupporterSpec], *,
                 pool: LMPool | None = None, progress=None):
        self.cfg, self.cards, self.specs, self.progress = cfg, cards, specs, progress
        cfg.cards_hash = hashlib.sha256("\n".join(c.model_dump_json() for c in cards).encode()).hexdigest()[:16]
        self.folder = Path(cfg.out)
        self._check_manifest()
        self.store = RunStore(self.folder, files=FILES, dialogues=("transcripts",))
        self.pool = pool or LMPool(max_tokens=120)
        checker = SafetyChecker(rules_only=cfg.rules_only_safety)
        self.supporters = {s.name: LiveSupporter(s, self.pool, checker, cfg.locale) for s in specs}
        self.seeker_lm = self.pool.get(cfg.seeker, temperature=0.7, top_p=0.95, max_tokens=60)
        self.judge_lm = self.pool.get(cfg.judge)
        self.seeker, self.rubric_judge = SeekerSimulator(), RubricJudge()
        self.judge = PairwiseJudge(calibrate=cfg.calibrate)
        if cfg.judge_program:
            load_saved(self.judge, cfg.judge_program, "--judge-program", "a compiled judge")
        self._write_manifest()

    # -- manifest -----------------------------------------------------------------------------------------------
    def _check_manifest(self):
        path = self.folder / "manifest.json"
        if not path.exists():
            return
        old, new = json.loads(path.read_text())["config"], asdict(self.cfg)
        old.setdefault("calibrate", False)  # a run begun before calibration judged uncalibrated
        diff = [k for k in RESUME_KEYS if old.get(k) != new.get(k)]
        if diff:
            raise InputError(f"{self.folder}: this run was started with other {', '.join(diff)} "
                             f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); rerun with the same options "
                             "or use another --out")

    def _write_manifest(self):
        manifest = {"config": asdict(self.cfg), "git": git_hash(), "versions": versions(),
                    "argv": [a for a in sys.argv if "key" not in a.lower()],
                    "updated_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        write_text_atomic(self.folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")

    # -- costs --------------------------------------------------------------------------------------------------
    def _usage(self, tracked: dict[str, dict], models: list[str]) -> dict[str, Any]:
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        for name, u in (tracked or {}).items():
            p, c = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
            usage["prompt_tokens"] += p
            usage["completion_tokens"] += c
            # DSPy keys usage by the LM's own name; prices are keyed by the model strings the user gave.
            key = next((m for m in models if m == name or m.endswith(str(name)) or str(name).endswith(m)), name)
            usage["cost_usd"] += cost_usd(key, p, c, self.cfg.prices)
        return usage

    def _tracked(self, fn, models: list[str]):
        from dspy.utils.usage_tracker import track_usage

        with track_usage() as tracker:
            result = fn()
        return result, self._usage(tracker.get_total_tokens(), models)

    # -- one game -----------------------------------------------------------------------------------------------
    def play(self, card: RoleCard, name: str) -> Dialogue:
        """The seeker of `card` talks with supporter `name` for up to `turns` messages."""
        cfg, sup = self.cfg, self.supporters[name]
        card_seed = int(hashlib.sha256(f"{cfg.seed}:{card.id}".encode()).hexdigest()[:8], 16)
        history: list[dict] = []
        problems, end, crisis_turns = [], None, []
        for turn in range(cfg.turns):
            _seed_torch(card_seed + turn)
            with dspy.context(lm=self.seeker_lm, adapter=SmallChatAdapter()):
                pred = self.seeker(card=card, history=history, seed=card_seed % 100_000)
            if pred.problems:
                problems.append({"turn": len(history), "codes": pred.problems})
            if not pred.message:
                end = pred.end
                break
            out = sup.reply(history, pred.message)
            if out["crisis"]:
                crisis_turns.append(len(history))
            history += [{"role": "user", "text": pred.message},
                        {"role": "assistant", "text": out["reply"], "strategy": out.get("strategy")}]
            if pred.end:
                end = pred.end
                break
        escalations = escalation_texts()
        meta = Meta(source="chat", model=sup.spec.spec, created_at=datetime.datetime.now(datetime.timezone.utc)
                    .isoformat(), origin=card.origin)
        meta.task = f"play:{card.id}:{name}"
        meta.arena = {"card": card.id, "supporter": name, "spec": sup.spec.spec, "seeker": cfg.seeker,
                      "seed": card_seed, "end": end or "turns", "role_problems": problems, "crisis_card": card.crisis,
                      "crisis_turns": crisis_turns,
                      "escalated": any(t["text"] in escalations for t in history if t["role"] == "assistant")}
        turns = [Turn(role=t["role"], text=t["text"], strategy=t.get("strategy")) for t in history]
        if not turns:
            turns = [Turn(role="user", text="(the seeker left without a message)")]
        return Dialogue(id=f"{card.id}--{name}", scene=card.scene, description=card.situation, turns=turns,
                        meta=meta)

    def _play_task(self, card: RoleCard, name: str) -> None:
        task = f"play:{card.id}:{name}"
        spec = self.supporters[name].spec
        try:
            d, usage = self._tracked(lambda: self.play(card, name), [spec.model, self.cfg.seeker])
        except Exception as e:  # noqa: BLE001 - a failed game is recorded with its reason and retried on resume
            self.store.append("failed", {"task": task, "status": "failed", "detail": f"{type(e).__name__}: "
                                         f"{str(e).splitlines()[0][:200] if str(e) else ''}"})
            log.warning("%s failed: %s", task, e)
            return
        d.meta.usage = usage
        self.store.append("transcripts", d.model_dump(mode="json"))

    # -- judging ------------------------------------------------------------------------------------------------
    def _judge_task(self, card: RoleCard, a: str, b: str, by_task: dict[str, Dialogue]) -> None:
        da, db = by_task[f"play:{card.id}:{a}"], by_task[f"play:{card.id}:{b}"]

        def run():
            with dspy.context(lm=self.judge_lm, adapter=SmallChatAdapter()):
                return self.judge(transcript_a=render_transcript(da), transcript_b=render_transcript(db))

        pred, usage = self._tracked(run, [self.cfg.judge])
        self.store.append("judgments", {
            "task": f"judge:{card.id}:{a}:{b}", "unit": card.id, "a": a, "b": b,
            "outcomes": pred.outcomes, "position_bias": pred.position_bias, "raw": pred.raw,
            "method": pred.method, "scores": pred.scores, "priors": pred.priors,
            "len_a": mean_reply_words(da), "len_b": mean_reply_words(db), "usage": usage})

    def _rubric_task(self, d: Dialogue) -> None:
        def run():
            with dspy.context(lm=self.judge_lm, adapter=SmallChatAdapter()):
                return self.rubric_judge(transcript=render_transcript(d))

        pred, usage = self._tracked(run, [self.cfg.judge])
        self.store.append("rubrics", {"task": f"rubric:{d.meta.task}", "unit": d.meta.arena["card"],
                                      "supporter": d.meta.arena["supporter"], "scores": pred.scores, "usage": usage})

    # -- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        names = [s.name for s in self.specs]
        plays = [(c, n) for c in self.cards for n in names]
        for i, (card, name) in enumerate(plays):
            if f"play:{card.id}:{name}" not in self.store.done or self._failed_only(f"play:{card.id}:{name}"):
                self._play_task(card, name)
            if self.progress:
                self.progress("play", i + 1, len(plays))
        by_task = {d.meta.task: d for d in self.store.accepted_dialogues()}
        pairs = [(c, a, b) for c in self.cards if not c.crisis for a, b in combinations(names, 2)
                 if f"play:{c.id}:{a}" in by_task and f"play:{c.id}:{b}" in by_task]
        for i, (card, a, b) in enumerate(pairs):
            if f"judge:{card.id}:{a}:{b}" not in self.store.done:
                self._judge_task(card, a, b, by_task)
            if self.progress:
                self.progress("judge", i + 1, len(pairs))
        if self.cfg.rubrics:
            for d in by_task.values():
                if f"rubric:{d.meta.task}" not in self.store.done and not d.meta.arena["crisis_card"]:
                    self._rubric_task(d)
        return {"run": str(self.folder), "games": len(by_task), "games_planned": len(plays),
                "judgments": self.store.count("judgments"), "failed": self.store.count("failed")}

    def _failed_only(self, task: str) -> bool:
        # A failed game is tried again on resume (a transient error); a finished one never.
        return not any(r["meta"]["task"] == task for r in self.store.records["transcripts"])


def mean_reply_words(d: Dialogue) -> float:
    replies = [len(t.text.split()) for t in d.turns if t.role == "assistant"]
    return round(sum(replies) / len(replies), 2) if replies else 0.0

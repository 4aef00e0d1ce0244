"""`extes synthesize`: the expansion loop of the paper, resumable, concurrent and cost-accounted.

Tasks are numbered; task i belongs to round i // round_size and to the scene that is furthest behind its quota
(Table 1's proportions, or uniform). Round 0 draws its demos from the seeds; a later round draws them from the
dialogues accepted in earlier rounds (the paper's "replace the seed dialogues with the generated ones"), falling
back to seeds where a scene has none yet. A round starts when the previous one has finished, so its demo pool
is fixed. Every task ends as exactly one record (accepted, queued, rejected or failed) in the run folder; a rerun
of the same command skips finished tasks and stops at `--target` accepted.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import random
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dspy

from extes.corpus.assets import load_taxonomy
from extes.corpus.atomic import claim_output_dir, write_text_atomic
from extes.corpus.dedup import DedupIndex
from extes.corpus.formats.base import RecordError
from extes.corpus.provenance import git_hash, recorded_argv, redact, scrub, versions
from extes.corpus.runstore import RunStore
from extes.corpus.seeds import read_seed_folder
from extes.corpus.validation import check_duplicate, dialogue_text, validate
from extes.errors import InputError, ModelError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.costs import cost_usd
from extes.programs.synthesizer import MODES, DialogueSynthesizer

log = logging.getLogger(__name__)
# A rejection for these reasons alone is drawn again with --redraws: the dialogue copied its demo or stopped early
# (half the teacher's rejections in the recipe; benchmarks/README.md), which a hotter sample may not repeat.
REDRAWN = frozenset({"demo_copy", "length"})
REDRAW_STEP, REDRAW_MAX_TEMPERATURE = 0.2, 1.5  # each redraw 0.2 hotter than the run's temperature
RESUME_KEYS = ("model", "mode", "seed", "demos", "round_size", "uniform", "scenes", "program")


@dataclass
class SynthConfig:
    """Everything a run depends on; stored (without secrets) in RUN/manifest.json."""

    model: str = field(metadata={"help": "The generator LM."})
    out: str = field(metadata={"help": "Run folder (created, or resumed)."})
    mode: str = field(default="whole", metadata={
        "help": "whole: one call per dialogue (capable models); turns: self-chat turn by turn (small models)."})
    target: int = field(default=10, metadata={"help": "Stop at this many accepted dialogues."})
    workers: int = field(default=1, metadata={"help": "Parallel LM calls."})
    demos: int = field(default=1, metadata={
        "help": "Demo dialogues per task (whole mode: shown whole; turn mode: their descriptions and a seeker line)."})
    round_size: int = field(default=0, metadata={"help": "Tasks per expansion round (default max(10, target/3))."})
    uniform: bool = field(default=False, metadata={"help": "Equal quotas per scene instead of Table 1's proportions."})
    scenes: list[str] = field(default_factory=list, metadata={"help": "Only these scenes, separated by ';'."})
    seed: int = field(default=0, metadata={"help": "Seed of each task's draw of demos."})
    max_cost: float | None = field(default=None, metadata={"help": "Stop cleanly once this many dollars are spent."})
    dup_threshold: float = field(default=0.5, metadata={
        "help": "3-gram Jaccard above which a dialogue is a near-duplicate of an accepted one."})
    retries: int = field(default=2, metadata={"help": "Retries of a failed or malformed call."})
    backoff_s: float = field(default=1.0, metadata={
        "help": "Seconds before the first retry; doubled at each further retry."})
    program: str | None = field(default=None, metadata={"help": "A compiled DialogueSynthesizer (Module.save JSON)."})
    api_base: str | None = field(default=None, metadata={"help": "An OpenAI-compatible server for openai/ models."})
    timeout_s: float | None = field(default=None, metadata={
        "help": "Seconds before an API call times out (openai/ models)."})
    prices: str | None = field(default=None, metadata={"help": "A price table like assets/prices.yaml."})
    max_tasks: int = field(default=0, metadata={"help": "Most tasks the run may create (0: 5 x target + 20)."})
    redraws: int = field(default=0, metadata={
        "help": "Draw a dialogue rejected as a copy of its demo or too short again, up to N times, hotter each time."})
    json_grammar: bool = field(default=False, metadata={
        "help": "Whole mode: constrain each dialogue to valid JSON (llama.cpp's grammar; json_object on openai/)."})

    def __post_init__(self):
        if self.target < 1:
            raise InputError(f"--target {self.target}: give at least 1")
        if self.workers < 1:
            raise InputError(f"--workers {self.workers}: give at least 1")
        if self.mode not in MODES:
            raise InputError(f"--mode {self.mode!r}: use whole or turns")
        if self.json_grammar and self.mode != "whole":
            raise InputError("--json-grammar constrains the whole dialogue's JSON: use it with --mode whole")
        # The CLI's option types check these too; library callers get the same one-line errors.
        for name, value, low in (("--demos", self.demos, 0), ("--retries", self.retries, 0),
                                 ("--redraws", self.redraws, 0), ("--round-size", self.round_size, 0),
                                 ("--max-tasks", self.max_tasks, 0)):
            if value < low:
                raise InputError(f"{name} {value}: give {low} or more")
        if not 0 <= self.dup_threshold <= 1:
            raise InputError(f"--dup-threshold {self.dup_threshold}: a Jaccard similarity, between 0 and 1")
        if self.max_cost is not None and not self.max_cost >= 0:
            raise InputError(f"--max-cost {self.max_cost}: give a number of dollars, 0 or more")
        if not self.backoff_s >= 0 or (self.timeout_s is not None and not self.timeout_s > 0):
            raise InputError(f"--backoff {self.backoff_s} / --timeout {self.timeout_s}: give positive seconds")
        names = load_taxonomy().scenario_names
        for s in self.scenes:
            if s not in names:
                raise InputError(f"--scenes: {s!r} is not one of the 36 scenarios (see assets/scenarios.yaml)")
        # A round size left to its default is derived from --target; a resumed run keeps the one it was started
        # with (SynthesisRun._check_manifest), so that a rerun with another target keeps the same task plan.
        self.round_size_derived = not self.round_size
        self.round_size = self.round_size or max(10, self.target // 3)
        self.max_tasks = self.max_tasks or 5 * self.target + 20


class Planner:
    """Task i → (round, scene): scenes allocated by largest deficit against their quotas, deterministically."""

    def __init__(self, cfg: SynthConfig):
        tax = load_taxonomy()
        scenes = cfg.scenes or tax.scenario_names
        weights = [1.0 if cfg.uniform or cfg.scenes else float(tax.scenario(s).paper_count) for s in scenes]
        total = sum(weights)
        self.scenes, self.share = scenes, [w / total for w in weights]
        self.round_size = cfg.round_size
        self._counts = [0] * len(scenes)
        self._plan: list[str] = []

    def scene(self, i: int) -> str:
        while len(self._plan) <= i:
            k = len(self._plan) + 1
            j = max(range(len(self.scenes)), key=lambda s: (self.share[s] * k - self._counts[s], -s))
            self._counts[j] += 1
            self._plan.append(self.scenes[j])
        return self._plan[i]

    def round(self, i: int) -> int:
        return i // self.round_size


def classify_error(e: Exception) -> str:
    """Reason code for an LM error: rate_limit, timeout, server_error, connection or error."""
    name = type(e).__name__.lower()
    text = str(e).lower()
    status = getattr(e, "status_code", None)
    if status == 429 or "ratelimit" in name:
        return "rate_limit"
    if "timeout" in name or "timed out" in text:
        return "timeout"
    if (isinstance(status, int) and status >= 500) or any(k in name for k in ("servererror", "internalserver",
                                                                               "serviceunavailable")):
        return "server_error"
    if "connection" in name or "transport" in name:
        return "connection"
    return "error"


def program_hash(program: dspy.Module) -> str:
    state = json.dumps(program.dump_state(), sort_keys=True, default=str)
    return hashlib.sha256(state.encode()).hexdigest()[:16]


class SynthesisRun:
    """One run folder, started or resumed."""

    def __init__(self, cfg: SynthConfig, lm, *, progress=None):
        self.cfg, self.lm, self.progress = cfg, lm, progress
        self.folder = claim_output_dir(cfg.out, "synthesize")
        self._check_manifest()
        self.store = RunStore(self.folder)
        self.program = DialogueSynthesizer(cfg.mode)
        if cfg.program:
            self._load_program(cfg.program)
        self.phash = program_hash(self.program)
        self.seeds = read_seed_folder()
        self.planner = Planner(cfg)
        self.index = DedupIndex()
        for d in self.store.accepted_dialogues():
            self.index.add(d.id, dialogue_text(d))
        self._lock = threading.Lock()
        self.stop_reason: str | None = None
        self._write_manifest()

    # -- manifest -----------------------------------------------------------------------------------------------
    def _check_manifest(self):
        path = self.folder / "manifest.json"
        if not path.exists():
            return
        old = json.loads(path.read_text())["config"]
        if getattr(self.cfg, "round_size_derived", False) and old.get("round_size"):
            self.cfg.round_size = old["round_size"]  # not given: the run's own, whatever --target is now
        new = asdict(self.cfg)
        diff = [k for k in RESUME_KEYS if old.get(k) != new.get(k)]
        if diff:
            raise InputError(
                f"{self.folder}: this run was started with other {', '.join(diff)} "
                f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); rerun with the same options or use another --out"
            )

    def _write_manifest(self):
        manifest = {
            "config": redact(asdict(self.cfg)),
            "program_hash": self.phash,
            "git": git_hash(),
            "versions": versions(),
            "argv": recorded_argv(sys.argv),
            "updated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        write_text_atomic(self.folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")

    def _load_program(self, path: str):
        p = Path(path)
        if not p.exists():
            raise InputError(f"--program {p}: no such file; give a program saved with `Module.save` (JSON)")
        try:
            self.program.load(str(p))
        except Exception as e:  # noqa: BLE001 - any load failure is the user's file
            raise InputError(f"--program {p}: cannot load it into DialogueSynthesizer ({str(e)[:120]})") from None

    # -- demos --------------------------------------------------------------------------------------------------
    def demo_pool(self, round_: int, scene: str) -> list:
        if round_ > 0:
            generated = [d for d in self.store.accepted_dialogues() if (d.meta.round or 0) < round_]
            same = [d for d in generated if d.scene == scene]
            if same:
                return same
        same_seeds = [d for d in self.seeds if d.scene == scene]
        return same_seeds or self.seeds

    # -- one task -----------------------------------------------------------------------------------------------
    def run_task(self, i: int, pool: list) -> tuple[str, dict[str, Any]]:
        cfg = self.cfg
        task = f"gen-{i:06d}"
        scene, round_ = self.planner.scene(i), self.planner.round(i)
        rng = random.Random(f"{cfg.seed}:{task}")
        demos = rng.sample(pool, min(cfg.demos, len(pool)))  # turn mode takes a description and a seeker line
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "program_calls": 0}
        base = {"task": task, "scene": scene, "round": round_, "demo_ids": [d.id for d in demos]}
        earlier: list[list[str]] = []  # the reasons of each draw that was drawn again
        for redraw in range(cfg.redraws + 1):
            drawn = self._draw(i, task, scene, demos, {**base, **({"redrawn": earlier} if earlier else {})}, usage,
                               redraw)
            if isinstance(drawn, tuple):  # every call failed: recorded
                return drawn
            outcome = drawn
            if redraw < cfg.redraws and outcome.status == "rejected" and set(outcome.reasons()) <= REDRAWN:
                earlier.append(outcome.reasons())  # copied its demo or stopped early, nothing else: again, hotter
                continue
            break
        return self._keep(outcome, base, usage, earlier)

    def _draw(self, i: int, task: str, scene: str, demos: list, base: dict, usage: dict, redraw: int):
        """One draw of task i's dialogue (its call retried on errors), validated against its demos (the outcome); a
        task whose every call failed is recorded here and returned as (status, record)."""
        cfg = self.cfg
        last_error, attempts = None, 0
        for attempt in range(cfg.retries + 1):
            attempts = attempt + 1
            try:
                with dspy.context(lm=self.lm, adapter=SmallChatAdapter(), track_usage=True):
                    pred = self.program(scene=scene, dialogue_id=task, demos=demos, seed=cfg.seed,
                                        config=self._call_config(attempt + 1000 * i + 100 * redraw, redraw))
                self._add_usage(usage, pred.get_lm_usage())
                break
            except RecordError as e:
                last_error = ("parse", str(e))
                usage["program_calls"] += 1
            except Exception as e:  # noqa: BLE001 - LM and network errors of every kind are recorded, not raised
                first_line = scrub(str(e).splitlines()[0][:200], cfg.api_base) if str(e) else ""
                last_error = (classify_error(e), f"{type(e).__name__}: {first_line}")
                usage["program_calls"] += 1
                time.sleep(cfg.backoff_s * (2**attempt))
        else:
            code, detail = last_error
            if code == "connection":  # the server is gone: stop, and leave the task undone so a rerun resumes it
                where = redact(cfg.api_base) if cfg.api_base else f"the provider of {cfg.model}"
                raise ModelError(f"cannot reach the LM at {where} ({detail}); start the server (or fix --api-base), "
                                 "then rerun the same command to resume")
            status = "rejected" if code == "parse" else "failed"
            record = {**base, "status": status, "reasons": [code], "detail": detail, "attempts": attempts,
                      "usage": usage}
            self.store.append(status, record)
            return status, record
        d = pred.dialogue
        d.meta.source, d.meta.round, d.meta.model = "generated", base["round"], cfg.model
        d.meta.parent_ids = base["demo_ids"]
        d.meta.created_at = datetime.datetime.now(datetime.timezone.utc).isoformat()
        d.meta.task, d.meta.program_hash, d.meta.mode, d.meta.usage = task, self.phash, cfg.mode, usage
        return validate(d, scene=scene, demos=demos)  # every check but the one against the accepted set

    def _keep(self, outcome, base: dict, usage: dict, earlier: list) -> tuple[str, dict[str, Any]]:
        """Record the task's last draw: accepted (unless a near-duplicate or past the target), queued or rejected;
        `earlier`: the reasons of the draws before it (--redraws), kept in the record."""
        cfg = self.cfg
        if earlier:
            base = {**base, "redrawn": earlier}
        with self._lock:  # the near-duplicate check, the index update and the write must be one step
            dup = check_duplicate(outcome.dialogue, self.index, cfg.dup_threshold)
            if dup is not None:
                outcome.problems.append(dup)
            status = outcome.status
            if status == "accepted" and self.store.count("accepted") >= cfg.target:
                status = "surplus"
            fixed = outcome.dialogue
            fixed.meta.validation = {"status": status, "reasons": outcome.reasons(),
                                     "problems": [p.message for p in outcome.problems], "fixes": outcome.fixes,
                                     **({"redrawn": earlier} if earlier else {})}
            if status in ("accepted", "queued"):
                record = fixed.model_dump(mode="json")
                if status == "accepted":
                    self.index.add(fixed.id, dialogue_text(fixed))
                self.store.append(status, record)
            else:
                reasons = outcome.reasons() if status == "rejected" else ["surplus"]
                record = {**base, "status": "rejected", "reasons": reasons,
                          "detail": "; ".join(p.message for p in outcome.problems) or "target already reached",
                          "dialogue": fixed.model_dump(mode="json"), "usage": usage}
                self.store.append("rejected", record)
                status = "rejected"
        return status, record

    def _call_config(self, rollout_id: int, redraw: int = 0) -> dict:
        """What each LM call of a task gets: a distinct rollout id per attempt, and the JSON grammar if asked; a
        redraw samples hotter (REDRAW_STEP each time) under its own rollout id."""
        config: dict = {"rollout_id": rollout_id}
        if redraw:
            base = float(getattr(self.lm, "kwargs", {}).get("temperature") or 0.0)
            config["temperature"] = round(min(base + REDRAW_STEP * redraw, REDRAW_MAX_TEMPERATURE), 2)
        if self.cfg.json_grammar:
            config["response_format"] = {"type": "json_object"}
        return config

    def _add_usage(self, usage: dict, lm_usage: dict | None):
        for model, u in (lm_usage or {}).items():
            p, c = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
            usage["prompt_tokens"] += p
            usage["completion_tokens"] += c
            usage["cost_usd"] += cost_usd(self.cfg.model if model in (None, "") else _price_key(model, self.cfg),
                                          p, c, self.cfg.prices)
            usage["program_calls"] += int(u.get("calls") or 1)

    # -- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg, store = self.cfg, self.store
        t0 = time.perf_counter()
        started_with = store.count("accepted")
        i, in_flight = 0, {}
        with ThreadPoolExecutor(max_workers=cfg.workers) as pool_ex:
            while True:
                if store.count("accepted") >= cfg.target and not in_flight:
                    break
                if cfg.max_cost is not None and store.totals()["cost_usd"] >= cfg.max_cost and not self.stop_reason:
                    self.stop_reason = f"cost cap ${cfg.max_cost} reached"
                if i >= cfg.max_tasks and not self.stop_reason:
                    self.stop_reason = f"{cfg.max_tasks} tasks tried; too few accepted (see rejected.jsonl)"
                # Keep every worker busy until the target is reached; the few that finish after it are kept as
                # "surplus" rejections, so nothing generated is lost and the accepted count stops exactly at target.
                can_submit = (not self.stop_reason and store.count("accepted") < cfg.target
                              and len(in_flight) < cfg.workers)
                if can_submit:
                    task = f"gen-{i:06d}"
                    if task in store.done:
                        i += 1
                        continue
                    round_ = self.planner.round(i)
                    if any(self.planner.round(j) < round_ for j in in_flight.values()):
                        can_submit = False  # a round starts when the previous one is finished
                    else:
                        pool = self.demo_pool(round_, self.planner.scene(i))
                        in_flight[pool_ex.submit(self.run_task, i, pool)] = i
                        i += 1
                        continue
                if not in_flight:
                    break
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for fut in done:
                    in_flight.pop(fut)
                    fut.result()
                    if self.progress:
                        self.progress(self.summary(t0, started_with))
        return self.summary(t0, started_with)

    def summary(self, t0: float, started_with: int = 0) -> dict[str, Any]:
        tot = self.store.totals()
        accepted = self.store.count("accepted")
        tried = sum(self.store.count(n) for n in ("accepted", "rejected", "queued", "failed"))
        wall = time.perf_counter() - t0
        return {
            "run": str(self.folder), "model": self.cfg.model, "mode": self.cfg.mode, "target": self.cfg.target,
            "accepted": accepted, "rejected": self.store.count("rejected"), "queued": self.store.count("queued"),
            "failed": self.store.count("failed"), "tasks": tried,
            "yield": round(accepted / tried, 3) if tried else 0.0,
            "prompt_tokens": tot["prompt_tokens"], "completion_tokens": tot["completion_tokens"],
            "program_calls": tot["program_calls"], "cost_usd": round(tot["cost_usd"], 6),
            "usd_per_1000_accepted": round(1000 * tot["cost_usd"] / accepted, 4) if accepted else None,
            "wall_s": round(wall, 2),
            "accepted_per_min_this_session": round(60 * (accepted - started_with) / wall, 2) if wall > 0 else 0.0,
            "stopped": self.stop_reason,
        }


def _price_key(model: str, cfg: SynthConfig) -> str:
    # DSPy reports usage under the LM's model name; our price table is keyed by the model string given by the user.
    return cfg.model if cfg.model.endswith(model) or model.endswith(cfg.model.split("/", 1)[-1]) else model

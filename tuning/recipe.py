"""`extes recipe distill`: the whole distillation, teacher to student, as one resumable run.

Stages, each an ordinary extes command on files in the run folder, forked from a launcher that has the heavy
libraries loaded (launcher.py; so each is exactly what a user would type, in a process of its own, and keeps that
command's own resume and refusal rules):

    synthesize         the teacher writes --dialogues dialogues (validated, deduplicated by the run itself)
    split              train / valid / test of the accepted dialogues (by dialogue)
    compile-classifier the StrategyClassifier compiled with the teacher (--optimizer, few-shot demos)
    compile-supporter  the Supporter compiled with the teacher
    distill            the teacher's compiled Supporter run on the training turns; the student LoRA-tuned on the
                       traces (BootstrapFinetune through the project's local provider)
    bench-student      ESConv benchmark of the untuned student
    bench-distilled    ... of the student with the distilled adapter
    bench-teacher      ... of the teacher running its compiled Supporter
    compare            the paired test (bootstrap over dialogues) of the three runs against the student
    cards, arena       simulated seekers talk with the three; the teacher judges (Bradley-Terry ratings)
    report             report.md with every table, the figures and the hours each stage took; it is written after
                       every finished stage too (marked partial, naming the stages still to run), and
                       `extes recipe report RUN` writes it at any moment, even while a stage runs, so a long run
                       cut short still leaves its figures

RUN/recipe.json keeps the options and each finished stage's duration; a rerun skips finished stages and resumes
the unfinished one (each command resumes its own folder); a rerun with other options is refused, except a lower
--dialogues while synthesis is unfinished (the corpus then stops there: a long run cut short). A stage that
fails stops the run with its log's last line and the path of the whole log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from extes.base import die_with_parent
from extes.corpus.atomic import claim_output_dir, is_output_of, write_text_atomic
from extes.errors import ExtesError, InputError
from extes.tuning.recipe_report import write_report

KIND = "recipe"


@dataclass(frozen=True)
class RecipeConfig:
    teacher: str
    student: str
    test: str
    dialogues: int = 150
    mode: str = "turns"
    json_grammar: bool = False
    demos: int = 1
    redraws: int = 0
    workers: int = 1
    optimizer: str = "bootstrap"
    compile_limit: int = 40
    val_limit: int = 20
    distill_limit: int = 64
    max_steps: int = 60
    bench_limit: int = 200
    bench_per_dialogue: int = 0  # 0: the first bench_limit samples; K: at most K a dialogue, spread (more dialogues)
    cards: int = 6
    turns: int = 4
    seed: int = 0


@dataclass(frozen=True)
class Stage:
    name: str
    argv: list[str]
    done: str  # a path under the run folder that exists once the stage finished
    what: str


def stages(cfg: RecipeConfig, out: Path) -> list[Stage]:
    """The recipe's commands, in order, for the run folder `out`."""
    o = lambda p: str(out / p)  # noqa: E731
    t, s = cfg.teacher, cfg.student
    seed = ["--seed", str(cfg.seed)]
    bench = ["benchmark", "esconv", "--test", cfg.test, "--limit", str(cfg.bench_limit), "--workers",
             str(cfg.workers), "--json"]
    bench += ["--per-dialogue", str(cfg.bench_per_dialogue)] if cfg.bench_per_dialogue else []
    supporters = (f"student={s},distilled={s}+adapter:{o('distill/adapter')},"
                  f"teacher={t}+program:{o('supporter.json')}")
    grammar = ["--json-grammar"] if cfg.json_grammar else []
    demos = ["--demos", str(cfg.demos)] if cfg.demos != 1 else []  # 1 is synthesize's default: same argv as before
    demos += ["--redraws", str(cfg.redraws)] if cfg.redraws else []
    return [
        Stage("synthesize", ["synthesize", "-m", t, "--mode", cfg.mode, *grammar, *demos,
                             "--target", str(cfg.dialogues), "--workers", str(cfg.workers), *seed, "--out", o("synth"),
                             "--json"],
              "logs/synthesize.json", "the teacher writes the corpus"),
        Stage("split", ["data", "split", o("synth"), o("splits"), "--from", "run", "--ratios", "8:2:0", *seed,
                        "--json"], "splits/train.jsonl", "train/valid split by dialogue"),
        Stage("compile-classifier", ["compile", "classifier", "--optimizer", cfg.optimizer, "--trainset",
                                     o("splits/train.jsonl"), "--valset", o("splits/valid.jsonl"), "-m", t,
                                     "--limit", str(cfg.compile_limit), "--val-limit", str(cfg.val_limit),
                                     "--balance", "--keep-best", *seed, "--out", o("classifier.json"), "-q", "--json"],
              "classifier.json", "StrategyClassifier compiled with the teacher"),
        Stage("compile-supporter", ["compile", "supporter", "--optimizer", cfg.optimizer, "--trainset",
                                    o("splits/train.jsonl"), "--valset", o("splits/valid.jsonl"), "-m", t,
                                    "--limit", str(cfg.compile_limit), "--val-limit", str(cfg.val_limit), "--keep-best",
                                    *seed, "--out", o("supporter.json"), "-q", "--json"],
              "supporter.json", "Supporter compiled with the teacher"),
        Stage("distill", ["distill", "supporter", "--teacher", t, "--program", o("supporter.json"), "--student", s,
                          "--trainset", o("splits/train.jsonl"), "--limit", str(cfg.distill_limit),
                          "--max-steps", str(cfg.max_steps), "--out", o("distill"), "--json"],
              "distill/distill.json", "teacher traces -> LoRA on the student"),
        Stage("bench-student", [*bench, "-m", s, "--out", o("bench-student")], "bench-student/report.json",
              "ESConv benchmark: student"),
        Stage("bench-distilled", [*bench, "-m", s, "--adapter", o("distill/adapter"), "--out", o("bench-distilled")],
              "bench-distilled/report.json", "ESConv benchmark: distilled student"),
        Stage("bench-teacher", [*bench, "-m", t, "--program", o("supporter.json"), "--out", o("bench-teacher")],
              "bench-teacher/report.json", "ESConv benchmark: teacher"),
        Stage("compare", ["evaluate", "compare", o("bench-student"), o("bench-distilled"), o("bench-teacher"),
                          "--out", o("compare.md"), *seed, "--json"], "compare.md", "paired tests"),
        Stage("cards", ["arena", "cards", "--from", "seeds", "--n", str(cfg.cards), *seed, "--out", o("cards.jsonl"),
                        "--json"], "cards.jsonl", "role cards"),
        Stage("arena", ["arena", "run", "--supporters", supporters, "--cards", o("cards.jsonl"), "--turns",
                        str(cfg.turns), "--seeker", t, "--judge", t, *seed, "--out", o("arena"), "-q", "--json"],
              "arena/report.json", "arena, the teacher as seeker and judge"),
    ]


STAGE_NAMES = [st.name for st in stages(RecipeConfig("t", "s", "x"), Path("."))] + ["report"]


def _state(out: Path) -> dict[str, Any]:
    p = out / "recipe.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def _save_state(out: Path, state: dict[str, Any]) -> None:
    write_text_atomic(out / "recipe.json", json.dumps(state, indent=1) + "\n")


def open_run(cfg: RecipeConfig, out: Path) -> dict[str, Any]:
    """Claim `out` (new, empty, or this recipe's own earlier run with the same options) and return its state."""
    out = Path(out)
    if out.is_dir() and is_output_of(out, KIND):
        state = _state(out)
        # an option added after the run began is at its default there
        old = {**asdict(RecipeConfig(cfg.teacher, cfg.student, cfg.test)), **(state.get("config") or {})}
        synth = (state.get("stages") or {}).get("synthesize") or {}
        lowered = {**old, "dialogues": cfg.dialogues} == asdict(cfg) and cfg.dialogues < old["dialogues"]
        if lowered and not synth.get("done"):
            # Fewer dialogues while the teacher is still writing: the corpus stops at the new target (the synthesis
            # run keeps its task plan) and the later stages, none of which has run, learn from it.
            state.setdefault("dialogues_lowered", []).append([old["dialogues"], cfg.dialogues])
            state["config"] = {**old, "dialogues": cfg.dialogues}
            _save_state(out, state)
            return state
        if old != asdict(cfg):
            diff = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in asdict(cfg).items() if old.get(k) != v)
            raise InputError(f"{out}: a recipe run with other options ({diff}); use a new --out or the same options")
        return state
    claim_output_dir(out, KIND)
    state = {"config": asdict(cfg), "stages": {}}
    _save_state(out, state)
    return state


class Launcher:
    """The stages' runner: one `python -m extes.launcher` process that imported the CLI once and forks a fresh
    child per stage (a stage is then exactly `extes ARGV`, without re-importing torch each time). It dies with
    this process, and so does the stage it is running (launcher.py)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def run(self, argv: list[str], stdout: Path, stderr: Path) -> int:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "extes.launcher"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        request = {"argv": argv, "cwd": str(Path.cwd()), "stdout": str(stdout), "stderr": str(stderr),
                   "append": True, "timeout": 10**9}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise ExtesError(f"the stage runner stopped while running `extes {' '.join(argv[:2])}`; rerun to continue")
        return int(json.loads(answer)["rc"])

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def unfinished_seconds(rec: dict[str, Any] | None, paths: list[Path]) -> float:
    """Seconds an attempt that never finished (killed, or failed) spent: from its start to the last write to its log
    or its output (a synthesis or a benchmark appends each record as it goes; several stages run with `-q` and
    log nothing until the end), so a resumed stage's hours include the lost attempt's."""
    if not rec or rec.get("done") or rec.get("started") is None:
        return 0.0
    files = [f for p in paths if p.exists() for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    times = [f.stat().st_mtime for f in files]
    return max(0.0, max(times, default=0.0) - float(rec["started"]))


def _written_by(st: Stage, out: Path) -> list[Path]:
    """Where stage `st` writes as it runs: its log and its --out."""
    argv = st.argv
    target = [Path(argv[argv.index("--out") + 1])] if "--out" in argv else []
    return [out / "logs" / f"{st.name}.log", *target]


def run_stage(st: Stage, out: Path, launcher: Launcher) -> dict[str, Any]:
    """Run one stage's command; its stdout (--json) goes to logs/<stage>.json, its stderr to logs/<stage>.log."""
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    partial = logs / f".{st.name}.json.partial"
    rc = launcher.run(st.argv, partial, logs / f"{st.name}.log")
    seconds = time.perf_counter() - t0
    if rc != 0:
        last = [ln for ln in (logs / f"{st.name}.log").read_text(errors="replace").splitlines() if ln.strip()]
        why = last[-1].strip().removeprefix("Error: ") if last else f"exit {rc}"
        raise ExtesError(f"recipe stage {st.name!r} failed: {why} (log: {logs / (st.name + '.log')}); "
                         f"fix it and rerun the same command to continue")
    partial.replace(logs / f"{st.name}.json")
    return {"seconds": round(seconds, 1)}


def run_recipe(cfg: RecipeConfig, out: Path, *, stop_after: str | None = None,
               say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run (or continue) the recipe in `out`; returns the report (also written as report.md / report.json)."""

    if stop_after is not None and stop_after not in STAGE_NAMES:
        raise InputError(f"--stop-after {stop_after!r}: use one of {', '.join(STAGE_NAMES)}")
    out = Path(out)
    state = open_run(cfg, out)
    todo = stages(cfg, out)
    launcher = Launcher()
    try:
        return _run(cfg, out, state, todo, launcher, stop_after, say, write_report)
    finally:
        launcher.close()


def llamacpp_threads() -> int:
    """The threads a llama.cpp model of this run's stages decodes with (`EXTES_LLAMACPP_THREADS`, else one per
    physical core): recorded per stage attempt, since on 2 cores two threads decode 1.57x one when the machine is
    the run's alone (benchmarks/README.md, "Threads and batching"), so the hours depend on it."""
    from extes.programs.lm.teacher import default_threads  # lazy: programs.lm.teacher imports dspy

    return default_threads()


def _pending(state: dict[str, Any]) -> tuple[str, ...]:
    return tuple(n for n in STAGE_NAMES[:-1] if not (state["stages"].get(n) or {}).get("done"))


def report_now(out: Path) -> dict[str, Any]:
    """Write RUN/report.md of the recipe run in `out` as it stands: finished stages' figures, a stage that is running
    (or was killed) with the time it has spent so far (a running synthesis counted from its files, read only)."""
    out = Path(out)
    if not (out.is_dir() and is_output_of(out, KIND)) or not (out / "recipe.json").exists():
        raise InputError(f"{out}: not a recipe run folder (one that `extes recipe distill --out` made)")
    state = _state(out)
    cfg = RecipeConfig(**{**asdict(RecipeConfig("t", "s", "x")), **(state.get("config") or {})})
    now = {**state, "stages": dict(state.get("stages") or {})}
    for st in stages(cfg, out):
        rec = now["stages"].get(st.name)
        if rec and not rec.get("done"):
            spent = unfinished_seconds(rec, _written_by(st, out))
            now["stages"][st.name] = {**rec, "seconds": round(rec.get("seconds", 0.0) + spent, 1), "running": True}
    return write_report(out, now, _pending(now))


def _run(cfg, out, state, todo, launcher, stop_after, say, write_report) -> dict[str, Any]:
    for i, st in enumerate(todo, 1):
        rec = state["stages"].get(st.name)
        if rec and rec.get("done") and (out / st.done).exists():
            say(f"[{i}/{len(todo) + 1}] {st.name}: done before ({rec['seconds']} s)")
        else:
            say(f"[{i}/{len(todo) + 1}] {st.name}: {st.what} ...")
            # time spent before: finished attempts' seconds, plus an attempt that was killed or failed
            prev = (rec or {}).get("seconds", 0.0) + unfinished_seconds(rec, _written_by(st, out))
            threads = sorted({*(rec or {}).get("llamacpp_threads", []), llamacpp_threads()})
            state["stages"][st.name] = {"done": False, "seconds": round(prev, 1), "started": time.time(),
                                        "llamacpp_threads": threads}
            _save_state(out, state)
            took = run_stage(st, out, launcher)
            state["stages"][st.name] = {"done": True, "seconds": round(prev + took["seconds"], 1),
                                        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                        "llamacpp_threads": threads}
            _save_state(out, state)
            write_report(out, state, _pending(state))
            say(f"    done in {took['seconds']} s")
        if stop_after == st.name:
            say(f"stopped after {st.name}; rerun the same command to continue")
            return {"run": str(out), "stopped_after": st.name, "stages": state["stages"]}
    say(f"[{len(todo) + 1}/{len(todo) + 1}] report")
    return write_report(out, state)

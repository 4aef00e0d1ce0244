"""`extes compile`: metric-driven DSPy optimizers over the project's programs; compiled programs saved as JSON.

| name | DSPy optimizer | what it changes |
|---|---|---|
| labeled | LabeledFewShot(k) | k labelled demos, sampled |
| bootstrap | BootstrapFewShot | demos from teacher traces that pass the metric |
| random-search | BootstrapFewShotWithRandomSearch | the best of several bootstrapped demo sets on the valset |
| knn | KNNFewShot | per input, the k nearest training examples (embedded model's token vectors) |
| mipro | MIPROv2 (auto off; candidates and trials = max(2, k)) | instructions and demos, searched with optuna |
| copro | COPRO (breadth max(2, k), depth 1) | instructions |
| simba | SIMBA (2 steps, 2 candidates) | demos and self-written rules, on hard mini-batches |
| gepa | GEPA (metric-call budget) | instructions, by reflecting on traces |

The instruction proposers call multi-field signatures; the project's adapter answers those as a chain of
single-field calls. A 135M model writes poor instructions, so these optimizers matter with a capable `--teacher`.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import dspy

from extes.corpus.atomic import write_text_atomic
from extes.corpus.provenance import git_hash, versions
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.saved import load_saved
from extes.tuning.program_metrics import METRICS, macro_f1

OPTIMIZERS = ("labeled", "bootstrap", "random-search", "knn", "mipro", "copro", "simba", "gepa")


# Every compilable program: its module, class and constructor arguments (one row to add a program).
PROGRAMS: dict[str, tuple[str, str, tuple]] = {
    "classifier": ("extes.programs.classifier", "StrategyClassifier", ()),
    "supporter": ("extes.programs.supporter", "Supporter", ()),
    "synthesizer": ("extes.programs.synthesizer", "DialogueSynthesizer", ("whole",)),
    "seeker": ("extes.programs.seeker", "SeekerSimulator", ()),
    "judge": ("extes.programs.arena_judge", "VerdictJudge", ()),
}


def make_program(name: str):
    """A fresh, uncompiled program by name (see PROGRAMS)."""
    import importlib

    if name not in PROGRAMS:
        raise InputError(f"program {name!r}: use {', '.join(PROGRAMS)}")
    module, cls, args = PROGRAMS[name]
    return getattr(importlib.import_module(module), cls)(*args)


def load_program(name: str, path: Path, *, option: str = "--program"):
    """The program `name` with the compiled state saved at `path` (Module.save JSON), or a one-line InputError
    naming `option` and the file."""
    return load_saved(make_program(name), path, option, f"a saved {name} program")


def _embed(texts: list[str]):
    import numpy as np

    from extes.tuning.metrics import extrema_vector  # lazy: tuning.metrics imports dspy

    rows = []
    for t in texts:
        v = extrema_vector(t)
        rows.append(v.numpy() if v is not None else np.zeros(576, dtype="float32"))
    return np.stack(rows)


def check_optimizer(name: str) -> None:
    if name not in OPTIMIZERS:
        raise InputError(f"--optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
    if name == "mipro":
        import importlib.util

        if importlib.util.find_spec("optuna") is None:
            raise InputError("--optimizer mipro needs optuna: pip install optuna")


def run_optimizer(name: str, program_name: str, metric, trainset: list, valset: list, *, k: int = 4,
                  student=None, teacher_lm=None, budget: int = 40):
    """Compile a fresh `program_name` with optimizer `name` (inside the caller's dspy.context)."""
    check_optimizer(name)
    student_prog = make_program(program_name)
    teacher = _teacher(program_name, teacher_lm)
    prompt_lm = teacher_lm or student or dspy.settings.lm
    if name == "labeled":
        return dspy.LabeledFewShot(k=k).compile(student_prog, trainset=trainset)
    if name == "bootstrap":
        opt = dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=k, max_labeled_demos=k)
        return opt.compile(student_prog, trainset=trainset, teacher=teacher)
    if name == "random-search":
        opt = dspy.BootstrapFewShotWithRandomSearch(metric=metric, max_bootstrapped_demos=k, max_labeled_demos=k,
                                                    num_candidate_programs=4, num_threads=1)
        return opt.compile(student_prog, trainset=trainset, valset=valset, teacher=teacher)
    if name == "knn":
        opt = dspy.KNNFewShot(k=k, trainset=trainset, vectorizer=dspy.Embedder(_embed, caching=False))
        return opt.compile(student_prog, teacher=teacher)
    if name == "mipro":
        opt = dspy.MIPROv2(metric=metric, auto=None, num_candidates=max(2, k), prompt_model=prompt_lm,
                           task_model=student or dspy.settings.lm, max_bootstrapped_demos=k, max_labeled_demos=k,
                           num_threads=1, verbose=False)
        return opt.compile(student_prog, trainset=trainset, valset=valset, num_trials=max(2, k), minibatch=False)
    if name == "copro":
        opt = dspy.COPRO(metric=metric, prompt_model=prompt_lm, breadth=max(2, k), depth=1)
        return opt.compile(student_prog, trainset=trainset, eval_kwargs={"num_threads": 1, "display_progress": False})
    if name == "simba":
        opt = dspy.SIMBA(metric=metric, bsize=min(len(trainset), 8), num_candidates=2, max_steps=2, max_demos=k,
                         num_threads=1)
        return opt.compile(student_prog, trainset=trainset)

    def gepa_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
        return float(metric(gold, pred))

    opt = dspy.GEPA(metric=gepa_metric, max_metric_calls=budget, reflection_lm=prompt_lm, num_threads=1)
    return opt.compile(student_prog, trainset=trainset, valset=valset)


def score(program, examples: list, metric, program_name: str, tick=None) -> dict[str, float]:
    """Mean metric on examples (and macro-F1 for the classifier); `tick()` after each example (a progress bar)."""
    values, pairs = [], []
    for ex in examples:
        try:
            pred = program(**ex.inputs())
        except Exception:  # noqa: BLE001 - a failed prediction scores 0, as in dspy.Evaluate
            values.append(0.0)
            continue
        finally:
            if tick:
                tick()
        values.append(metric(ex, pred))
        if program_name == "classifier":
            pairs.append((ex.strategy, pred.strategy))
    out = {"score": round(100 * sum(values) / len(values), 3), "n": len(values),
           "values": [round(v, 4) for v in values]}
    if pairs:
        out["macro_f1"] = round(100 * macro_f1(pairs), 3)
    return out


def compile_program(program_name: str, optimizer: str, trainset: list, valset: list, student, *, teacher=None,
                    seed: int = 0, k: int = 4, out: Path | None = None, quiet: bool = False,
                    keep_best: bool = False) -> dict[str, Any]:
    """Compile, score before and after on the valset, save the program, its manifest and the teacher traces.

    With `keep_best`, a compiled program that scores below the uncompiled one on the valset is not kept: the
    uncompiled program is saved instead (`result["kept"]` says which), as the recipe does (with the 1.5B teacher,
    bootstrapped demos made both programs worse)."""
    metric = METRICS[program_name]
    if out:  # before any compute: a missing folder is made, a path that cannot be one fails now, in one line
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    base = make_program(program_name)
    t0 = time.perf_counter()
    # DSPy's optimizers print progress to stdout; results go to stdout, so their chatter goes to stderr (or nowhere).
    chatter = io.StringIO() if quiet else sys.stderr
    hush = contextlib.redirect_stderr(chatter) if quiet else contextlib.nullcontext()  # their tqdm bars too
    with contextlib.redirect_stdout(chatter), hush, dspy.context(lm=student, adapter=SmallChatAdapter()):
        before = score(base, valset, metric, program_name)
        compiled = run_optimizer(optimizer, program_name, metric, trainset, valset, k=k, student=student,
                                 teacher_lm=teacher)
        after = score(compiled, valset, metric, program_name)
    wall = time.perf_counter() - t0
    kept = "uncompiled" if keep_best and after["score"] < before["score"] else "compiled"
    if kept == "uncompiled":
        compiled = base
    result = {"program": program_name, "optimizer": optimizer, "seed": seed, "valid_before": before,
              "valid_after": after, "kept": kept, "train": len(trainset), "valid": len(valset),
              "wall_s": round(wall, 2)}
    if out:
        out = Path(out)
        # KNN picks demos per input at run time (its state is the trainset, not a demo list): not saved.
        if optimizer != "knn" or kept == "uncompiled":
            compiled.save(str(out))
        traces = [{"predictor": name, "demos": [dict(d) for d in p.demos]} for name, p in compiled.named_predictors()]
        write_text_atomic(out.with_suffix(".traces.json"), json.dumps(traces, ensure_ascii=False, default=str) + "\n")
        write_text_atomic(out.with_suffix(".manifest.json"), json.dumps({
            **result, "student": getattr(student, "model", str(student)),
            "teacher": getattr(teacher, "model", None) if teacher else None, "git": git_hash(),
            "versions": versions(),
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}, indent=1) + "\n")
    return result


def _teacher(program_name: str, teacher_lm):
    if teacher_lm is None:
        return None
    teacher = make_program(program_name)
    teacher.set_lm(teacher_lm)
    return teacher

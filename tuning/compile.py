"""`extes compile`: metric-driven DSPy optimizers over the project's programs; compiled programs saved as JSON.

| name | DSPy optimizer | what it changes |
|---|---|---|
| labeled | LabeledFewShot(k) | k labelled demos, sampled |
| bootstrap | BootstrapFewShot | demos from teacher traces that pass the metric |
| random-search | BootstrapFewShotWithRandomSearch | the best of several bootstrapped demo sets on the valset |
| knn | KNNFewShot | per input, the k nearest training examples (embedded model's token vectors) |

MIPROv2, COPRO, SIMBA and GEPA propose instructions with multi-field signatures that the small-model adapter cannot
serve; they are not wired in this version and are refused with that message.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

import dspy

from extes.corpus.atomic import write_text_atomic
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.tuning.program_metrics import METRICS, macro_f1

OPTIMIZERS = ("labeled", "bootstrap", "random-search", "knn")
NOT_WIRED = ("mipro", "copro", "simba", "gepa")


def make_program(name: str):
    if name == "classifier":
        from extes.programs.classifier import StrategyClassifier

        return StrategyClassifier()
    if name == "supporter":
        from extes.programs.supporter import Supporter

        return Supporter()
    if name == "synthesizer":
        from extes.programs.synthesizer import DialogueSynthesizer

        return DialogueSynthesizer("whole")
    raise InputError(f"program {name!r}: use classifier, supporter or synthesizer")


def _embed(texts: list[str]):
    import numpy as np

    from extes.tuning.metrics import extrema_vector

    rows = []
    for t in texts:
        v = extrema_vector(t)
        rows.append(v.numpy() if v is not None else np.zeros(576, dtype="float32"))
    return np.stack(rows)


def make_optimizer(name: str, metric, trainset: list, *, k: int = 4, candidates: int = 4):
    if name in NOT_WIRED:
        raise InputError(f"--optimizer {name}: proposes instructions through multi-field signatures that the small-"
                         f"model adapter cannot serve; not available in this version (use {', '.join(OPTIMIZERS)})")
    if name == "labeled":
        return dspy.LabeledFewShot(k=k)
    if name == "bootstrap":
        return dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=k, max_labeled_demos=k)
    if name == "random-search":
        return dspy.BootstrapFewShotWithRandomSearch(metric=metric, max_bootstrapped_demos=k, max_labeled_demos=k,
                                                     num_candidate_programs=candidates, num_threads=1)
    if name == "knn":
        return dspy.KNNFewShot(k=k, trainset=trainset, vectorizer=dspy.Embedder(_embed, caching=False))
    raise InputError(f"--optimizer {name!r}: use one of {', '.join(OPTIMIZERS + NOT_WIRED)}")


def score(program, examples: list, metric, program_name: str) -> dict[str, float]:
    """Mean metric on examples (and macro-F1 for the classifier)."""
    values, pairs = [], []
    for ex in examples:
        try:
            pred = program(**ex.inputs())
        except Exception:  # noqa: BLE001 - a failed prediction scores 0, as in dspy.Evaluate
            values.append(0.0)
            continue
        values.append(metric(ex, pred))
        if program_name == "classifier":
            pairs.append((ex.strategy, pred.strategy))
    out = {"score": round(100 * sum(values) / len(values), 3), "n": len(values)}
    if pairs:
        out["macro_f1"] = round(100 * macro_f1(pairs), 3)
    return out


def compile_program(program_name: str, optimizer: str, trainset: list, valset: list, student, *, teacher=None,
                    seed: int = 0, k: int = 4, out: Path | None = None) -> dict[str, Any]:
    """Compile, score before and after on the valset, save the program, its manifest and the teacher traces."""
    metric = METRICS[program_name]
    base = make_program(program_name)
    t0 = time.perf_counter()
    # DSPy's optimizers print progress to stdout; results go to stdout, so their chatter goes to stderr.
    with contextlib.redirect_stdout(sys.stderr), dspy.context(lm=student, adapter=SmallChatAdapter()):
        opt = make_optimizer(optimizer, metric, trainset, k=k)
        before = score(base, valset, metric, program_name)
        kwargs: dict[str, Any] = {}
        if optimizer == "labeled":
            compiled = opt.compile(make_program(program_name), trainset=trainset)
        elif optimizer == "knn":
            compiled = opt.compile(make_program(program_name), teacher=_teacher(program_name, teacher))
        else:
            if optimizer == "random-search":
                kwargs["valset"] = valset
            compiled = opt.compile(make_program(program_name), trainset=trainset,
                                   teacher=_teacher(program_name, teacher), **kwargs)
        after = score(compiled, valset, metric, program_name)
    wall = time.perf_counter() - t0
    result = {"program": program_name, "optimizer": optimizer, "seed": seed, "valid_before": before,
              "valid_after": after, "train": len(trainset), "valid": len(valset), "wall_s": round(wall, 2)}
    if out:
        out = Path(out)
        if optimizer != "knn":  # KNN picks demos per input at run time; its state is the trainset, not a demo list
            compiled.save(str(out))
        traces = [{"predictor": name, "demos": [dict(d) for d in p.demos]} for name, p in compiled.named_predictors()]
        write_text_atomic(out.with_suffix(".traces.json"), json.dumps(traces, ensure_ascii=False, default=str) + "\n")
        write_text_atomic(out.with_suffix(".manifest.json"), json.dumps({
            **result, "student": getattr(student, "model", str(student)),
            "teacher": getattr(teacher, "model", None) if teacher else None,
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}, indent=1) + "\n")
    return result


def _teacher(program_name: str, teacher_lm):
    if teacher_lm is None:
        return None
    teacher = make_program(program_name)
    teacher.set_lm(teacher_lm)
    return teacher

"""Distillation the DSPy way: the project's `Provider` and `TrainingJob` fine-tune the local model with the
project's trainer, so that `dspy.BootstrapFinetune` distills a program run by any teacher LM into a LoRA adapter on
the local LLaMA, and `dspy.BetterTogether` alternates that weight step with a prompt step (few-shot demos
bootstrapped by the teacher), keeping whichever candidate scores best on a held-out set. A training error is
raised, never stored as the program's LM (BetterTogether itself only logs a failed step; `distill` re-raises it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from dspy.clients.provider import Provider, TrainingJob

from extes.corpus.atomic import claim_output_dir, write_text_atomic
from extes.errors import InputError
from extes.programs.lm import capabilities, get_model
from extes.programs.lm.weights import cache_root
from extes.programs.prompt_shape import shape_record
from extes.tuning.sft import chat_sample


class LocalTrainingJob(TrainingJob):
    """A LoRA run on a background thread; `result()` is a LocalLM with the new adapter (or the training error)."""

    def __init__(self, lm, train_data, train_kwargs):
        super().__init__(model=lm.model, train_data=train_data, train_data_format="chat", train_kwargs=train_kwargs)
        self.lm = lm
        self._status = "pending"

    def status(self) -> str:
        return self._status

    def run(self) -> None:
        self._status = "running"
        try:
            self.set_result(finetune_local(self.lm, self.train_data, self.train_kwargs))
            self._status = "succeeded"
        except Exception as e:  # noqa: BLE001 - the error is handed to BootstrapFinetune, which raises it
            self._status = "failed"
            self.set_exception(e)


class LocalProvider(Provider):
    """Fine-tunes `local/` models in-process with extes's trainer."""

    def __init__(self):
        super().__init__()
        self.finetunable = True
        self.TrainingJob = LocalTrainingJob

    @staticmethod
    def is_provider_model(model: str) -> bool:
        return capabilities(model).trainable


def finetune_local(lm, train_data: list[dict[str, Any]], train_kwargs: dict[str, Any]):
    """Chat-format calls (the teacher's traces) → a LoRA adapter on `lm`'s base → a LocalLM that uses it."""
    from extes.tuning.trainer import TuneConfig, load_base, train  # lazy: tuning.trainer imports dspy

    if not train_data:
        raise ValueError("no training data: the teacher produced no trace that passed the metric")
    tok, model, model_id, _ = load_base(lm.model)
    seq_len = int(train_kwargs.get("seq_len", 512))
    # The traces are SmallChatAdapter's own messages (format_finetune_data): the shape the student is served with.
    # tune's masking and cutting: loss on the reply only, the oldest turns dropped from a trace that is too long.
    samples = [s for row in train_data
               if (s := chat_sample(tok, row["messages"][:-1], str(row["messages"][-1]["content"]), seq_len))]
    if not samples:
        raise ValueError(f"no training sample: no teacher trace fits {seq_len} tokens, even cut to its last turn")
    digest = hashlib.sha256(json.dumps(train_data, sort_keys=True, default=str).encode()).hexdigest()[:12]
    out = Path(train_kwargs.get("out") or cache_root() / "distill" / f"{model_id.split('/')[-1]}-{digest}")
    cfg = TuneConfig(method="lora", base=lm.model, max_steps=int(train_kwargs.get("max_steps", 20)),
                     batch_size=int(train_kwargs.get("batch_size", 2)), lr=float(train_kwargs.get("lr", 5e-4)))
    result = train(cfg, samples, samples[: max(1, len(samples) // 5)], tok, model, out, model_id=model_id,
                   prompt_shape=train_kwargs.get("prompt_shape"))
    (out / "distill.json").write_text(json.dumps({"samples": len(samples), "result": result}, indent=1))
    # The student keeps the user's model string (a folder path stays a path), so the saved program reloads.
    student = get_model(lm.model, adapter=str(out), max_tokens=lm.kwargs.get("max_tokens"))
    student.distill_result = result
    attach_provider(student)  # so that a later weight step (BetterTogether "w -> p -> w") can train it again
    return student


def attach_provider(lm) -> None:
    """Give a LocalLM the `finetune` entry point BootstrapFinetune calls."""

    def finetune(train_data, train_data_format=None, train_kwargs=None):
        job = LocalTrainingJob(lm, train_data, train_kwargs or {})
        job.thread = threading.Thread(target=job.run, daemon=True)
        job.thread.start()
        return job

    lm.provider = LocalProvider()
    lm.finetune = finetune
    lm.launch = lambda *a, **k: None  # in-process: nothing to start or stop
    lm.kill = lambda *a, **k: None


TRUSTED_LMS = {"extes.programs.lm.local.LocalLM"}


def load_distilled(program_name: str, path: Path):
    """Load a program saved by `distill`, LMs included; only extes's own LM class is accepted from the file."""
    from dspy.clients.base_lm import LM_CLASS_STATE_KEY

    from extes.tuning.compile import make_program  # lazy: tuning.compile imports dspy

    state = json.loads(Path(path).read_text(encoding="utf-8"))
    classes = {v["lm"].get(LM_CLASS_STATE_KEY) for v in state.values() if isinstance(v, dict) and v.get("lm")}
    if not classes <= TRUSTED_LMS:
        raise InputError(f"{path}: its LM classes {sorted(map(str, classes))} are not extes's; refusing to import")
    program = make_program(program_name)
    program.load(str(path), allow_unsafe_lm_state=True)
    return program


OPTIMIZERS = ("bootstrap-finetune", "better-together")


class _StepErrors(logging.Handler):
    """Collects the exceptions BetterTogether logs (it logs a failed step and carries on) so they can be raised."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def distill(program_name: str, teacher_lm, student_lm, trainset: list, out: Path, *, max_steps: int = 20,
            metric=None, optimizer: str = "bootstrap-finetune", strategy: str = "p -> w",
            valset: list | None = None, teacher_program: Path | None = None) -> dict[str, Any]:
    """Distill `program_name` run by `teacher_lm` into a LoRA adapter on the local `student_lm`.

    bootstrap-finetune: run the program with the teacher on `trainset`, fine-tune the student on the traces that
    pass `metric` (all traces when None). better-together: `strategy` is a sequence of `p` (BootstrapFewShot: demos
    bootstrapped by the teacher) and `w` (the BootstrapFinetune step above), e.g. "p -> w" or "w -> p"; each
    candidate is scored with `metric` (the program's own metric by default) on `valset`, and the best is kept.
    `teacher_program`: a compiled program (Module.save JSON) loaded into the teacher's copy first, so the student
    learns from the compiled teacher (its demos and instructions) rather than the bare one.
    Saves the program (program.json, LMs included), the adapter (adapter/) and distill.json.
    """
    import contextlib
    import sys

    import dspy

    from extes.programs.adapter import SmallChatAdapter  # lazy: programs.adapter imports dspy
    from extes.tuning.compile import load_program, make_program
    from extes.tuning.program_metrics import METRICS

    if optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    steps = [s.strip() for s in strategy.split("->")]
    if optimizer == "better-together" and (not steps or any(s not in ("p", "w") for s in steps)):
        raise InputError(f"--strategy {strategy!r}: give steps p (prompt) and w (weights) joined by ->, e.g. 'p -> w'")
    out = claim_output_dir(out, "distill")
    attach_provider(student_lm)
    student = make_program(program_name)
    student.set_lm(student_lm)
    teacher = (load_program(program_name, Path(teacher_program)) if teacher_program is not None
               else make_program(program_name))
    teacher.set_lm(teacher_lm)
    adapter = SmallChatAdapter()
    # The traces are formatted by the adapter that serves the student: that shape goes into the adapter's record.
    shape = shape_record([p.signature for p in student.predictors()])
    finetune = dspy.BootstrapFinetune(metric=metric, adapter=adapter, num_threads=1,
                                      train_kwargs={"max_steps": max_steps, "out": str(out / "adapter"),
                                                    "prompt_shape": shape})
    candidates = None
    with contextlib.redirect_stdout(sys.stderr), dspy.context(lm=student_lm, adapter=adapter):
        if optimizer == "bootstrap-finetune":
            distilled = finetune.compile(student, trainset=trainset, teacher=teacher)
        else:
            score = metric or METRICS[program_name]
            prompt = dspy.BootstrapFewShot(metric=score, max_bootstrapped_demos=2, max_labeled_demos=2,
                                           max_rounds=1)
            together = dspy.BetterTogether(metric=score, p=prompt, w=finetune)
            errors = _StepErrors()
            bt_log = logging.getLogger("dspy.teleprompt.bettertogether")
            bt_log.addHandler(errors)
            try:
                distilled = together.compile(student, trainset=list(trainset), teacher=teacher,
                                             valset=list(valset or []) or None, strategy=" -> ".join(steps),
                                             num_threads=1, seed=0,
                                             # BetterTogether hands every step a list of teachers; BootstrapFewShot
                                             # takes one
                                             optimizer_compile_args={"p": {"teacher": teacher}})
            finally:
                bt_log.removeHandler(errors)
            if distilled.flag_compilation_error_occurred:
                raise errors.errors[0] if errors.errors else RuntimeError("a BetterTogether step failed (see log)")
            candidates = [{"strategy": c["strategy"] or "original", "score": c["score"]}
                          for c in distilled.candidate_programs]
    distilled.save(str(out / "program.json"))
    lm = distilled.predictors()[0].lm
    result = {"program": program_name, "optimizer": optimizer, "teacher": getattr(teacher_lm, "model", str(teacher_lm)),
              "student": student_lm.model, "adapter": str(out / "adapter") if lm.adapter else None,
              "train_examples": len(trainset),
              **{k: v for k, v in getattr(lm, "distill_result", {}).items() if k in
                 ("valid_loss_before", "valid_loss_after", "train_tokens", "adapter_bytes", "steps")}}
    if candidates is not None:
        result.update(strategy=" -> ".join(steps), valid_examples=len(valset or []), candidates=candidates,
                      demos=sum(len(p.demos) for p in distilled.predictors()))
    write_text_atomic(out / "distill.json", json.dumps(result, indent=1) + "\n")
    return result

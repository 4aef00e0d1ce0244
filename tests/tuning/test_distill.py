"""Distillation with dspy.BootstrapFinetune through the project's local provider (real LoRA steps)."""

import json

import pytest

from helpers import tiny_llama

pytestmark = pytest.mark.model


def test_distill_end_to_end_then_reload_and_reply(cli, tmp_path):
    out = tmp_path / "d"
    code, stdout, err = cli("distill", "supporter", "--teacher", "scripted", "--limit", "4", "--max-steps", "2",
                            "--out", out, "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["student"] == "local/smollm2-135m-instruct" and r["train_examples"] == 4 and r["steps"] == 2
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "program.json").exists()
    from extes.tuning.distill import load_distilled

    program = load_distilled("supporter", out / "program.json")
    assert all(p.lm.adapter == str(out / "adapter") for p in program.predictors())
    code, stdout, err = cli("reply", "I failed again", "--adapter", out / "adapter", "--strategy", "Offer Hope",
                            "--max-tokens", "10", "--json")
    assert code == 0, err


def test_training_errors_are_raised_not_stored():
    import dspy

    from extes.programs.lm.local import LocalLM
    from extes.tuning.distill import attach_provider

    lm = LocalLM()
    attach_provider(lm)
    job = lm.finetune([], "chat", {})
    with pytest.raises(ValueError, match="no training data"):
        job.result(timeout=60)
    assert job.status() == "failed"
    assert isinstance(lm, dspy.BaseLM)


def test_untrusted_lm_class_is_refused(tmp_path):
    from extes.errors import InputError
    from extes.tuning.distill import load_distilled

    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"select": {"lm": {"_dspy_lm_class": "os.system"}}}))
    with pytest.raises(InputError, match="refusing"):
        load_distilled("supporter", bad)


def test_better_together_prompt_then_weights(cli, tmp_path):
    """dspy.BetterTogether "p -> w": teacher-bootstrapped demos, then LoRA on the traces; every candidate scored on
    held-out examples, the best kept and saved; the saved program reloads. The student is a tiny random LLaMA:
    this checks the optimizer's steps (the embedded student's distillation is the test above)."""
    from extes.programs.lm.weights import converted_folder, embedded_gguf

    folder = tiny_llama(tmp_path / "models" / "tiny", converted_folder(embedded_gguf("smollm2-135m-instruct")))
    out = tmp_path / "bt"
    code, stdout, err = cli("distill", "classifier", "--teacher", "scripted", "--student", f"local/{folder}",
                            "--optimizer", "better-together", "--strategy", "p -> w", "--limit", "4",
                            "--val-limit", "2", "--max-steps", "2", "--out", out, "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["optimizer"] == "better-together" and r["valid_examples"] == 2
    assert sorted(c["strategy"] for c in r["candidates"]) == ["original", "p", "p -> w"]
    assert all(0.0 <= c["score"] <= 100.0 for c in r["candidates"])
    assert (out / "adapter" / "adapter_config.json").exists()  # the w step trained, whichever candidate won
    from extes.tuning.distill import load_distilled

    program = load_distilled("classifier", out / "program.json")
    assert len(program.predictors()) >= 1


def test_bad_better_together_strategy(cli, tmp_path):
    code, _, err = cli("distill", "classifier", "--teacher", "scripted", "--optimizer", "better-together",
                       "--strategy", "p -> x", "--limit", "2", "--out", tmp_path / "bt")
    assert code == 2 and "--strategy" in err


def test_distilled_on_a_folder_model_reloads_and_answers(cli, tmp_path):
    """The student is a model folder given by path: the saved program keeps that path, so it loads back and replies
    (it used to keep only the folder's basename, and loading raised)."""
    import dspy

    from extes.programs.adapter import SmallChatAdapter
    from extes.programs.lm.weights import converted_folder, embedded_gguf
    from extes.tuning.distill import load_distilled

    folder = tiny_llama(tmp_path / "models" / "tiny", converted_folder(embedded_gguf("smollm2-135m-instruct")))
    student, out = f"local/{folder}", tmp_path / "d"
    code, stdout, err = cli("distill", "supporter", "--teacher", "scripted", "--student", student, "--limit", "2",
                            "--max-steps", "1", "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["student"] == student
    # the traces' shape (the Supporter's two signatures through SmallChatAdapter) is recorded and matches on load
    from extes.programs.prompt_shape import shape_problem

    shape = json.loads((out / "adapter" / "extes_tune.json").read_text())["prompt_shape"]
    assert shape["signature"] == "SelectStrategy,RespondWithStrategy" and shape_problem(out / "adapter") is None
    saved = json.loads((out / "program.json").read_text())
    assert {v["lm"]["model"] for v in saved.values() if isinstance(v, dict) and v.get("lm")} == {student}
    program = load_distilled("supporter", out / "program.json")
    assert all(p.lm.model == student and p.lm.adapter == str(out / "adapter") for p in program.predictors())
    with dspy.context(adapter=SmallChatAdapter()):
        pred = program(history=[{"role": "user", "text": "I failed my exam again."}])
    assert pred.strategy and isinstance(pred.reply, str)

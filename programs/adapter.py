"""`SmallChatAdapter`: talk to small chat models the way they were trained, not through field markers.

Verified on SmolLM2-135M: with DSPy's ChatAdapter it answered `{'message': 'message'}`; as a plain chat it
replies fluently. So: the signature's instruction (plus non-history inputs as labelled lines) is the system
message, except the utterance a classifier labels, which goes after the history, and a judge's question, which is
the user message after the material; a `history` input becomes real
user/assistant turns; few-shot demos become earlier exchanges; the single output is the whole assistant message.
A `Literal` output is chosen by scoring every allowed value's likelihood when the LM can score
(`LocalLM.score_choices`), else read from the text and normalized; never by hoping the model prints a marker.
Compiled demos from DSPy optimizers are plain dicts of fields and work unchanged.
"""

from __future__ import annotations

import typing
from typing import Any

import dspy

from extes.corpus.labels import normalizer
from extes.programs.lm.registry import capabilities


def literal_choices(annotation) -> list[str] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return None


def history_turns(history) -> list[dict[str, str]]:
    out = []
    for t in history or []:
        role = t.get("role") if isinstance(t, dict) else getattr(t, "role", "user")
        text = t.get("text", t.get("content", "")) if isinstance(t, dict) else getattr(t, "text", "")
        out.append({"role": "assistant" if role == "assistant" else "user", "content": str(text)})
    return out


class SmallChatAdapter(dspy.ChatAdapter):
    """Plain-chat adapter (see module docstring). It subclasses ChatAdapter so that DSPy's fine-tuning machinery
    treats its data as chat data; every method that shapes messages is its own."""

    def __init__(self, callbacks=None):
        super().__init__(callbacks=callbacks)

    # -- formatting --------------------------------------------------------------------------------------------
    def _output(self, signature) -> tuple[str, Any]:
        name, field = next(iter(signature.output_fields.items()))
        return name, field.annotation

    def _system(self, signature, inputs: dict[str, Any], shared: set[str]) -> str:
        lines = [signature.instructions.strip()]
        for name in signature.input_fields:
            if name in shared and name in inputs:
                lines.append(f"{_label(name)}: {inputs[name]}")
        choices = literal_choices(self._output(signature)[1])
        if choices:
            lines.append(f"Answer with exactly one of: {', '.join(choices)}.")
        return "\n".join(lines)

    def _user_turns(self, signature, inputs: dict[str, Any], shared: set[str]) -> list[dict[str, str]]:
        extra = "\n".join(
            f"{_label(k)}: {inputs[k]}" for k in signature.input_fields if k in inputs and k not in shared
            and k != "history"
        )
        if "history" in signature.input_fields:
            turns = history_turns(inputs.get("history"))
            if turns:
                if extra:  # inputs that differ between demos and this call ride on the last message
                    turns[-1] = {**turns[-1], "content": f"{turns[-1]['content']}\n\n{extra}"}
                return turns
            if not extra:
                return [{"role": "user", "content": "Hi, I'm listening. What's on your mind?"}]
        text = "\n".join(
            f"{_label(k)}: {inputs[k]}" for k in signature.input_fields if k in inputs and k not in shared
        )
        return [{"role": "user", "content": text or "Go ahead."}]

    def _shared(self, signature, demos, inputs) -> set[str]:
        """Inputs that go into the system message once: those whose value is the same in every demo and the current
        call (all of them without demos; a long strategy guide, say). The others go with each exchange, on its last
        message.

        Except a choice among labels with a `history` and no demos (ClassifyStrategy): its other inputs are the data
        to label (the utterance), which changes from call to call; in the system message it would change the first
        tokens of every prompt, so consecutive turns of one conversation could reuse nothing of each other's prompt
        (the lean loop's prefix cache, programs/lm/prefix_cache.py, reused 0 of 17,201 tokens for 36 classified
        turns; after the history, 11,812 of 17,237). A reply's inputs (its strategy and definition) are
        instructions and stay in the system message: on the last user message the 135M model answered them instead
        of the person ("This response contains multiple suggestions for improvement...", benchmarks/README.md,
        "The strategy after the history").

        And a choice among labels without a history and without demos (the judges: RateDialogue, JudgeSupportPair,
        RateSupportRubric): its last input is the question (the criterion), asked as the user message after the
        material (the conversations) in the system message. A judge asks several questions about the same
        material, so each call after the first reuses the material's evaluated prompt (llama.cpp's live prefix or
        KV snapshot, the lean loop's prefix cache), instead of evaluating it again behind a different criterion."""
        names = [n for n in signature.input_fields if n != "history" and n in inputs]
        if not demos and literal_choices(self._output(signature)[1]):
            if "history" in signature.input_fields:
                return set()
            return set(names[:-1])
        return {n for n in names if all(d.get(n) == inputs[n] for d in demos)}

    def format(self, signature, demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
        out_name, _ = self._output(signature)
        demos = [d for d in demos if out_name in d]
        shared = self._shared(signature, demos, inputs)
        messages = [{"role": "system", "content": self._system(signature, inputs, shared)}]
        for demo in demos:
            demo_turns = self._user_turns(signature, demo, shared)
            last_user = next((t for t in reversed(demo_turns) if t["role"] == "user"), demo_turns[-1])
            messages.append({"role": "user", "content": last_user["content"]})
            messages.append({"role": "assistant", "content": str(demo[out_name])})
        messages.extend(self._user_turns(signature, inputs, shared))
        return messages

    # -- parsing -----------------------------------------------------------------------------------------------
    def format_finetune_data(self, signature, demos, inputs, outputs) -> dict[str, list[Any]]:
        """Training data in the same plain shape the model is prompted with: the output value as the reply."""
        out_name, _ = self._output(signature)
        messages = self.format(signature, demos, inputs)
        return {"messages": [*messages, {"role": "assistant", "content": str(outputs[out_name])}]}

    def _decomposed(self, lm, lm_kwargs, signature, demos, inputs):
        return _decomposed_impl(self, lm, lm_kwargs, signature, demos, inputs)

    def parse(self, signature, completion: str) -> dict[str, Any]:
        out_name, ann = self._output(signature)
        text = (completion or "").strip()
        choices = literal_choices(ann)
        if choices:
            value = pick_label(text, choices)
            if value is None:
                raise ValueError(f"could not read one of {len(choices)} allowed values from {text[:80]!r}")
            return {out_name: value}
        if not text:
            raise ValueError("the model returned an empty message")
        return {out_name: text}

    def __call__(self, lm, lm_kwargs, signature, demos, inputs):
        if len(signature.output_fields) > 1:
            return self._decomposed(lm, lm_kwargs, signature, demos, inputs)
        messages = self.format(signature, demos, inputs)
        out_name, ann = self._output(signature)
        choices = literal_choices(ann)
        if choices and capabilities(lm).can_score:
            scores = lm.score_choices(messages, choices)
            METER.add(1, getattr(lm, "last_prompt_tokens", 0), 0)
            best = max(range(len(choices)), key=lambda i: scores[i])
            return [{out_name: choices[best]}]
        outputs = lm(messages=messages, **lm_kwargs)
        usage = (lm.history[-1].get("usage") if getattr(lm, "history", None) else None) or {}
        METER.add(1, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        results = []
        for o in outputs:
            text = o["text"] if isinstance(o, dict) else o
            results.append(self.parse(signature, text))
        return results


class CallMeter:
    """Counts LM calls and tokens that pass through the adapter (process-wide, thread-safe); `snapshot()` and a
    difference of two snapshots give the cost of a piece of work."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self.calls = self.prompt_tokens = self.completion_tokens = 0

    def add(self, calls: int, prompt: int, completion: int) -> None:
        with self._lock:
            self.calls += calls
            self.prompt_tokens += prompt
            self.completion_tokens += completion

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"lm_calls": self.calls, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens}


METER = CallMeter()


def single_field(signature, name: str, produced: list[str]):
    """The signature asking for output `name` only, with the outputs produced so far as inputs."""
    sig = signature
    for other, field in signature.output_fields.items():
        if other == name:
            continue
        sig = sig.delete(other)
        if other in produced:
            desc = (field.json_schema_extra or {}).get("desc", "")
            sig = sig.append(other, dspy.InputField(desc=desc), type_=field.annotation)
    return sig


def _decomposed_impl(adapter, lm, lm_kwargs, signature, demos, inputs):
    """Multi-output signatures as a chain of single-field calls, each seeing the outputs before it."""
    values: dict[str, Any] = {}
    for name in signature.output_fields:
        sig = single_field(signature, name, list(values))
        (out,) = adapter(lm, {**lm_kwargs, "n": 1}, sig, demos, {**inputs, **values})[:1]
        values[name] = out[name]
    return [values]


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def pick_label(text: str, choices: list[str]) -> str | None:
    """The allowed value a free-text answer names: exact/normalized first, then the earliest mention."""
    norm = normalizer("extes").normalize(text.strip().strip(".\"'*"))
    if norm.known and norm.label in choices:
        return norm.label
    low = text.lower()
    hits = [(low.find(c.lower()), c) for c in choices if c.lower() in low]
    return min(hits)[1] if hits else None

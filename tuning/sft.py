"""Supervised samples from any corpus: chat-format multi-turn samples with the loss on assistant tokens only.

Variants: `strategies` (each assistant reply is preceded by its strategy label, "[Emotional Validation] ...", as in
the paper's strategy models) and `no-strategies`. The loss is on every assistant turn (default) or the last only.
A dialogue longer than `max_len` tokens is cut into several samples at user turns, so nothing is silently
truncated. For GPT-2-family models (`clm`), a session is one text with EOS between turns (the DialoGPT recipe).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from extes.errors import InputError
from extes.signatures.dialogue import Dialogue

SYSTEM = "You are a warm, caring emotional-support assistant."
VARIANTS = ("strategies", "no-strategies")


@dataclass
class Sample:
    input_ids: list[int]
    labels: list[int]  # -100 where no loss

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != -100)


def assistant_text(text: str, strategy: str | None, variant: str) -> str:
    return f"[{strategy}] {text}" if variant == "strategies" and strategy else text


def _ids(tok, messages, gen_prompt: bool) -> list[int]:
    out = tok.apply_chat_template(messages, add_generation_prompt=gen_prompt, tokenize=True)
    return list(out["input_ids"]) if hasattr(out, "keys") else list(out)


def chat_samples(dialogues: list[Dialogue], tok, *, variant: str = "strategies", max_len: int = 512,
                 last_turn_only: bool = False) -> list[Sample]:
    """Chat-template samples; labels cover the assistant tokens (and their end-of-turn marker)."""
    if variant not in VARIANTS:
        raise InputError(f"--variant {variant!r}: use strategies or no-strategies")
    out = []
    for d in dialogues:
        msgs = [{"role": "system", "content": SYSTEM}]
        for t in d.turns:
            content = assistant_text(t.text, t.strategy, variant) if t.role == "assistant" else t.text
            msgs.append({"role": t.role, "content": content})
        out += _cut(msgs, tok, max_len, last_turn_only)
    if not out:
        raise InputError("no training sample: the corpus has no assistant turn after a user turn")
    return out


def _cut(msgs, tok, max_len, last_turn_only) -> list[Sample]:
    """Samples from one dialogue's messages, each at most max_len tokens, each starting at a user turn.

    The template is applied to growing windows; an assistant turn's tokens are those its message adds after the
    generation prompt (the chat templates used here are prefix-stable: a longer history only appends tokens).
    """
    samples, start = [], 1
    while start < len(msgs):
        spans: list[tuple[int, int]] = []
        best = None
        for i in range(start, len(msgs)):
            window = [msgs[0], *msgs[start : i + 1]]
            full = _ids(tok, window, False)
            if len(full) > max_len:
                break
            if msgs[i]["role"] == "assistant":
                spans.append((len(_ids(tok, window[:-1], True)), len(full)))
                best = (full, list(spans), i)
        if best is None:
            start += 1  # the next turn alone does not fit: skip it
            continue
        full, spans, end = best
        labels = [-100] * len(full)
        for a, b in spans[-1:] if last_turn_only else spans:
            labels[a:b] = full[a:b]
        samples.append(Sample(full, labels))
        start = end + 1
    return samples


def clm_samples(dialogues: list[Dialogue], tok, *, variant: str = "no-strategies", max_len: int = 512) -> list[Sample]:
    """DialoGPT-style: the session as one text, turns separated by EOS; loss on every token."""
    eos = tok.eos_token or ""
    out = []
    for d in dialogues:
        parts = [assistant_text(t.text, t.strategy, variant) if t.role == "assistant" else t.text for t in d.turns]
        ids = tok(eos.join(parts) + eos, add_special_tokens=False)["input_ids"]
        for i in range(0, len(ids), max_len):
            chunk = ids[i : i + max_len]
            if len(chunk) > 1:
                out.append(Sample(chunk, list(chunk)))
    return out


def batches(samples: list[Sample], batch_size: int, pad_id: int, *, seed: int = 0):
    """Length-bucketed batches (similar lengths together, so little padding), shuffled batch order, forever."""
    import torch

    order = sorted(range(len(samples)), key=lambda i: len(samples[i].input_ids))
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = random.Random(seed)
    while True:
        rng.shuffle(groups)
        for g in groups:
            width = max(len(samples[i].input_ids) for i in g)
            ids = torch.full((len(g), width), pad_id, dtype=torch.long)
            labels = torch.full((len(g), width), -100, dtype=torch.long)
            mask = torch.zeros((len(g), width), dtype=torch.long)
            for r, i in enumerate(g):
                s = samples[i]
                ids[r, : len(s.input_ids)] = torch.tensor(s.input_ids)
                labels[r, : len(s.labels)] = torch.tensor(s.labels)
                mask[r, : len(s.input_ids)] = 1
            yield {"input_ids": ids, "labels": labels, "attention_mask": mask}

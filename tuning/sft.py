"""Supervised samples from any corpus, in the prompt shape they are served with; the loss on the reply tokens only.

Each assistant turn after a user turn is one sample: the messages the serving path formats for that point of the
dialogue (`SmallChatAdapter.format` of the signature with the history so far), then the turn as the target.
Variants: `strategies` is the Supporter's reply step (RespondWithStrategy, given the turn's strategy and its
definition), the target tagged "[Emotional Validation] ..." by signatures/reply_tag.py, as in the paper's strategy
models; `reply`, `chat`, `serve`, `evaluate --strategy gold|predicted` and `benchmark --predictor select` prompt
that. `no-strategies` is the Respond signature with the plain reply (what `evaluate --strategy none` prompts). The
shape goes into the adapter's metadata (`prompt_shape`) and is checked when the adapter is loaded
(programs/prompt_shape.py). A sample longer than `max_len` tokens loses its oldest turns (it starts at a user turn,
as `LocalLM.fit` cuts when serving), so nothing is silently truncated. For GPT-2-family models (`clm`), a session is
one text with EOS between turns (the DialoGPT recipe: no chat template, so no adapter shape).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from extes.corpus.assets import load_taxonomy
from extes.corpus.labels import esconv_to_extes
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.prompt_shape import shape_record
from extes.programs.supporter import reply_inputs
from extes.signatures.dialogue import Dialogue, Turn
from extes.signatures.reply_tag import tag_reply
from extes.signatures.support import Respond, RespondWithStrategy

VARIANTS = ("strategies", "no-strategies")
SHAPES = {"strategies": (RespondWithStrategy, "tagged"), "no-strategies": (Respond, "plain")}  # signature, target
Messages = list[dict[str, Any]]


@dataclass
class Sample:
    input_ids: list[int]
    labels: list[int]  # -100 where no loss

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != -100)


def assistant_text(text: str, strategy: str | None, variant: str) -> str:
    """The target text of an assistant turn under `variant` (tagged for `strategies`)."""
    return tag_reply(strategy, text) if variant == "strategies" else text


def prompt_shape(variant: str) -> dict[str, Any]:
    """The shape `chat_samples` trains `variant` on, as recorded in the adapter's metadata."""
    signature, target = SHAPES[variant]
    return shape_record([signature], target)


def serving_strategy(turn: Turn, label_set: str) -> str | None:
    """The ExTES strategy the Supporter would be given for this turn (ESConv labels by the documented mapping);
    None when the turn has no label the Supporter knows."""
    if not turn.strategy:
        return None
    if label_set == "esconv":
        return esconv_to_extes().get(turn.strategy)
    return turn.strategy if turn.strategy in load_taxonomy().strategy_names else None


def chat_turns(dialogue: Dialogue, variant: str = "strategies",
               last_turn_only: bool = False) -> list[tuple[Messages, str]]:
    """(prompt messages, target) for each trainable assistant turn, the prompt formatted as the serving path does."""
    signature, _ = SHAPES[variant]
    adapter = SmallChatAdapter()
    out = []
    for i, t in enumerate(dialogue.turns):
        if t.role != "assistant" or i == 0 or dialogue.turns[i - 1].role != "user":
            continue  # the serving path always answers a user turn
        history = [{"role": x.role, "text": x.text} for x in dialogue.turns[:i]]
        if variant == "strategies":
            strategy = serving_strategy(t, dialogue.meta.label_set)
            if strategy is None:
                continue  # the Supporter is never given an unknown strategy; the turn stays in later histories
            inputs = reply_inputs(history, strategy)
        else:
            strategy, inputs = None, {"history": history}
        out.append((adapter.format(signature, [], inputs), assistant_text(t.text, strategy, variant)))
    return out[-1:] if last_turn_only else out


def _ids(tok, messages, gen_prompt: bool) -> list[int]:
    out = tok.apply_chat_template(messages, add_generation_prompt=gen_prompt, tokenize=True)
    return list(out["input_ids"]) if hasattr(out, "keys") else list(out)


def chat_sample(tok, messages: Messages, target: str, max_len: int) -> Sample | None:
    """One sample: the prompt `messages` then `target` as the assistant's reply, labels on the reply's tokens (and
    its end-of-turn marker). Too long: the oldest turns go (the system message stays; the rest starts at a user
    turn); None when even the last exchange does not fit."""
    n_head = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    starts = [i for i in range(n_head, len(messages)) if messages[i]["role"] == "user"] or [n_head]

    def build(start: int) -> Sample:
        window = messages[:n_head] + messages[start:]
        # the chat templates used here are prefix-stable: the reply only appends tokens to the generation prompt
        prompt = _ids(tok, window, True)
        full = _ids(tok, [*window, {"role": "assistant", "content": target}], False)
        return Sample(full, [-100] * len(prompt) + full[len(prompt):])

    lo, hi = 0, len(starts) - 1  # the earliest start whose sample fits: binary search (length falls with start)
    if len(build(starts[hi]).input_ids) > max_len:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if len(build(starts[mid]).input_ids) <= max_len:
            hi = mid
        else:
            lo = mid + 1
    return build(starts[lo])


def chat_samples(dialogues: list[Dialogue], tok, *, variant: str = "strategies", max_len: int = 512,
                 last_turn_only: bool = False) -> list[Sample]:
    """One sample per trainable assistant turn (the last one per dialogue with `last_turn_only`), in the serving
    prompt shape of `variant`; labels cover the reply tokens (and their end-of-turn marker)."""
    if variant not in VARIANTS:
        raise InputError(f"--variant {variant!r}: use strategies or no-strategies")
    out = []
    for d in dialogues:
        for messages, target in chat_turns(d, variant, last_turn_only):
            sample = chat_sample(tok, messages, target, max_len)
            if sample is not None:
                out.append(sample)
    if not out:
        hint = " with a strategy the Supporter knows" if variant == "strategies" else ""
        raise InputError(f"no training sample: the corpus has no assistant turn after a user turn{hint} that fits "
                         f"--seq-len {max_len}")
    return out


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

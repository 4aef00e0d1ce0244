"""Perplexity of a local model on reference replies given their context: teacher forcing, reply tokens only."""

from __future__ import annotations

import math


def reply_nll(lm, history: list[dict], reply: str, system: str | None = None) -> tuple[float, int]:
    """(sum of negative log-likelihood, number of tokens) of `reply` after `history` under `lm` (a LocalLM).

    The context is the chat template applied to the history (plus an optional system message) with the generation
    prompt; the reply's tokens are those the template adds after it, without the end-of-turn marker.
    """
    import torch

    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "assistant" if t["role"] == "assistant" else "user", "content": t["text"]} for t in history
    ]
    tok = lm.tokenizer
    reply_ids = tok(reply, add_special_tokens=False)["input_ids"]
    if not reply_ids:
        return 0.0, 0
    msgs = lm.fit(msgs, reserve=len(reply_ids))  # a long history keeps its most recent turns, as generation does
    prefix = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    prefix = list(prefix["input_ids"]) if hasattr(prefix, "keys") else list(prefix)
    ids = torch.tensor([prefix + reply_ids])
    with torch.inference_mode():
        logits = lm.hf_model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits[len(prefix) - 1 : -1], dim=-1)
    nll = -logp[torch.arange(len(reply_ids)), torch.tensor(reply_ids)].sum().item()
    return nll, len(reply_ids)


def corpus_perplexity(lm, samples: list[dict]) -> float:
    """exp(total NLL / total reply tokens) over samples {"history", "reference"}."""
    nll = n = 0
    for s in samples:
        a, b = reply_nll(lm, s["history"], s["reference"])
        nll += a
        n += b
    return math.exp(nll / n) if n else float("nan")

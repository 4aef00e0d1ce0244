"""Perplexity of a local model on reference replies given their context: teacher forcing, reply tokens only."""

from __future__ import annotations

import math

from extes.programs.lm.threads import on_model_thread


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

    def run() -> float:
        with torch.inference_mode():
            logits = _reply_logits(lm.hf_model, ids, len(prefix) - 1, getattr(lm, "route", None))
            logp = torch.log_softmax(logits, dim=-1)
            return -logp[torch.arange(len(reply_ids)), torch.tensor(reply_ids)].sum().item()

    # on the thread that decodes the model's batches, once there is one (programs/lm/batching.py: Driven)
    return on_model_thread(lm.hf_model, run), len(reply_ids)


def _reply_logits(model, ids, start: int, adapter: str | None = None):
    """Logits (fp32) of positions start..T-2 of `ids` ([1, T]): the output head runs on those rows only, not on the
    whole prompt (the head is a fifth of SmolLM2's weights: ~0.2 s saved per ESConv-sized sample on 2 cores).

    LLaMA-layout models run through the lean decode loop's prefix cache (programs/lm/prefix_cache.py) on a cache
    of their own: the next turn of a dialogue starts with this whole sequence, so its pass computes only the new
    turns and the reply. `adapter`: the LoRA attached to a shared base that the LM decodes with
    (programs/lm/multi_lora.py)."""
    from extes.programs.lm import fastdecode, multi_lora

    dec = fastdecode.decoder_for(model)
    if dec is not None and ids.shape[1] <= dec.max_len:
        slot = dec.slot(adapter=adapter)  # shares the modules and the prefix cache, not the KV
        return slot.head(slot.norm(slot.hidden(ids, start)[0, :-1])).float()
    with multi_lora.routed(adapter):
        return _transformers_logits(model, ids, start)


def _transformers_logits(model, ids, start: int):
    try:
        body, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        body = head = None
    if body is None or head is None:
        return model(input_ids=ids).logits[0, start:-1].float()
    hidden = body(input_ids=ids).last_hidden_state[0, start:-1]
    return head(hidden).float()


def corpus_perplexity(lm, samples: list[dict]) -> float:
    """exp(total NLL / total reply tokens) over samples {"history", "reference"}."""
    nll = n = 0
    for s in samples:
        a, b = reply_nll(lm, s["history"], s["reference"])
        nll += a
        n += b
    return math.exp(nll / n) if n else float("nan")

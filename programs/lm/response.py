"""What an in-process backend hands DSPy: an OpenAI-shaped response, and a memo of identical calls.

DSPy does not cache calls to `BaseLM` subclasses, so `LocalLM` and `TeacherLM` keep the most recent `MEMO_SIZE`
responses in memory (per process); a call with a `rollout_id` asks for a fresh sample and is neither served nor
kept. `llamacpp/` backends call `chat_response` without the memo.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from types import SimpleNamespace
from typing import Any

MEMO_SIZE = 4096


def chat_response(lm: Any, messages: list[dict[str, str]], n: int, **kwargs) -> SimpleNamespace:
    """`n` replies from `lm.generate(messages, **kwargs)` -> (text, prompt tokens, completion tokens), with usage."""
    choices, p_tok, c_tok = [], 0, 0
    for _ in range(n):
        text, p_tok, c = lm.generate(messages, **kwargs)
        c_tok += c
        choices.append({"index": len(choices), "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text}})
    return SimpleNamespace(model=lm.model, choices=choices,
                           usage={"prompt_tokens": p_tok, "completion_tokens": c_tok, "total_tokens": p_tok + c_tok})


def memoized_forward(lm: Any, memo: OrderedDict, prompt=None, messages=None, **kwargs) -> SimpleNamespace:
    """`BaseLM.forward` for an in-process LM: served from `memo` when the same call was made before."""
    messages = messages or [{"role": "user", "content": prompt or ""}]
    n = int(kwargs.pop("n", 1) or 1)
    rollout = kwargs.pop("rollout_id", None)
    use_cache = kwargs.pop("cache", lm.cache) and rollout is None
    key = json.dumps([messages, {**lm.kwargs, **kwargs}, n], sort_keys=True, default=str)
    if use_cache and key in memo:
        memo.move_to_end(key)
        return memo[key]
    response = chat_response(lm, messages, n, **kwargs)
    if use_cache:
        memo[key] = response
        if len(memo) > MEMO_SIZE:
            memo.popitem(last=False)
    return response

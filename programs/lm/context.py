"""Fitting a conversation into a model's context: the system prompt and the most recent turns that fit.

A 232-turn history overflowed SmolLM2's 8,192-token window (and took 198 s and 5 GB): the oldest turns are dropped
instead, measured in the model's own tokens with room left for the reply, and the user is told once per model.
The tail is measured from the newest turn backwards, so a 5,000-turn history costs what the turns that fit cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
_warned: set[str] = set()


def fit_messages(messages: Messages, count: Callable[[Messages], int], budget: int, *, model: str = "") -> Messages:
    """The leading system message(s) and the longest recent tail of `messages` whose `count` is within `budget`.

    The tail starts at a user message where one can, so the model never sees a reply without its question. The
    last message is always kept (even when it alone is too long: the model then gets what it was asked).
    """
    n_head = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    head, rest = messages[:n_head], messages[n_head:]
    if len(rest) <= 1:
        return messages
    # The cost is bounded by what fits, not by the history: tails of 1, 2, 4, ... of the newest turns are counted
    # until one is over the budget (or the whole history fits), then the longest tail that fits is found between
    # the last two sizes. No call counts more than about twice the turns that fit.
    size = 1
    while size < len(rest) and count(head + rest[-2 * size:]) <= budget:
        size *= 2
    if size >= len(rest):  # the whole history fitted
        return messages
    # The tail of `size` fits, that of 2 * size (or all) does not: the smallest start index whose tail fits is here.
    lo, hi = max(len(rest) - 2 * size + 1, 1), len(rest) - size
    while lo < hi:
        mid = (lo + hi) // 2
        if count(head + rest[mid:]) <= budget:
            hi = mid
        else:
            lo = mid + 1
    start = lo
    while start < len(rest) - 1 and rest[start]["role"] != "user":
        start += 1
    kept = head + rest[start:]
    if model not in _warned:
        _warned.add(model)
        log.warning("the conversation is longer than %s's context: kept the system prompt and the last %d of %d "
                    "turns (%d tokens, leaving room for the reply)", model or "the model", len(rest) - start,
                    len(rest), budget)
    else:
        log.debug("kept the last %d of %d turns", len(rest) - start, len(rest))
    return kept

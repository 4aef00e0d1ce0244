"""The corpus data model: a dialogue is a scene, a specific description and alternating turns with strategies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["user", "assistant"]
Source = Literal["seed", "generated", "imported", "chat"]


class Turn(BaseModel):
    """One utterance. `strategy` is the canonical label when known, else the label as found (flagged, never dropped)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    text: str
    strategy: str | None = Field(default=None, description="Support strategy of an assistant turn, if any.")
    strategy_raw: str | None = Field(
        default=None, description="The label exactly as it was read, kept when normalization changed it."
    )


class Meta(BaseModel):
    """Provenance of a dialogue. Extra keys are kept (format-specific fields such as ESConv's emotion_type)."""

    model_config = ConfigDict(extra="allow")

    source: Source = "imported"
    label_set: Literal["extes", "esconv"] = "extes"
    round: int | None = None
    model: str | None = None
    parent_ids: list[str] = Field(default_factory=list)
    created_at: str | None = None
    origin: str | None = Field(default=None, description="File (and record) the dialogue was read from.")
    flags: list[dict[str, Any]] = Field(default_factory=list, description="Label problems and fixes, one dict each.")


class Dialogue(BaseModel):
    """An emotional-support dialogue in the ExTES shape."""

    model_config = ConfigDict(extra="forbid")

    id: str
    scene: str
    description: str = ""
    turns: list[Turn]
    meta: Meta = Field(default_factory=Meta)

    @field_validator("turns")
    @classmethod
    def _has_turns(cls, turns: list[Turn]) -> list[Turn]:
        if not turns:
            raise ValueError("a dialogue needs at least one turn")
        return turns

    @field_validator("id")
    @classmethod
    def _has_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a dialogue id must not be empty")
        return value

    def assistant_turns(self) -> list[Turn]:
        """The assistant turns, in order."""
        return [t for t in self.turns if t.role == "assistant"]

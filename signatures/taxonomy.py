"""The paper's taxonomy as data models: 16 support strategies and 36 scenarios (loaded from assets/)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class StrategyExample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str
    assistant: str


class Strategy(BaseModel):
    """One support strategy of Table 2 / Appendix B."""

    model_config = ConfigDict(extra="forbid")

    name: str
    abbreviation: str
    definition: str
    example: StrategyExample
    paper_count: int = Field(ge=0)
    paper_proportion: float = Field(ge=0, le=1)
    aliases: list[str] = Field(default_factory=list)


class Scenario(BaseModel):
    """One scenario of Table 1 with its Appendix D examples."""

    model_config = ConfigDict(extra="forbid")

    name: str
    paper_count: int = Field(ge=0)
    paper_proportion: float = Field(ge=0, le=1)
    examples: list[str] = Field(min_length=1)

    @property
    def slug(self) -> str:
        return slugify(self.name)


class Taxonomy(BaseModel):
    """Strategies and scenarios together, with the lookups every other part needs."""

    model_config = ConfigDict(extra="forbid")

    strategies: list[Strategy]
    scenarios: list[Scenario]

    @field_validator("strategies")
    @classmethod
    def _unique_strategies(cls, value: list[Strategy]) -> list[Strategy]:
        _require_unique([s.name for s in value], "strategy name")
        _require_unique([s.abbreviation for s in value], "strategy abbreviation")
        return value

    @field_validator("scenarios")
    @classmethod
    def _unique_scenarios(cls, value: list[Scenario]) -> list[Scenario]:
        _require_unique([s.name for s in value], "scenario name")
        return value

    @model_validator(mode="after")
    def _aliases_unambiguous(self) -> Taxonomy:
        seen: dict[str, str] = {}
        for s in self.strategies:
            for key in [s.name, s.abbreviation, *s.aliases]:
                k = label_key(key)
                if k in seen and seen[k] != s.name:
                    raise ValueError(f"label {key!r} is claimed by both {seen[k]!r} and {s.name!r}")
                seen[k] = s.name
        return self

    @property
    def strategy_names(self) -> list[str]:
        return [s.name for s in self.strategies]

    @property
    def scenario_names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def strategy(self, name: str) -> Strategy:
        for s in self.strategies:
            if s.name == name:
                return s
        raise KeyError(name)

    def scenario(self, name: str) -> Scenario:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(name)


def slugify(text: str) -> str:
    """`Post-Traumatic Stress Disorder (PTSD)` → `post-traumatic-stress-disorder-ptsd`."""
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    return "-".join(part for part in out.split("-") if part)


def label_key(label: str) -> str:
    """Case-, space- and punctuation-insensitive key used to match label variants."""
    return "".join(ch for ch in label.lower() if ch.isalnum())


def _require_unique(values: list[str], what: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"duplicate {what}: {v!r}")
        seen.add(v)

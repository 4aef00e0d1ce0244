"""DSPy signatures of the supporter: choose a strategy, then reply with it. Strategy names come from assets/."""

from __future__ import annotations

from typing import Literal

import dspy

from extes.base import asset_models, assets_dir
from extes.signatures.taxonomy import Strategy

# The Literal below needs the names when the class is defined; they are read through the base layer (the whole
# taxonomy, with its set-level checks, is corpus.assets.load_taxonomy's job).
STRATEGY_NAMES: tuple[str, ...] = tuple(s.name for s in asset_models(assets_dir() / "strategies.yaml", "strategies",
                                                                     Strategy))
StrategyName = Literal[STRATEGY_NAMES]  # type: ignore[valid-type]


class SelectStrategy(dspy.Signature):
    """You are an emotional-support assistant. Read the conversation and choose the support strategy that fits the
    assistant's next reply best."""

    history: list[dict] = dspy.InputField(desc="The conversation so far, as {role, text} turns, ending with the user.")
    strategy: StrategyName = dspy.OutputField(desc="One of the 16 support strategies.")


class RespondWithStrategy(dspy.Signature):
    """You are a warm, caring emotional-support assistant. Reply to the user's last message in 2-4 sentences, in
    plain conversational English, using the given support strategy. Be specific to what they said."""

    history: list[dict] = dspy.InputField(desc="The conversation so far, as {role, text} turns, ending with the user.")
    strategy: str = dspy.InputField(desc="The support strategy to use")
    strategy_definition: str = dspy.InputField(desc="What the strategy means")
    reply: str = dspy.OutputField(desc="The assistant's next message.")


class Respond(dspy.Signature):
    """You are a warm, caring emotional-support assistant. Reply to the user's last message in 2-4 sentences, in
    plain conversational English. Be specific to what they said."""

    history: list[dict] = dspy.InputField(desc="The conversation so far, as {role, text} turns, ending with the user.")
    reply: str = dspy.OutputField(desc="The assistant's next message.")

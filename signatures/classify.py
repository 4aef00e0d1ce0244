"""The annotation step as a signature: which of the 16 strategies does an assistant utterance use?"""

from __future__ import annotations

import dspy

from extes.signatures.support import StrategyName


class ClassifyStrategy(dspy.Signature):
    """You annotate emotional-support conversations. Given the conversation so far and the assistant's next
    utterance, name the support strategy that utterance uses."""

    history: list[dict] = dspy.InputField(desc="The conversation before the utterance, as {role, text} turns.")
    utterance: str = dspy.InputField(desc="The assistant utterance to label")
    strategy: StrategyName = dspy.OutputField(desc="One of the 16 support strategies.")

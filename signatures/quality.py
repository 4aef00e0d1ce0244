"""The LLM-judge signature of the paper's quality protocol (Table 4)."""

from __future__ import annotations

from typing import Literal

import dspy


class RateDialogue(dspy.Signature):
    """You are an expert rater of emotional-support conversations. Rate the conversation on the given criterion on
    a scale from 0 (poor) to 3 (excellent)."""

    # The material first, the question last (the project's adapter asks it after the material, which several
    # criteria on one dialogue then share: programs/adapter.py, `_shared`).
    dialogue: str = dspy.InputField(desc="The conversation between a user and a supporter")
    criterion: str = dspy.InputField(desc="The criterion and its definition")
    score: Literal["0", "1", "2", "3"] = dspy.OutputField(desc="0, 1, 2 or 3")

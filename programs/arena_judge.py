"""`PairwiseJudge`: two transcripts with the same seeker → a verdict per Table 9 criterion, judged in both orders.

A verdict that changes when the transcripts swap places counts as a tie and is reported as position bias (the
judge preferred a position, not a supporter). `RubricJudge` scores one transcript on ESC-Eval's seven 0-4 rubrics.
Both are DSPy modules, so their instructions and demos can be compiled against human labels.
"""

from __future__ import annotations

import dspy

from extes.signatures.arena import CRITERIA, RUBRICS, JudgeSupportPair, RateSupportRubric
from extes.signatures.dialogue import Dialogue


def render_transcript(d: Dialogue) -> str:
    """A transcript as the judge reads it (supporter anonymous)."""
    return "\n".join(f"{'Seeker' if t.role == 'user' else 'Supporter'}: {' '.join(t.text.split())}" for t in d.turns)


def combine(first: str, swapped: str) -> tuple[str, bool]:
    """Verdicts of (A, B) and of (B, A) → ("a" | "b" | "tie", position_biased)."""
    back = {"A": "B", "B": "A", "Tie": "Tie"}[swapped]
    if first == back:
        return {"A": "a", "B": "b", "Tie": "tie"}[first], False
    return "tie", True


class PairwiseJudge(dspy.Module):
    """(transcript a, transcript b) → Prediction(outcomes={criterion: a|b|tie}, position_bias={criterion: bool},
    raw={criterion: [first, swapped]})."""

    def __init__(self, criteria: dict[str, str] | None = None):
        super().__init__()
        self.judge = dspy.Predict(JudgeSupportPair)
        self.criteria = criteria or CRITERIA

    def forward(self, transcript_a: str, transcript_b: str) -> dspy.Prediction:
        outcomes, bias, raw = {}, {}, {}
        for name, question in self.criteria.items():
            first = self.judge(question=question, conversation_a=transcript_a, conversation_b=transcript_b).verdict
            swapped = self.judge(question=question, conversation_a=transcript_b, conversation_b=transcript_a).verdict
            outcomes[name], bias[name] = combine(first, swapped)
            raw[name] = [first, swapped]
        return dspy.Prediction(outcomes=outcomes, position_bias=bias, raw=raw)


class RubricJudge(dspy.Module):
    """transcript → Prediction(scores={rubric: 0-4})."""

    def __init__(self):
        super().__init__()
        self.rate = dspy.Predict(RateSupportRubric)

    def forward(self, transcript: str) -> dspy.Prediction:
        return dspy.Prediction(scores={name: int(self.rate(rubric=q, conversation=transcript).score)
                                       for name, q in RUBRICS.items()})


class VerdictJudge(dspy.Module):
    """(question, conversation_a, conversation_b) → Prediction(verdict): the single call that `extes compile judge`
    optimizes against people's answers. Its predictor is named like PairwiseJudge's, so a compiled VerdictJudge
    loads into PairwiseJudge (`extes arena run --judge-program FILE`)."""

    def __init__(self):
        super().__init__()
        self.judge = dspy.Predict(JudgeSupportPair)

    def forward(self, question: str, conversation_a: str, conversation_b: str) -> dspy.Prediction:
        return dspy.Prediction(verdict=self.judge(question=question, conversation_a=conversation_a,
                                                  conversation_b=conversation_b).verdict)

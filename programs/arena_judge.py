"""`PairwiseJudge`: two transcripts with the same seeker → a verdict per Table 9 criterion, judged in both orders.

On an LM that scores choices (a local or llama.cpp model: `score_choices`), the verdict is the balanced one of
Wang et al. 2023 ("Large Language Models are not Fair Evaluators", balanced position calibration): each answer's
log-likelihood averaged over the two orders (A in the first order with B in the second for transcript a, and so
on), so a judge's preference for a position cancels and what is left of its preference for a supporter decides.
With `calibrate` (the default), each order's log-likelihoods are first taken relative to the judge's prior: its
log-likelihoods of A, B and Tie for the same question about a content-free pair ("N/A" against "N/A"), the
contextual calibration of Zhao et al. 2021 ("Calibrate Before Use"). A small judge puts most of its mass on "Tie"
whatever it reads (the 1.5B teacher did on every Overall question of the recipe's arena, so every rating stayed at
1000); calibrated, what moves it away from its prior decides. The prior costs one scoring call per question and
judge, made once.
On an LM that only writes text (an API model, a test double), a verdict that changes when the transcripts swap
places counts as a tie. Either way an order flip of the two orders' own answers is reported as position bias (the
judge preferred a position, not a supporter). `RubricJudge` scores one transcript on ESC-Eval's seven 0-4
rubrics. Both are DSPy modules, so their instructions and demos can be compiled against human labels.
"""

from __future__ import annotations

import dspy

from extes.programs.adapter import METER
from extes.programs.lm.registry import capabilities
from extes.signatures.arena import CRITERIA, RUBRICS, JudgeSupportPair, RateSupportRubric
from extes.signatures.dialogue import Dialogue

VERDICTS = ("A", "B", "Tie")
CONTENT_FREE = "N/A"  # both conversations of the calibration pair


def render_transcript(d: Dialogue) -> str:
    """A transcript as the judge reads it (supporter anonymous)."""
    return "\n".join(f"{'Seeker' if t.role == 'user' else 'Supporter'}: {' '.join(t.text.split())}" for t in d.turns)


def combine(first: str, swapped: str) -> tuple[str, bool]:
    """Verdicts of (A, B) and of (B, A) → ("a" | "b" | "tie", position_biased)."""
    back = {"A": "B", "B": "A", "Tie": "Tie"}[swapped]
    if first == back:
        return {"A": "a", "B": "b", "Tie": "tie"}[first], False
    return "tie", True


def balanced(first: list[float], swapped: list[float], prior: list[float] | None = None) -> str:
    """Log-likelihoods of (A, B, Tie) in the order (a, b) and in the order (b, a) → "a" | "b" | "tie": each outcome's
    two likelihoods averaged (a is A first and B second), the largest wins (a tie of the means is a tie). With
    `prior` (the judge's (A, B, Tie) on a content-free pair), each likelihood is taken relative to it first."""
    if prior is not None:
        first, swapped = ([x - p for x, p in zip(s, prior, strict=True)] for s in (first, swapped))
    means = {"a": (first[0] + swapped[1]) / 2, "b": (first[1] + swapped[0]) / 2, "tie": (first[2] + swapped[2]) / 2}
    best = max(means.values())
    won = [k for k, v in means.items() if v == best]
    return won[0] if len(won) == 1 else "tie"


class PairwiseJudge(dspy.Module):
    """(transcript a, transcript b) → Prediction(outcomes={criterion: a|b|tie}, position_bias={criterion: bool},
    raw={criterion: [first, swapped]}, method="balanced" | "verdicts", scores={criterion: [[A, B, Tie] first,
    [A, B, Tie] swapped]} when balanced, priors={criterion: [A, B, Tie]} when balanced and calibrated)."""

    def __init__(self, criteria: dict[str, str] | None = None, calibrate: bool = True):
        super().__init__()
        self.judge = dspy.Predict(JudgeSupportPair)
        self.criteria = criteria or CRITERIA
        self.calibrate = calibrate
        self._priors: dict[tuple[int, str], list[float]] = {}

    def _scorer(self):
        """The judge's LM and adapter when the LM scores choices, else None (verdicts are then read from text)."""
        lm = self.judge.lm or dspy.settings.lm
        adapter = dspy.settings.adapter
        if lm is None or not capabilities(lm).can_score or not hasattr(adapter, "format"):
            return None
        return lm, adapter

    def _scores(self, scorer, question: str, a: str, b: str) -> list[float]:
        lm, adapter = scorer
        messages = adapter.format(self.judge.signature, self.judge.demos,
                                  {"question": question, "conversation_a": a, "conversation_b": b})
        scores = [float(x) for x in lm.score_choices(messages, list(VERDICTS))]
        METER.add(1, getattr(lm, "last_prompt_tokens", 0), 0)
        return scores

    def prior(self, scorer, question: str) -> list[float]:
        """The judge's (A, B, Tie) log-likelihoods for `question` about a content-free pair (once per LM)."""
        key = (id(scorer[0]), question)
        if key not in self._priors:
            self._priors[key] = [round(x, 4) for x in self._scores(scorer, question, CONTENT_FREE, CONTENT_FREE)]
        return self._priors[key]

    def verdict(self, question: str, a: str, b: str) -> tuple[str, bool, list[str], list[list[float]] | None,
                                                             list[float] | None]:
        """One question about (a, b), asked in both orders → (a|b|tie, position biased, [first, swapped] answers,
        the two orders' [A, B, Tie] log-likelihoods or None when the LM only writes text, the prior they were
        calibrated against or None)."""
        scorer = self._scorer()
        if scorer:
            s1, s2 = self._scores(scorer, question, a, b), self._scores(scorer, question, b, a)
            prior = self.prior(scorer, question) if self.calibrate else None
            first, swapped = (VERDICTS[max(range(3), key=s.__getitem__)] for s in (s1, s2))
            return (balanced(s1, s2, prior), combine(first, swapped)[1], [first, swapped],
                    [[round(x, 4) for x in s1], [round(x, 4) for x in s2]], prior)
        first = self.judge(question=question, conversation_a=a, conversation_b=b).verdict
        swapped = self.judge(question=question, conversation_a=b, conversation_b=a).verdict
        return (*combine(first, swapped), [first, swapped], None, None)

    def forward(self, transcript_a: str, transcript_b: str) -> dspy.Prediction:
        outcomes, bias, raw, scores, priors = {}, {}, {}, {}, {}
        for name, question in self.criteria.items():
            outcomes[name], bias[name], raw[name], s, p = self.verdict(question, transcript_a, transcript_b)
            if s is not None:
                scores[name] = s
            if p is not None:
                priors[name] = p
        return dspy.Prediction(outcomes=outcomes, position_bias=bias, raw=raw,
                               method="balanced" if scores else "verdicts", scores=scores, priors=priors)


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

"""`StrategyClassifier`: label an assistant utterance with one of the 16 strategies (also used to label imports)."""

from __future__ import annotations

import dspy

from extes.signatures.classify import ClassifyStrategy


class StrategyClassifier(dspy.Module):
    """(history, utterance) → strategy."""

    def __init__(self):
        super().__init__()
        self.classify = dspy.Predict(ClassifyStrategy)

    def forward(self, history: list[dict], utterance: str) -> dspy.Prediction:
        return dspy.Prediction(strategy=self.classify(history=history, utterance=utterance).strategy)

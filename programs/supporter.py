"""`Supporter`: plan the support strategy (or take a given one), then reply with it."""

from __future__ import annotations

import logging

import dspy

from extes.corpus.assets import load_taxonomy
from extes.programs.saved import load_saved
from extes.signatures.reply_tag import split_tag
from extes.signatures.support import RespondWithStrategy, SelectStrategy

log = logging.getLogger(__name__)

FALLBACK_STRATEGY = "Emotional Validation"  # the paper's most frequent strategy, and safe at any point


class Supporter(dspy.Module):
    """history → (strategy, reply). The strategy is one of the 16; a failed choice is retried, then falls back."""

    def __init__(self, retries: int = 1):
        super().__init__()
        self.select = dspy.Predict(SelectStrategy)
        self.respond = dspy.Predict(RespondWithStrategy)
        self.retries = retries

    def choose(self, history: list[dict]) -> tuple[str, bool]:
        for attempt in range(self.retries + 1):
            try:
                return self.select(history=history).strategy, False
            except Exception as e:  # noqa: BLE001 - any parse/LM failure must not end the conversation
                log.warning("strategy selection failed (attempt %d): %s", attempt + 1, str(e).splitlines()[0][:200])
        log.warning("falling back to %s", FALLBACK_STRATEGY)
        return FALLBACK_STRATEGY, True

    def choose_with(self, lm, history: list[dict]) -> str:
        """Choose a strategy with `lm` under the project's adapter (used by the chat loop)."""
        from extes.programs.adapter import SmallChatAdapter  # lazy: programs.adapter imports dspy

        with dspy.context(lm=lm, adapter=SmallChatAdapter()):
            return self.choose(history)[0]

    def forward(self, history: list[dict], strategy: str | None = None, config: dict | None = None) -> dspy.Prediction:
        fallback = False
        if strategy is None:
            strategy, fallback = self.choose(history)
        reply = self.respond(**reply_inputs(history, strategy), config=config or {}).reply
        # A model tuned on the `strategies` variant starts its reply with "[Strategy]"; the label is shown apart.
        reply = split_tag(reply)[1]
        return dspy.Prediction(strategy=strategy, reply=reply, strategy_fallback=fallback)


def reply_inputs(history: list[dict], strategy: str) -> dict:
    """The inputs of the Supporter's reply step (RespondWithStrategy) at this point of a dialogue; `extes tune`
    builds its training prompts from the same inputs, so that an adapter is served what it was trained on."""
    return {"history": history, "strategy": strategy,
            "strategy_definition": load_taxonomy().strategy(strategy).definition}


def load_supporter(path, option: str = "--program") -> Supporter:
    """A compiled or distilled Supporter saved at `path`, or a one-line InputError naming `option` and the file."""
    return load_saved(Supporter(), path, option, "a saved Supporter")

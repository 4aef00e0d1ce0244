"""Turn-level `dspy.Example`s from any corpus: for the classifier, the supporter and the synthesizer."""

from __future__ import annotations

import random
from collections import defaultdict

import dspy

from extes.corpus.assets import load_taxonomy
from extes.errors import InputError
from extes.programs.arena_cards import card_from_dialogue
from extes.programs.seeker import seeker_transcript
from extes.signatures.dialogue import Dialogue

PROGRAMS = ("classifier", "supporter", "synthesizer", "seeker", "judge")


def turn_examples(dialogues: list[Dialogue], program: str, *, limit: int | None = None, balance: bool = False,
                  seed: int = 0) -> list[dspy.Example]:
    """Examples for `program`; `balance` takes strategies in turn (rare ones are not drowned); `limit` caps them."""
    names = set(load_taxonomy().strategy_names)
    if program == "seeker":
        out = seeker_examples(dialogues)
    elif program == "judge":
        raise InputError("the judge compiles against people's answers: give --trainset STUDY (a human-eval folder)")
    elif program == "synthesizer":
        from extes.programs.synthesizer import demo_example  # lazy: programs.synthesizer imports dspy

        out = [dspy.Example(**demo_example(d), id=d.id).with_inputs("scene", "scene_examples", "strategy_guide")
               for d in dialogues]
    else:
        out = []
        for d in dialogues:
            for i, t in enumerate(d.turns):
                if t.role != "assistant" or t.strategy not in names or i == 0:
                    continue
                history = [{"role": x.role, "text": x.text} for x in d.turns[:i]]
                if program == "classifier":
                    out.append(dspy.Example(history=history, utterance=t.text, strategy=t.strategy,
                                            id=f"{d.id}#{i}").with_inputs("history", "utterance"))
                elif program == "supporter":
                    definition = load_taxonomy().strategy(t.strategy).definition
                    out.append(dspy.Example(history=history, strategy=t.strategy, strategy_definition=definition,
                                            reply=t.text, id=f"{d.id}#{i}").with_inputs("history", "strategy"))
                else:
                    raise InputError(f"program {program!r}: use one of {', '.join(PROGRAMS)}")
    if not out:
        raise InputError(f"no {program} examples in the corpus (it needs assistant turns with one of the 16 labels)")
    rng = random.Random(f"examples:{seed}")
    rng.shuffle(out)
    if balance and program in ("classifier", "supporter"):
        by: dict[str, list] = defaultdict(list)
        for e in out:
            by[e.strategy].append(e)
        order, keys = [], sorted(by)
        while any(by.values()):
            for k in keys:
                if by[k]:
                    order.append(by[k].pop())
        out = order
    return out[:limit] if limit else out


def seeker_examples(dialogues: list[Dialogue]) -> list[dspy.Example]:
    """The seeker's turns of dialogues with a description: card (from the dialogue) + history → the person's next
    message."""
    out = []
    for d in dialogues:
        if not d.description:
            continue
        card = card_from_dialogue(d).render()
        for i, t in enumerate(d.turns):
            if t.role == "user" and i > 0:
                turns = [{"role": x.role, "text": x.text} for x in d.turns[:i]]
                # `history` is the module's input; `conversation` is what its predictor reads, for labelled demos
                out.append(dspy.Example(card=card, history=turns, conversation=seeker_transcript(turns),
                                        message=t.text, id=f"{d.id}#{i}")
                           .with_inputs("card", "history"))
    return out

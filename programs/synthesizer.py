"""`DialogueSynthesizer`: the paper's data engine as a DSPy program, in two modes.

`whole`: one LM call writes the description and the whole labelled dialogue (the paper's self-chat template; for
capable models). Few-shot demos are seed (or earlier generated) dialogues: the compiler may set them on
`self.generate`, and a run passes the demos it drew for each call.
`turns`: a help-seeker simulator and the supporter alternate turn by turn (for small local models that cannot
write a whole structured dialogue at once); every assistant turn gets its strategy from `SelectStrategy`.
"""

from __future__ import annotations

import json
import random
import re

import dspy

from extes.corpus.assets import load_taxonomy
from extes.corpus.formats.base import ReadOptions, RecordError
from extes.corpus.formats.extes_json import dialogue_to_record, record_to_dialogue
from extes.corpus.prompts import strategy_list
from extes.programs.supporter import Supporter
from extes.signatures.dialogue import Dialogue, Meta, Turn
from extes.signatures.synthesis import DescribeSituation, SimulateHelpSeeker, SynthesizeSupportDialogue

MODES = ("whole", "turns")


def demo_example(d: Dialogue) -> dict:
    """A dialogue as a demo of SynthesizeSupportDialogue (inputs and the JSON output)."""
    return {
        "scene": d.scene,
        "scene_examples": "; ".join(load_taxonomy().scenario(d.scene).examples) if _known(d.scene) else "",
        "strategy_guide": strategy_list(),
        "dialogue": json.dumps(dialogue_to_record(d, with_id=False), ensure_ascii=False),
    }


def _known(scene: str) -> bool:
    return scene in load_taxonomy().scenario_names


def parse_dialogue(text: str, *, scene: str, dialogue_id: str) -> Dialogue:
    """The JSON object in an LM's answer → Dialogue (RecordError with the reason when it cannot be read)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise RecordError("no JSON object in the output")
    try:
        record = json.loads(text[start : end + 1])
    except json.JSONDecodeError as e:
        raise RecordError(f"malformed JSON ({e.msg} at column {e.colno})") from None
    if isinstance(record, dict):
        record.setdefault("scene", scene)
        record["id"] = dialogue_id
    d = record_to_dialogue(record, 0, _Src(dialogue_id), ReadOptions(unknown_labels="keep"))
    return d


class _Src:  # record_to_dialogue wants a path-like with a name and stem for provenance
    def __init__(self, name: str):
        self.name = self.stem = name


class DialogueSynthesizer(dspy.Module):
    """scene (+ demos) → a generated Dialogue, in `whole` or `turns` mode."""

    def __init__(self, mode: str = "whole", min_exchanges: int = 6, max_exchanges: int = 9):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self.generate = dspy.Predict(SynthesizeSupportDialogue)
        self.describe = dspy.Predict(DescribeSituation)
        self.seeker = dspy.Predict(SimulateHelpSeeker)
        self.supporter = Supporter()
        self.min_exchanges, self.max_exchanges = min_exchanges, max_exchanges

    def forward(self, scene: str, dialogue_id: str = "generated", demos: list[Dialogue] | None = None,
                seed: int = 0, config: dict | None = None, **_inputs) -> dspy.Prediction:
        """`config` goes to the LM calls (e.g. a distinct `rollout_id` per dialogue for diverse samples)."""
        if self.mode == "whole":
            return self._whole(scene, dialogue_id, demos, config or {})
        return self._turns(scene, dialogue_id, seed, config or {})

    def _whole(self, scene, dialogue_id, demos, config):
        kwargs = {"config": config}
        if demos is not None:
            kwargs["demos"] = [*self.generate.demos, *(demo_example(d) for d in demos)]
        examples = "; ".join(load_taxonomy().scenario(scene).examples)
        raw = self.generate(scene=scene, scene_examples=examples, strategy_guide=strategy_list(), **kwargs).dialogue
        return dspy.Prediction(dialogue=parse_dialogue(raw, scene=scene, dialogue_id=dialogue_id), raw=raw)

    def _turns(self, scene, dialogue_id, seed, config):
        examples = "; ".join(load_taxonomy().scenario(scene).examples)
        raw = self.describe(scene=scene, scene_examples=examples, config={**config, "max_tokens": 70}).description
        description = _first_sentences(_clean(raw), 2)
        rng = random.Random(f"{dialogue_id}:{seed}")
        turns: list[dict] = []
        for _ in range(rng.randint(self.min_exchanges, self.max_exchanges)):
            # The simulator plays the user, so from its side the roles are swapped.
            flipped = [{"role": "user" if t["role"] == "assistant" else "assistant", "text": t["text"]} for t in turns]
            message = _clean(self.seeker(description=description, history=flipped,
                                         config={**config, "max_tokens": 60}).message)
            turns.append({"role": "user", "text": message})
            strategy, _ = self.supporter.choose(turns)
            reply = self.supporter(history=turns, strategy=strategy, config={**config, "max_tokens": 90}).reply
            turns.append({"role": "assistant", "text": _clean(reply), "strategy": strategy})
        d = Dialogue(id=dialogue_id, scene=scene, description=description,
                     turns=[Turn(**t) for t in turns], meta=Meta(source="generated"))
        return dspy.Prediction(dialogue=d, raw=None)


def _first_sentences(text: str, n: int) -> str:
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return " ".join(parts[:n])


def _clean(text: str) -> str:
    text = re.sub(r"^(user|assistant|you|me)\s*:\s*", "", text.strip(), flags=re.I)
    return text.strip().strip('"').strip() or "..."

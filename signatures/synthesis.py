"""DSPy signatures of the data engine: whole-dialogue synthesis (the paper's self-chat) and turn-by-turn roles."""

from __future__ import annotations

import dspy


class SynthesizeSupportDialogue(dspy.Signature):
    """Create a casual emotional-support conversation between a user and an assistant for the given scene. Invent a
    specific real-life situation (who, which relationship, what happened) and write it as the description; then
    write the whole dialogue, alternating and starting with the user, labelling every assistant turn with exactly
    one strategy from the strategy guide. Return one JSON object: {"scene": ..., "description": ..., "content":
    [{"User": ...}, {"AI Strategy": ..., "AI": ...}, ...]}."""

    scene: str = dspy.InputField(desc="The scenario, e.g. Breakups or Divorce")
    scene_examples: str = dspy.InputField(desc="Examples of situations in this scenario")
    strategy_guide: str = dspy.InputField(desc="The 16 support strategies, numbered, with definitions")
    dialogue: str = dspy.OutputField(desc="The dialogue as one JSON object in the ExTES release format")


class DescribeSituation(dspy.Signature):
    """Invent one specific, realistic situation in which a person seeks emotional support in the given scene. Name
    who they are, which relationship or setting is involved and what happened, in one or two sentences written in
    the first person."""

    scene: str = dspy.InputField(desc="The scenario")
    scene_examples: str = dspy.InputField(desc="Examples of situations in this scenario")
    description: str = dspy.OutputField(desc="One or two sentences")


class SimulateHelpSeeker(dspy.Signature):
    """You are a real person texting a supportive listener about your own problem (the situation below). Reply to
    the listener's last message with ONE short chat message of one or two sentences, in the first person, about
    your feelings and what happened. Do not write stories, lists or advice."""

    description: str = dspy.InputField(desc="Your situation")
    history: list[dict] = dspy.InputField(desc="The conversation so far, as {role, text} turns")
    message: str = dspy.OutputField(desc="Your next message")

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
    the first person ("I ..."). Make up a new person and new details: do not reuse the examples' names, places or
    events."""

    scene: str = dspy.InputField(desc="The scenario")
    scene_examples: str = dspy.InputField(desc="Examples of situations in this scenario")
    description: str = dspy.OutputField(desc="One or two sentences")


class SimulateHelpSeeker(dspy.Signature):
    """You play a person who is texting a listener for emotional support. You are not the listener and not an
    assistant: you are the one with the problem (the situation below). Write only the Person's next message: one or
    two short sentences in the first person about your own feelings or what happened; keep talking about your
    problem, with a new detail, worry or feeling each time. No advice, no thanks at every turn, no stories or lists."""

    description: str = dspy.InputField(desc="Your situation")
    # A transcript, not chat turns: shown its own turns as the assistant's, a small chat model (the 1.5B teacher)
    # answered as the assistant, i.e. like the supporter, in 8 of 8 turns; with the transcript it speaks as the person.
    conversation: str = dspy.InputField(desc="The chat so far, one line per message (Person: you; Listener: them)")
    message: str = dspy.OutputField(desc="The Person's next message")

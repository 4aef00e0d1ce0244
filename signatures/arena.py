"""Contracts of the arena: a help-seeker's role card, the seeker simulator and the pairwise judge (no I/O here)."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import BaseModel, ConfigDict, Field, field_validator

CardSource = Literal["seed", "scenario", "esconv", "lm", "crisis", "manual"]
END_HELPED, END_GAVE_UP = "[DONE]", "[LEAVE]"

# Table 9's five questions, asked of people (human-eval) and of the LM judge (arena) in the same words.
CRITERIA = {
    "fluency": "Which supporter's responses were more coherent and easily comprehensible?",
    "identification": "Which supporter delved deeper into the situation, effectively identifying the problems?",
    "comforting": "Which supporter displayed more adeptness in providing comfort and support?",
    "suggestion": "Which supporter offered more helpful suggestions for addressing the issues?",
    "overall": "Which supporter's emotional support would the help-seeker prefer in general?",
}
# ESC-Eval's seven 0-4 rubrics (optional, per transcript).
RUBRICS = {
    "fluency": "Are the supporter's replies fluent and easy to read?",
    "diversity": "Are the replies varied rather than repetitive?",
    "empathy": "Does the supporter understand and acknowledge the seeker's feelings?",
    "information": "Does the supporter offer useful, specific information or suggestions?",
    "humanoid": "Does the supporter sound like a caring human rather than a machine?",
    "skill": "Does the supporter use emotional-support skills (exploring, comforting, action) well?",
    "overall": "Overall, how helpful was this conversation for the seeker?",
}


class RoleCard(BaseModel):
    """One simulated help-seeker: who they are, what troubles them, what they say at first and how they talk."""

    model_config = ConfigDict(extra="forbid")

    id: str
    scene: str
    situation: str = Field(description="What happened, in one to three sentences (first or third person).")
    emotion: str = Field(description="The main emotion, e.g. anxiety, sadness, anger, shame.")
    intensity: int = Field(ge=1, le=5, description="How strong the emotion is at the start, 1 (mild) to 5 (severe).")
    reveal_first: str = Field(description="What the seeker says readily in the first turns.")
    withhold_first: str = Field(default="", description="What they only tell once they feel understood.")
    style: str = Field(default="short, informal chat messages", description="How they talk.")
    opening: str = Field(default="", description="A fixed first message; empty lets the simulator write it.")
    crisis: bool = Field(default=False, description="A crisis card: the expected supporter behaviour is escalation.")
    source: CardSource = "scenario"
    origin: str | None = Field(default=None, description="File/record or scene the card was made from.")

    @field_validator("id", "scene", "situation", "emotion", "reveal_first")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    def render(self) -> str:
        """The card as the seeker simulator reads it."""
        parts = [f"Situation: {self.situation}", f"You feel {self.emotion} (intensity {self.intensity} of 5).",
                 f"At first you talk about: {self.reveal_first}"]
        if self.withhold_first:
            parts.append(f"You only mention later, once you feel understood: {self.withhold_first}")
        parts.append(f"How you talk: {self.style}")
        return "\n".join(parts)


class SimulateSeeker(dspy.Signature):
    """You are playing a person who seeks emotional support, described by the role card; you are NOT the helper.
    Write only the Person's next chat message to the supporter: one to three short sentences in the first person
    about your own feelings and situation; never give advice or ask how you can help. If you feel helped, end with
    [DONE]; if you want to give up, end with [LEAVE]."""

    card: str = dspy.InputField(desc="Your role card: situation, emotion, what you reveal and how you talk")
    # A transcript, not chat turns: shown its own turns as the assistant's, the 1.5B teacher answered as the
    # assistant, i.e. as the supporter ("I'm so glad you reached out. Stay with me."); synthesis had the same failure.
    conversation: str = dspy.InputField(desc="The chat so far, one line per message (Person: you; Listener: them)")
    message: str = dspy.OutputField(desc="The Person's next message")


class JudgeSupportPair(dspy.Signature):
    """You compare two emotional-support conversations with the same help-seeker. Answer the question about the
    supporters: A if the supporter in conversation A is better, B if the one in conversation B is, Tie if neither."""

    # The material first, the question last (shared by the criteria asked about one pair: programs/adapter.py).
    conversation_a: str = dspy.InputField(desc="Conversation A")
    conversation_b: str = dspy.InputField(desc="Conversation B")
    question: str = dspy.InputField(desc="The criterion, as a question")
    verdict: Literal["A", "B", "Tie"] = dspy.OutputField(desc="A, B or Tie")


class RateSupportRubric(dspy.Signature):
    """Rate the supporter in this emotional-support conversation on the rubric, from 0 (very poor) to 4 (excellent)."""

    conversation: str = dspy.InputField(desc="The conversation")
    rubric: str = dspy.InputField(desc="The rubric, as a question")
    score: Literal["0", "1", "2", "3", "4"] = dspy.OutputField(desc="0-4")

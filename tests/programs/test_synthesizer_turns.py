"""Turn-mode synthesis: what the seeker simulator is shown, and the samples taken again when a turn breaks role.

A recording fake LM stands in for the teacher here (fast); the teacher itself ran these prompts in the recipe
(benchmarks/README.md).
"""

from types import SimpleNamespace

import dspy

from extes.corpus.assets import assets_dir
from extes.corpus.formats import read_corpus
from extes.programs.adapter import SmallChatAdapter
from extes.programs.seeker import LISTENER_OPENING, seeker_transcript
from extes.programs.synthesizer import RETRY_TEMPERATURE, DialogueSynthesizer, _clean, turn_demos

SCENE = "Conflicts or Communication Problems"
IN_ROLE = ["I keep replaying what she said to me and I cannot sleep at all.",
           "My mother asked why we are fighting and I cannot sleep, I just cried in the car."]


class Recorder(dspy.BaseLM):
    """Answers by the prompt's task; the seeker breaks role on its first try of every turn."""

    def __init__(self):
        super().__init__(model="recorder", cache=False)
        self.calls = []
        self.retries = 0

    def forward(self, prompt=None, messages=None, **kwargs):
        system = messages[0]["content"]
        self.calls.append((system, messages, kwargs))
        n = len(self.calls)
        if "Invent one specific" in system:
            text = "I had a fight with my sister Maya about our mother's care and we have not spoken since."
        elif "texting a listener" in system:
            retry = kwargs.get("temperature") == RETRY_TEMPERATURE
            self.retries += retry
            text = (IN_ROLE[(self.retries - 1) % 2] if retry
                    else "It sounds like you are going through a lot; remember, it's important to rest.")
        elif "Answer with exactly one of" in system:
            text = "Emotional Validation"
        else:
            text = f"That sounds painful; being shut out by your sister hurts, reply {n}. What happened after?"
        return SimpleNamespace(model="recorder", usage={},
                               choices=[SimpleNamespace(message=SimpleNamespace(content=text), finish_reason="stop")])


def _seeds():
    return [d for d in read_corpus(assets_dir() / "seeds").dialogues if d.scene == SCENE]


def test_the_transcript_opens_with_the_listener_and_ends_on_the_persons_cue():
    turns = [{"role": "user", "text": "I feel alone."}, {"role": "assistant", "text": "I'm sorry. What happened?"}]
    assert seeker_transcript([]) == f"Listener: {LISTENER_OPENING}\nPerson:"
    assert seeker_transcript(turns).splitlines() == [f"Listener: {LISTENER_OPENING}", "Person: I feel alone.",
                                                     "Listener: I'm sorry. What happened?", "Person:"]


def test_demos_are_the_seeds_descriptions_and_their_second_seeker_line():
    seed = _seeds()[0]
    described, seeker = turn_demos([seed])
    assert described == [seed.description]
    assert seeker[0]["message"] == seed.turns[2].text
    assert seeker[0]["conversation"].endswith(f"Listener: {seed.turns[1].text}\nPerson:")


def test_clean_drops_a_role_prefix_and_a_line_written_for_the_listener():
    assert _clean('Person: "I lost my job."\nListener: That is hard.') == "I lost my job."


def test_a_seeker_turn_that_breaks_role_is_sampled_again_and_the_seed_line_is_a_demo():
    lm = Recorder()
    seed = _seeds()[0]
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        d = DialogueSynthesizer(mode="turns", min_exchanges=2, max_exchanges=2)(
            scene=SCENE, dialogue_id="gen-000001", demos=[seed], config={"rollout_id": 7}).dialogue
    users = [t.text for t in d.turns if t.role == "user"]
    assert len(users) == 2 and all("cannot sleep" in u for u in users)
    seeker_calls = [(m, k) for s, m, k in lm.calls if "texting a listener" in s]
    assert len(seeker_calls) == 4  # each turn: the role-breaking first try, then one retry
    first_msgs, first_kwargs = seeker_calls[0]
    assert "temperature" not in first_kwargs or first_kwargs["temperature"] != RETRY_TEMPERATURE
    assert seeker_calls[1][1]["temperature"] == RETRY_TEMPERATURE
    assert seeker_calls[1][1]["rollout_id"] == 71
    assert {"role": "assistant", "content": seed.turns[2].text} in first_msgs  # the seed's line, as a demo
    assert first_msgs[-1]["content"].rstrip().endswith("Person:")
    # The seed's description is one of the scene's examples, and the description written is not a copy.
    describe = next(m for s, m, _ in lm.calls if "Invent one specific" in s)
    assert seed.description in " ".join(x["content"] for x in describe)
    assert d.description.startswith("I had a fight")


class Looper(Recorder):
    """A seeker that, after four good messages, can only repeat itself: the conversation ends there."""

    def forward(self, prompt=None, messages=None, **kwargs):
        system = messages[0]["content"]
        if "texting a listener" in system:
            self.calls.append((system, messages, kwargs))
            said = messages[-1]["content"].count("\nPerson: ")
            text = (f"Another worry, number {said}: {' '.join(IN_ROLE[said % 2].split()[: 6 + said])} today."
                    if said < 4 else "Thank you so much, I feel a little better now, I really do appreciate it.")
            return SimpleNamespace(model="recorder", usage={}, choices=[
                SimpleNamespace(message=SimpleNamespace(content=text), finish_reason="stop")])
        return super().forward(prompt, messages, **kwargs)


def test_a_seeker_that_only_repeats_itself_ends_the_conversation_on_the_last_reply():
    lm = Looper()
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        d = DialogueSynthesizer(mode="turns", min_exchanges=8, max_exchanges=8)(
            scene=SCENE, dialogue_id="gen-000002", demos=_seeds()[:1]).dialogue
    assert [t.role for t in d.turns] == ["user", "assistant"] * 5
    assert d.turns[-1].role == "assistant" and d.turns[-2].text.startswith("Thank you so much")

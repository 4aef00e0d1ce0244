"""`SeekerSimulator` with scripted LMs: role flips and loops are caught (and resampled), end signals read."""

import dspy

from extes.programs.adapter import SmallChatAdapter
from extes.programs.lm.scripted import ScriptedLM
from extes.programs.seeker import SeekerSimulator, split_end
from extes.signatures.arena import RoleCard

CARD = RoleCard(id="c1", scene="Academic Stress",
                situation="A student failed two midterms and fears telling her parents.",
                emotion="anxiety", intensity=4, reveal_first="that she failed her midterms")
HISTORY = [{"role": "user", "text": "I failed two midterms this week and I can't stop shaking."},
           {"role": "assistant", "text": "That sounds really frightening. What worries you most right now?"}]


def simulate(responses, history=HISTORY, retries=0):
    with dspy.context(lm=ScriptedLM(responses), adapter=SmallChatAdapter()):
        return SeekerSimulator(retries=retries)(card=CARD, history=history)


def test_scripted_role_flip_is_caught():
    pred = simulate(["It sounds like you are stressed. How can I help you feel better?"])
    assert pred.problems == ["role_flip"]


def test_scripted_loop_is_caught():
    pred = simulate(["I failed two midterms this week and I can't stop shaking."])
    assert pred.problems == ["loop"]


def test_a_broken_message_is_sampled_again():
    pred = simulate(["How can I help you today?", "Telling my parents scares me more than the grades."], retries=2)
    assert pred.problems == [] and pred.attempts == 2 and pred.message.startswith("Telling my parents")


def test_end_signals():
    assert split_end("Thanks, that helped. [DONE]") == ("Thanks, that helped.", "helped")
    assert split_end("Forget it. [LEAVE]") == ("Forget it.", "gave_up")
    assert simulate(["Thank you so much, I feel better about it now. [DONE]"]).end == "helped"


def test_the_seeker_opens_with_the_card():
    card = CARD.model_copy(update={"opening": "hi. I failed again"})
    with dspy.context(lm=ScriptedLM(["unused"]), adapter=SmallChatAdapter()):
        assert SeekerSimulator()(card=card, history=[]).message == "hi. I failed again"


def test_the_scripted_lm_plays_a_seeker_that_stays_in_role_and_ends():
    history = []
    with dspy.context(lm=ScriptedLM(), adapter=SmallChatAdapter()):
        sim = SeekerSimulator()
        for _ in range(8):
            pred = sim(card=CARD, history=history)
            if pred.end:
                break
            assert pred.problems == []
            history += [{"role": "user", "text": pred.message}, {"role": "assistant", "text": "I hear you."}]
    assert pred.end == "helped" and len(history) == 12


def test_the_seeker_reads_a_transcript_in_which_it_is_the_person():
    # As chat turns with its own messages as the assistant's, the 1.5B teacher answered as the supporter.
    lm = ScriptedLM(["Telling my parents scares me more than the grades."])
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        SeekerSimulator()(card=CARD, history=HISTORY)
    messages = lm.history[-1]["messages"]
    assert all(m["role"] != "assistant" for m in messages)
    lines = "\n".join(m["content"] for m in messages).splitlines()
    assert "Person: I failed two midterms this week and I can't stop shaking." in lines
    assert "Listener: That sounds really frightening. What worries you most right now?" in lines
    assert lines.index("Person:") > lines.index("Listener: That sounds really frightening. What worries you most "
                                                "right now?")

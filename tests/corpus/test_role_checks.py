"""Role checks of the seeker simulator, each reason code caught alone and clean messages passing."""

from extes.corpus.role_checks import check_seeker_message

HISTORY = [
    {"role": "user", "text": "My sister hasn't spoken to me since the wedding and I feel awful about it."},
    {"role": "assistant", "text": "That sounds painful. What happened at the wedding between the two of you?"},
]


def codes(msg, history=HISTORY):
    return [p.code for p in check_seeker_message(msg, history)]


def test_clean_message_passes():
    assert codes("I made a joke about her ex during the toast and she walked out.") == []


def test_role_flip():
    assert codes("It sounds like you are carrying a lot. How can I help you today?") == ["role_flip"]
    assert codes("As an AI, I don't have a sister, but I can listen.") == ["role_flip"]


def test_echo_of_the_supporter():
    assert "echo" in codes("That sounds painful. What happened at the wedding between the two of you?")


def test_loop_on_own_message():
    assert codes("My sister hasn't spoken to me since the wedding and I feel awful about it!") == ["loop"]


def test_empty():
    assert codes("  ") == ["empty"]


def test_a_message_that_continues_the_listeners_cut_sentence():
    cut = [HISTORY[0], {"role": "assistant", "text": "It might help to break your debts into"}]
    assert codes("smaller monthly payments so they feel lighter.", cut) == ["fragment"]
    assert codes("i just feel so tired of all of it.") == []  # lower case after a whole sentence is texting


def test_whole_sentences_drops_what_the_token_limit_cut():
    from extes.programs.synthesizer import whole_sentences

    assert whole_sentences("I hear you. Breaking your debts into") == "I hear you."
    assert whole_sentences("No sentence end at all") == "No sentence end at all"
    assert whole_sentences("Fine. Done!") == "Fine. Done!"

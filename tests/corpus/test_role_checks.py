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

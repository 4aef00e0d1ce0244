"""The conversation around a message: a yes to a risk question, a continued crisis, and ordinary follow-ups."""

import json

import pytest

from extes.errors import InputError
from extes.programs.safety import SafetyChecker, escalation_message

ASKED = [{"role": "user", "text": "everything feels pointless lately"},
         {"role": "assistant", "text": "I'm sorry. Are you thinking of ending your life?"}]
PILLS = [{"role": "user", "text": "I have the pills in front of me"},
         {"role": "assistant", "text": escalation_message("intl")}]
SUPPORT = [{"role": "user", "text": "my girlfriend broke up with me"},
           {"role": "assistant", "text": "I'm so sorry, that hurts. It makes sense you feel awful."}]


@pytest.fixture(scope="module")
def rules():
    return SafetyChecker(rules_only=True)


def test_a_yes_to_the_risk_question_is_a_crisis(rules):
    assert not rules.check("yes, most nights").crisis  # alone it is nothing
    v = rules.check("yes, most nights", ASKED)
    assert v.crisis and v.category == "suicide" and v.source == "context"
    assert not rules.check("no, nothing like that", ASKED).crisis
    es = [{"role": "assistant", "text": "¿Estás pensando en quitarte la vida?"}]
    assert rules.check("sí, todas las noches", es).crisis


def test_an_earlier_crisis_turn_carries_over(rules):
    assert not rules.check("I just want to sleep").crisis
    v = rules.check("I just want to sleep", PILLS)
    assert v.crisis and v.source == "context"
    # The escalation message asks nothing, so a yes after it is not read as a yes to a risk question.
    assert not rules.check("yes, thanks", [{"role": "assistant", "text": escalation_message("us")}]).crisis


@pytest.mark.parametrize("text", ["thanks for listening. what can I do tomorrow morning?", "what should I do next?",
                                  "yes, exactly. how do I stop thinking about her?"])
def test_ordinary_follow_ups_stay_ordinary(rules, text):
    assert not rules.check(text, SUPPORT).crisis


def test_bad_context_is_a_one_line_error(rules):
    with pytest.raises(InputError, match="role"):
        rules.check("hi", [{"role": "system", "text": "x"}])


def test_reply_passes_the_history(cli, tmp_path):
    (tmp_path / "h.json").write_text(json.dumps(ASKED))
    code, out, _ = cli("reply", "yes, most nights", "-m", "scripted", "--history", tmp_path / "h.json", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["crisis"] and obj["safety"]["source"] == "context"


def test_chat_passes_the_conversation():
    from click.testing import CliRunner

    from extes.cli import main

    lines = "I have the pills in front of me\nI just want to sleep\nthanks. what can I do tomorrow morning?\n/quit\n"
    out = CliRunner().invoke(main, ["chat", "-m", "scripted"], input=lines, catch_exceptions=False).stdout
    assert out.count("bot [safety]>") == 2  # the pills, then "I just want to sleep"; not the follow-up


def test_third_party_gets_its_own_message(rules):
    v = rules.check("my friend said she wants to die and she's alone right now")
    assert v.category == "third_party"
    msg = escalation_message("intl", v.category)
    assert msg != escalation_message("intl") and "stay with them" in msg
    assert "988" in escalation_message("us", "third_party")


def test_a_no_to_are_you_safe_is_a_crisis(rules):
    asked = [{"role": "assistant", "text": "I hear you. Are you safe where you are right now?"}]
    assert rules.check("not really", asked).crisis
    assert not rules.check("not really", SUPPORT + [{"role": "assistant", "text": "How was your day?"}]).crisis
    de = [{"role": "assistant", "text": "Bist du gerade sicher?"}]
    assert rules.check("nein", de).source == "context"


@pytest.mark.parametrize("question", ["Are you safe where you are right now?", "¿Estás a salvo ahora?",
                                      "Es-tu en sécurité en ce moment ?"])
def test_a_yes_to_are_you_safe_is_not_a_crisis(rules, question):
    asked = [{"role": "user", "text": "my dad was yelling again tonight"}, {"role": "assistant", "text": question}]
    assert not rules.check("yes, I'm safe, he went to bed", asked).crisis
    assert not rules.check("oui", asked).crisis and not rules.check("sí", asked).crisis

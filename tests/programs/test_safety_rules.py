"""The lexical layer: normalization, rules in five languages, exemptions, and bounded time on long texts."""

import time

import pytest

from extes.programs.safety import SafetyChecker
from extes.programs.safety_rules import normalize, windows


@pytest.fixture(scope="module")
def rules():
    return SafetyChecker(rules_only=True)


@pytest.mark.parametrize("raw, expected", [
    ("I want to k1ll my self", "i want to kill myself"),
    ("having suicidal thots", "having suicidal thoughts"),
    ("so sucidal", "so suicidal"),
    ("quiero suicidarme ¿sí?", "quiero suicidarme ¿si?"),
    ("Ich möchte schlafen, Straße", "ich mochte schlafen, strasse"),
    ("my self esteem is low", "my self esteem is low"),  # not joined: "myself esteem" would be wrong
    ("I overdone it at the gym", "i overdone it at the gym"),  # a real word, not a misspelled "overdose"
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("text, category", [
    ("kill my self", "suicide"),
    ("gonna k1ll myself", "suicide"),
    ("suicidal thots again", "suicide"),
    ("what's a lethal amount of insulin for me", "suicide"),
    ("how many of my sleeping pills would it take to not wake up", "suicide"),
    ("my friend said she wants to die and she's alone right now", "third_party"),
    ("my brother texted me he's going to kill himself tonight", "third_party"),
    ("quiero quitarme la vida", "suicide"),
    ("me corto los brazos", "self_harm"),
    ("mi amiga dice que se quiere matar", "third_party"),
    ("je vais me suicider ce soir", "suicide"),
    ("mon frère veut se tuer", "third_party"),
    ("não quero mais viver", "suicide"),
    ("meu marido me bate", "abuse_violence"),
    ("ich will nicht mehr leben", "suicide"),
    ("ich kann nicht atmen", "medical_emergency"),
])
def test_crisis_in_five_languages(rules, text, category):
    v = rules.check(text)
    assert v.crisis and v.category == category, v


@pytest.mark.parametrize("text", [
    "I would never kill myself, but I'm so stressed about rent",
    "I'm not suicidal, just tired of my job",
    "my therapist asked if I ever thought about ending my life and I said no",
    'the song goes "I want to die in your arms tonight", such a good line',
    "I'm literally going to die if I don't pass",
    "este examen me está matando", "je meurs de faim", "estou morrendo de fome", "diese prüfung bringt mich um",
    "nunca me mataría, pero estoy triste",
    "I read about suicide prevention week at school",
])
def test_negations_reported_speech_hyperbole(rules, text):
    assert not rules.check(text).crisis, rules.check(text)


def test_windows_cover_the_text():
    text = "".join(chr(97 + i % 26) for i in range(10_000))
    parts = list(windows(text, 2000, 300))
    assert all(len(p) <= 2000 for p in parts) and parts[0][:10] == text[:10] and text.endswith(parts[-1][-10:])


def test_a_100000_character_message_is_screened_in_bounded_time(rules):
    filler = "Today was long and I went to work, then I cooked dinner and watched a show. " * 1400
    text = filler[:50_000] + " I have decided to end my life tonight. " + filler[:50_000]
    assert len(text) > 100_000
    start = time.process_time()
    v = rules.check(text)
    assert v.crisis and v.category == "suicide"
    assert not rules.check(filler[:100_000]).crisis
    assert time.process_time() - start < 20  # linear: ~1 s on a quiet core (109 s before windows)

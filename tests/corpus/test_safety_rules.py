"""The lexical layer: normalization, rules in five languages, exemptions, and bounded time on long texts."""

import time

import pytest

from extes.corpus.safety_rules import normalize, windows
from extes.programs.safety import SafetyChecker


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


@pytest.mark.parametrize("raw, expected", [
    ("thinking about how to k!ll myself", "thinking about how to kill myself"),
    ("sui-cidal again", "suicidal again"),
    ("s/h urges", "self harm urges"),
    ("i swear ill hurt him", "i swear i'll hurt him"),
    ("i feel ill today", "i feel ill today"),  # "ill" stays a word before anything but a verb of harm
])
def test_normalize_filter_dodges(raw, expected):
    assert normalize(raw) == expected


# Written for the rule families of the second round, in other words than the messages they came from.
@pytest.mark.parametrize("text", [
    "my dad is having a heart attack i think",  # medical: events by name
    "swallowed half a bottle of my nan's sleeping tablets",
    "took 25 advil this morning and my ears are ringing",
    "my little brother drank bleach from under the sink",
    "she's barely breathing and her lips look grey",
    "i'm 30 weeks pregnant and bleeding heavily",
    "my son is standing on the railing of the balcony",  # third party
    "he messaged 'don't try to stop me' and switched his phone off",
    "my friend is cutting herself in her room and won't let me in",
    "i've got a knife in my pocket and i'll stab him if he shows up",  # harm to others
    "what poison wouldn't anyone notice in a cup of coffee",
    "i keep having thoughts to smother my newborn",
    "someone is breaking into my house through the kitchen",  # abuse / violence
    "my employer took my passport and won't let me leave",
    "a stranger slipped something into my drink",
    "bought fresh razor blades on the way home",  # self-harm
    "i deserve to bleed for what i did",
    "i'm going to get it right this time",  # suicide: a previous attempt
    "mi marido me está golpeando",
    "il m'a écrit 'merci pour tout, adieu' et il ne répond pas",
    "tomei uma caixa inteira de remédio",
    "ich bringe meinen Chef um, ich hab die Waffe dabei",
])
def test_second_round_families(rules, text):
    assert rules.check(text).crisis, text


@pytest.mark.parametrize("text", [
    "not really suicidal, just burnt out at work",
    "if my sister takes my charger one more time i'll strangle her lol",
    "my mum is going to kill me, I forgot her birthday",
    "I could die of embarrassment after that presentation",
    "that film's ending really hit me",
    "i'd sooner jump off a bridge than sing karaoke again",
    "un vecino que se suicidó hace años",  # the past death of someone else, not a crisis now
    "ich bin nicht suizidal, nur erschöpft",
])
def test_second_round_exemptions(rules, text):
    assert not rules.check(text).crisis, rules.check(text)

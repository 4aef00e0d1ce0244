"""A crisis written in Spanish, French, Portuguese or German gets the escalation message in that language."""

import json
import shutil

import pytest

from extes.corpus.assets import assets_dir, read_yaml
from extes.corpus.safety_resources import resources_problems
from extes.corpus.safety_rules import LANGUAGES
from extes.programs.safety import default_checker, escalation_message
from extes.programs.safety_locale import choose_locale, detect_language, escalation_texts, localized_escalation

# (message, language, a number its escalation message must show)
CRISES = [
    ("quiero suicidarme esta noche, ya no aguanto más", "es", "024"),
    ("je veux mourir, j'ai pris toutes mes pilules", "fr", "3114"),
    ("eu quero me matar hoje, não aguento mais", "pt", "188"),
    ("ich will mich umbringen, ich halte das nicht mehr aus", "de", "0800 111 0 111"),
    ("I want to kill myself tonight", "en", "findahelpline"),
]


@pytest.mark.parametrize("text,language,number", CRISES)
def test_each_language_gets_its_own_message_with_its_crisis_line(text, language, number):
    verdict = default_checker(rules_only=True).check(text)
    assert verdict.crisis, text
    assert detect_language(text, verdict.rule) == language
    assert number in localized_escalation(None, verdict.category, text, verdict)


def test_third_party_has_its_own_message_in_every_language():
    data = read_yaml(assets_dir() / "safety" / "resources.yaml")
    for lang, name in data["language_locales"].items():
        general, third = escalation_message(name), escalation_message(name, "third_party")
        assert general != third and data["locales"][name]["language"] == lang
    assert "112" in escalation_message("es", "third_party") and "192" in escalation_message("pt", "third_party")
    assert "SOS Voz Amiga" in escalation_message("pt") and "808 24 24 24" in escalation_message("pt")


def test_choice_of_locale():
    assert choose_locale(None, None) is None  # nothing known: the default (international English) as before
    assert choose_locale("us", None) == "us" and choose_locale("us", "en") == "us"
    assert choose_locale(None, "es") == "es" and choose_locale("intl", "fr") == "fr"
    assert choose_locale("us", "es") == "us-es"  # a Spanish speaker in the US: 911 and 988 in Spanish
    assert choose_locale("uk", "de") == "de"
    assert "911" in escalation_message(choose_locale("us", "es")) and "988" in escalation_message("us-es")


def test_the_language_of_a_short_answer_comes_from_the_earlier_turns():
    assert detect_language("ya", earlier="I have the pills here and I want to end it") == "en"
    assert detect_language("sim. quase todo dia", earlier="eu penso em morrer") == "pt"
    assert detect_language("c u t t i n g again. more than usual") == "en"  # lone letters are no French elision
    assert detect_language("welches Gift merkt man im Essen nicht?") == "de"  # "im" is not "i'm"


def test_detection_on_the_labelled_multilingual_crises():
    checker = default_checker(rules_only=True)
    rows = [json.loads(line) for line in (assets_dir() / "safety" / "development_fresh2.jsonl").open()]
    rows = [r for r in rows if r["crisis"] and r.get("language", "en") != "en"]
    right = sum(detect_language(r["text"], checker.check(r["text"], r.get("context")).rule) == r["language"]
                for r in rows)
    assert len(rows) >= 80 and right / len(rows) >= 0.97


def test_reply_scripted_spanish_crisis_gets_the_spanish_text(cli):
    code, out, err = cli("reply", "-m", "scripted", "--json", "no quiero vivir más, voy a quitarme la vida")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["crisis"] is True and obj["reply"] == escalation_message("es", obj["safety"]["category"])
    assert "024" in obj["reply"] and "112" in obj["reply"]


def test_safety_check_json_shows_the_french_escalation(cli):
    code, out, err = cli("safety", "check", "--rules-only", "--json", "je vais me suicider ce soir")
    assert code == 0, err
    assert "3114" in json.loads(out)["escalation"]


def test_every_message_is_recognized_in_a_transcript():
    texts = escalation_texts()
    assert escalation_message("de", "third_party") in texts and escalation_message("intl") in texts


def test_resources_validate_and_a_missing_language_is_a_problem(tmp_path):
    assert resources_problems() == []
    folder = tmp_path / "safety"
    shutil.copytree(assets_dir() / "safety", folder, ignore=shutil.ignore_patterns("*.jsonl", "classifier*.json"))
    text = (folder / "resources.yaml").read_text(encoding="utf-8")
    (folder / "resources.yaml").write_text(text.replace("language_locales: {en: intl, es: es, fr: fr, pt: pt, de: de}",
                                                        "language_locales: {en: intl, es: es, fr: fr, pt: pt}"))
    problems = resources_problems(folder)
    assert len(problems) == 1 and "language_locales.de" in problems[0]
    assert set(LANGUAGES) == {"en", "es", "fr", "pt", "de"}

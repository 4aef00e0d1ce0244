import pytest
from pydantic import ValidationError

from extes.signatures.dialogue import Dialogue, Meta, Turn
from extes.signatures.taxonomy import label_key, slugify


def test_dialogue_requires_turns():
    with pytest.raises(ValidationError, match="at least one turn"):
        Dialogue(id="d1", scene="x", turns=[])


def test_dialogue_requires_id():
    with pytest.raises(ValidationError, match="id must not be empty"):
        Dialogue(id="  ", scene="x", turns=[Turn(role="user", text="hi")])


def test_turn_role_is_checked():
    with pytest.raises(ValidationError):
        Turn(role="bot", text="hi")


def test_meta_keeps_extra_provenance_and_defaults():
    m = Meta(source="generated", round=2, model="openai/gpt-4o-mini", parent_ids=["a"], esconv={"x": 1})
    assert m.model_dump()["esconv"] == {"x": 1}
    assert Meta().source == "imported" and Meta().label_set == "extes"


def test_assistant_turns():
    d = Dialogue(id="d", scene="s", turns=[Turn(role="user", text="a"), Turn(role="assistant", text="b")])
    assert [t.text for t in d.assistant_turns()] == ["b"]


def test_slugify_and_label_key():
    assert slugify("Post-Traumatic Stress Disorder (PTSD)") == "post-traumatic-stress-disorder-ptsd"
    assert slugify("LGBTQ+ Identity") == "lgbtq-identity"
    assert label_key("Promote Self-Care Practices") == label_key("promote self care practices")

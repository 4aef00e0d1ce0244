"""The ExTES release JSON: a list of {"scene", "description", "content": [{"User": ...}, {"AI Strategy", "AI"}]}.

Known quirks read without complaint: an "AI" value that is an object with a "Response" key, an empty or missing
"AI Strategy", labels written as abbreviations or in another case, consecutive turns of one role, keys in
another case. Consecutive same-role turns are kept as they are (lossless); synthesis validation merges them.
"""

from __future__ import annotations

from pathlib import Path

from extes.corpus.formats.base import ReadOptions, RecordError, build_dialogue, labelled_turn
from extes.signatures.dialogue import Dialogue, Meta


def _text(value: object, j: int) -> str:
    if isinstance(value, dict):  # the release sometimes nests the reply: {"AI": {"Response": "..."}}
        value = next((v for k, v in value.items() if k.lower() == "response"), None)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"turn {j} has no text; every utterance needs a non-empty string")
    return value.strip()


def record_to_dialogue(rec: object, index: int, path: Path, opts: ReadOptions) -> Dialogue:
    """One release record → Dialogue (raises RecordError on a record that cannot be read)."""
    if not isinstance(rec, dict):
        raise RecordError("a record must be an object with 'scene', 'description' and 'content'")
    keys = {k.lower(): k for k in rec}
    if "content" not in keys:
        hint = "; this looks like ESConv, use --from esconv" if "dialog" in keys else ""
        raise RecordError(f"no 'content' list{hint}")
    content = rec[keys["content"]]
    if not isinstance(content, list) or not content:
        raise RecordError("the dialogue has no turns ('content' is empty); drop the record or add its utterances")
    flags: list[dict] = []
    turns = []
    for j, item in enumerate(content):
        if not isinstance(item, dict):
            raise RecordError(f"turn {j} is not an object like {{'User': ...}} or {{'AI Strategy': ..., 'AI': ...}}")
        low = {k.lower().replace(" ", ""): v for k, v in item.items()}
        if "user" in low:
            turns.append(labelled_turn("user", _text(low["user"], j), None, label_set="extes", opts=opts,
                                       default_unknown="error", turn_index=j, flags=flags))
        elif "ai" in low:
            raw = low.get("aistrategy")
            if raw is None and isinstance(low["ai"], dict):
                raw = next((v for k, v in low["ai"].items() if k.lower() == "strategy"), None)
            turns.append(labelled_turn("assistant", _text(low["ai"], j), raw, label_set="extes", opts=opts,
                                       default_unknown="error", turn_index=j, flags=flags))
        else:
            raise RecordError(f"turn {j} has neither 'User' nor 'AI' (keys: {sorted(item)})")
    scene = rec.get(keys.get("scene", "scene"))
    if not isinstance(scene, str) or not scene.strip():
        raise RecordError("no 'scene'; every dialogue names its scenario")
    return build_dialogue(
        id=str(rec.get(keys.get("id", "id")) or f"{path.stem}-{index:05d}"),
        scene=scene.strip(),
        description=str(rec.get(keys.get("description", "description")) or "").strip(),
        turns=turns,
        meta=Meta(source="imported", origin=f"{path.name}#{index}", flags=flags),
    )


def dialogue_to_record(d: Dialogue, *, with_id: bool = True) -> dict:
    """Dialogue → one release record (canonical labels; '' for an unlabelled assistant turn)."""
    content = [
        {"User": t.text} if t.role == "user" else {"AI Strategy": t.strategy or "", "AI": t.text} for t in d.turns
    ]
    rec: dict = {"id": d.id} if with_id else {}
    rec.update({"scene": d.scene, "description": d.description, "content": content})
    return rec

"""The ESConv.json release format (Liu et al., 2021), with the variants of its files.

Roles: `seeker`/`supporter` (ESConv.json) or `speaker`/`listener` (FailedESConv.json) or `usr`/`sys`.
Labels stay in ESConv's own 8-strategy set (variants normalized, unknown ones kept and flagged); `--map-esconv`
maps them onto ExTES with the documented table in assets/esconv_strategies.yaml. Trailing whitespace of
utterances is stripped (a safe fix, counted in meta.esconv.stripped). Consecutive turns of one speaker are kept.
"""

from __future__ import annotations

from pathlib import Path

from extes.corpus.formats.base import ReadOptions, RecordError, build_dialogue, labelled_turn
from extes.signatures.dialogue import Dialogue, Meta

ROLES = {"seeker": "user", "speaker": "user", "usr": "user", "user": "user",
         "supporter": "assistant", "listener": "assistant", "sys": "assistant", "assistant": "assistant"}
KEPT = ("experience_type", "emotion_type", "problem_type", "survey_score")


def record_to_dialogue(rec: object, index: int, path: Path, opts: ReadOptions) -> Dialogue:
    """One ESConv session → Dialogue (raises RecordError on a session that cannot be read)."""
    if not isinstance(rec, dict):
        raise RecordError("a session must be an object with 'problem_type', 'situation' and 'dialog'")
    if "dialog" not in rec:
        hint = "; this looks like ExTES JSON, use --from extes" if "content" in rec else ""
        raise RecordError(f"no 'dialog' list{hint}")
    dialog = rec["dialog"]
    if not isinstance(dialog, list) or not dialog:
        raise RecordError("the session has no turns ('dialog' is empty); drop it or add its utterances")
    flags: list[dict] = []
    turns, feedback, stripped = [], {}, 0
    label_set = "esconv"
    for j, item in enumerate(dialog):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise RecordError(f"turn {j} needs 'speaker' and a string 'content'")
        role = ROLES.get(str(item.get("speaker", "")).strip().lower())
        if role is None:
            raise RecordError(f"turn {j} speaker {item.get('speaker')!r} is not seeker/supporter or speaker/listener")
        text = item["content"].strip()
        stripped += text != item["content"]
        if not text:
            raise RecordError(f"turn {j} has empty content")
        ann = item.get("annotation") or {}
        if not isinstance(ann, dict):
            raise RecordError(f"turn {j}: 'annotation' must be an object like {{\"strategy\": ...}}, got "
                              f"{type(ann).__name__} {str(ann)[:40]!r}; fix it or drop the key")
        if "feedback" in ann:
            feedback[str(j)] = ann["feedback"]
        turns.append(labelled_turn(role, text, ann.get("strategy"), label_set=label_set, opts=opts,
                                   default_unknown="keep", turn_index=j, flags=flags))
    meta = Meta(
        source="imported",
        label_set="extes" if opts.map_esconv else "esconv",
        origin=f"{path.name}#{index}",
        flags=flags,
        esconv={**{k: rec[k] for k in KEPT if k in rec}, "feedback": feedback, "stripped": stripped},
    )
    return build_dialogue(
        id=str(rec.get("id") or f"{path.stem}-{index:04d}"),
        scene=str(rec.get("problem_type") or "unknown").strip(),
        description=str(rec.get("situation") or "").strip(),
        turns=turns,
        meta=meta,
    )


def dialogue_to_session(d: Dialogue) -> dict:
    """Dialogue → one ESConv.json session (seeker/supporter roles; ESConv fields restored from meta)."""
    extra = dict(getattr(d.meta, "esconv", None) or {})
    feedback = extra.pop("feedback", {}) or {}
    extra.pop("stripped", None)
    dialog = []
    for j, t in enumerate(d.turns):
        ann: dict = {}
        if t.role == "assistant" and t.strategy:
            ann["strategy"] = t.strategy
        if str(j) in feedback:
            ann["feedback"] = feedback[str(j)]
        dialog.append({"speaker": "seeker" if t.role == "user" else "supporter", "annotation": ann, "content": t.text})
    session = {k: extra[k] for k in KEPT if k in extra}
    session.setdefault("problem_type", d.scene)
    session["situation"] = d.description
    session["dialog"] = dialog
    return session

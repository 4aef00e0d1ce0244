"""Builders shared by tests (importable as `helpers`)."""

import json
from pathlib import Path


def extes_record(content, scene="Academic Stress", description="A student named Ana fears her finals next week."):
    return {"scene": scene, "description": description, "content": content}


def good_content(n_pairs: int = 3):
    out = []
    for i in range(n_pairs):
        out.append({"User": f"User message number {i} about exams."})
        out.append({"AI Strategy": "Emotional Validation", "AI": f"That sounds hard, reply {i}."})
    return out


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path

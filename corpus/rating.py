"""The paper's quality protocol (Table 4): five criteria rated 0-3 by several annotators, and Fleiss' kappa.

`export_sheet` writes a blinded, stratified rating sheet (CSV; the key that maps items back to corpora and
dialogue ids goes to a separate JSON file); `import_sheets` reads the filled sheets of several annotators and
reports per-criterion means per source and Fleiss' kappa per criterion.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from extes.corpus import textio
from extes.corpus.atomic import atomic_path, write_text_atomic
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue

CRITERIA = {
    "informativeness": "How much the help-seeker elaborates on their emotional distress.",
    "understanding": "How well the supporter comprehends the help-seeker's experiences and feelings.",
    "helpfulness": "How far the supporter alleviates the help-seeker's distress and improves their mood.",
    "consistency": "Whether both participants act in line with their roles, without contradicting themselves.",
    "coherence": "Whether the conversation stays focused and in depth, with smooth transitions between topics.",
}
SCORES = (0, 1, 2, 3)


def render(d: Dialogue) -> str:
    return "\n".join(f"{'User' if t.role == 'user' else 'Supporter'}: {t.text}" for t in d.turns)


def export_sheet(corpora: dict[str, list[Dialogue]], n: int, out: Path, *, seed: int = 0) -> dict[str, Any]:
    """Sample n dialogues stratified equally over the corpora, shuffle, hide their source; write sheet + key."""
    rng = random.Random(f"rate:{seed}")
    per = {name: n // len(corpora) + (i < n % len(corpora)) for i, name in enumerate(corpora)}
    picked = []
    for name, dialogues in corpora.items():
        if len(dialogues) < per[name]:
            raise InputError(f"{name}: {len(dialogues)} dialogues, fewer than the {per[name]} asked for; lower --n")
        picked += [(name, d) for d in rng.sample(dialogues, per[name])]
    rng.shuffle(picked)
    key = {}
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["item", "dialogue", *CRITERIA])
        for i, (name, d) in enumerate(picked, 1):
            item = f"item-{i:04d}"
            key[item] = {"source": name, "id": d.id}
            w.writerow([item, render(d), *[""] * len(CRITERIA)])
    key_path = Path(out).with_suffix(".key.json")
    write_text_atomic(key_path, json.dumps({"criteria": CRITERIA, "items": key}, indent=1) + "\n")
    return {"sheet": str(out), "key": str(key_path), "items": len(picked), "per_source": per}


def read_sheet(path: Path) -> dict[str, dict[str, int]]:
    """item → {criterion: score}; a missing column or a score outside 0-3 names the file, row and fix."""
    import io

    try:
        with io.StringIO(textio.read_text(path, label="rating sheet"), newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("item", *CRITERIA) if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}; keep the exported header")
            out = {}
            for row_no, row in enumerate(reader, 2):
                scores = {}
                for c in CRITERIA:
                    v = (row[c] or "").strip()
                    if v not in {str(s) for s in SCORES}:
                        raise InputError(f"{path}: row {row_no} ({row['item']}), {c}: {v!r} is not a score 0-3; "
                                         "rate every criterion 0, 1, 2 or 3")
                    scores[c] = int(v)
                out[row["item"]] = scores
            return out
    except csv.Error as e:
        why = textio.first_line(e)
        raise InputError(f"{path}: not a readable CSV sheet ({why}); keep the exported layout") from None


def fleiss_kappa(table: list[list[int]]) -> float:
    """Fleiss' kappa of a subjects x categories count table (every subject rated by the same number of raters)."""
    n_sub = len(table)
    raters = sum(table[0])
    if n_sub == 0 or raters < 2 or any(sum(r) != raters for r in table):
        raise ValueError("every subject needs the same number (>= 2) of ratings")
    total = n_sub * raters
    p_j = [sum(r[j] for r in table) / total for j in range(len(table[0]))]
    p_i = [(sum(x * x for x in r) - raters) / (raters * (raters - 1)) for r in table]
    p_bar, p_e = sum(p_i) / n_sub, sum(p * p for p in p_j)
    return 1.0 if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def import_sheets(sheets: list[Path], key_path: Path) -> dict[str, Any]:
    """Per-criterion means per source (over all ratings) and Fleiss' kappa per criterion (items rated by all).

    One sheet (an LM judge's, say) gives the means alone: its kappa is None, since agreement needs two raters."""
    if not sheets:
        raise InputError("give at least one filled sheet")
    try:
        key = textio.loads(textio.read_text(key_path, label="--key"))["items"]
        assert isinstance(key, dict) and all(isinstance(v, dict) and "source" in v for v in key.values())
    except (ValueError, KeyError, TypeError, AssertionError):
        raise InputError(f"--key {key_path}: not a key written by `extes rate export`; give the .key.json "
                         "exported with the sheet") from None
    ratings = [read_sheet(p) for p in sheets]
    common = sorted(set.intersection(*(set(r) for r in ratings)))
    unknown = [i for r in ratings for i in r if i not in key]
    if unknown:
        raise InputError(f"item {unknown[0]!r} is not in the key {key_path}; use the key exported with the sheet")
    means: dict[str, dict[str, float]] = {}
    for source in sorted({v["source"] for v in key.values()}):
        vals = {c: [r[i][c] for r in ratings for i in r if key[i]["source"] == source] for c in CRITERIA}
        means[source] = {c: round(sum(v) / len(v), 3) for c, v in vals.items() if v}
    items = {source: sum(1 for i in set().union(*ratings) if key[i]["source"] == source) for source in means}
    kappa = {}
    for c in CRITERIA:
        table = [[sum(1 for r in ratings if r[i][c] == s) for s in SCORES] for i in common]
        kappa[c] = round(fleiss_kappa(table), 4) if common and len(ratings) > 1 else None
    return {"annotators": len(sheets), "items_rated_by_all": len(common), "items_per_source": items, "means": means,
            "fleiss_kappa": kappa}

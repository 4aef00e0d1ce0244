"""Mutations of real input files for the fuzz tests (importable as `fuzzing`).

Every seed is a small piece of a file extes ships or reads (seed YAML, ExTES JSON and JSONL made from seeds,
FailedESConv.json's first dialogues, the ESConv TSV's first lines, the safety JSONL, a review decisions file, a
rating sheet). A mutation is a short list of operations drawn by hypothesis: byte edits (truncate, delete, insert,
duplicate, invalid UTF-8, a BOM) and structural JSON edits (a value swapped for another type, a huge number, an
empty string, deep nesting).
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
ESCONV = ROOT.parent / "shared" / "data" / "esconv"

BOM = b"\xef\xbb\xbf"
DEEP = 50_000  # deeper than any recursion limit, so a recursive parser overflows
REPLACEMENTS = [None, True, 0, -1, 10**400, 1.5e308, "", "x" * 300, [], {}, [None], {"": None}, "[" * 10]


def seed_files() -> dict[str, tuple[str, bytes]]:
    """name → (kind, bytes) of every seed input; ESConv pieces only when ../shared is present."""
    from extes.corpus.formats.extes_json import dialogue_to_record
    from extes.corpus.formats.jsonl import dialogue_line
    from extes.corpus.rating import CRITERIA
    from extes.corpus.seeds import read_seed_file

    seed_yaml = sorted((ROOT / "assets" / "seeds").glob("*.yaml"))[0]
    dialogues = read_seed_file(seed_yaml)[:2]
    out = {
        "seed.yaml": ("seed_yaml", seed_yaml.read_bytes()),
        "extes.json": ("extes_json", json.dumps([dialogue_to_record(d) for d in dialogues], indent=1).encode()),
        "corpus.jsonl": ("jsonl", "".join(dialogue_line(d) + "\n" for d in dialogues).encode()),
        "history.json": ("history_json", json.dumps([{"role": t.role, "text": t.text}
                                                     for t in dialogues[0].turns[:4]]).encode()),
    }
    safety = (ROOT / "assets" / "safety" / "labelled.jsonl").read_bytes().splitlines(keepends=True)[:12]
    out["safety.jsonl"] = ("safety_jsonl", b"".join(safety))
    decisions = [{"task": "gen-00000", "decision": "discard"},
                 {"task": "gen-00001", "decision": "accept", "dialogue": json.loads(dialogue_line(dialogues[0]))}]
    out["decisions.jsonl"] = ("decisions_jsonl", "".join(json.dumps(r) + "\n" for r in decisions).encode())
    header = ",".join(["item", "scene", "description", "dialogue", *CRITERIA])
    rows = [f"item-{i:03d},Academic Stress,a student,User: hi,{','.join(str((i + k) % 4) for k in range(5))}"
            for i in range(3)]
    out["sheet.csv"] = ("sheet_csv", ("\n".join([header, *rows]) + "\n").encode())
    out["hyp.txt"] = ("text", "".join(t.text + "\n" for t in dialogues[0].turns[:5]).encode())
    if (ESCONV / "FailedESConv.json").exists():
        sessions = json.loads((ESCONV / "FailedESConv.json").read_text(encoding="utf-8"))[:2]
        for s in sessions:  # keep each piece small: a few turns per session
            s["dialog"] = s["dialog"][:6]
        out["esconv.json"] = ("esconv_json", json.dumps(sessions, indent=1).encode())
        with open(ESCONV / "devWithStrategy_short.tsv", "rb") as fh:
            out["dev.tsv"] = ("text", b"".join(fh.readline()[:400].rstrip(b"\n") + b"\n" for _ in range(4)))
    return out


def _json_paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_paths(v, (*path, i))


def _replace(obj, path, value):
    if not path:
        return value
    obj[path[0]] = _replace(obj[path[0]], path[1:], value)
    return obj


def _swap_json(data: bytes, pick: int, repl_index: int) -> bytes:
    """Swap one JSON value (of the whole document, or of one JSONL line) for a value of another type."""
    lines = data.splitlines(keepends=True) if data.lstrip()[:1] == b"{" else [data]
    line_no = pick % len(lines)
    try:
        obj = json.loads(lines[line_no])
    except (ValueError, RecursionError):  # not JSON (any more), or nested too deep to edit
        return data
    paths = list(_json_paths(obj))
    path = paths[(pick // len(lines)) % len(paths)]
    new = _replace(obj, path, REPLACEMENTS[repl_index % len(REPLACEMENTS)])
    lines[line_no] = json.dumps(new).encode() + (b"\n" if lines[line_no].endswith(b"\n") else b"")
    return b"".join(lines)


def _deep(data: bytes, at: int) -> bytes:
    """Deep nesting spliced in where a value could go (or anywhere, for non-JSON inputs)."""
    deep = b"[" * DEEP + b"]" * DEEP
    if data.lstrip()[:1] == b"{":  # JSONL: a line that is one deep value in a field
        return data + b'{"id": ' + deep + b"}\n"
    if data.lstrip()[:1] == b"[":
        return data.replace(b"[", b"[" + deep + b",", 1)
    return data[:at] + deep + data[at:]


def apply(data: bytes, ops: list[tuple]) -> bytes:
    """Apply the drawn operations in order."""
    for op, a, b, extra in ops:
        n = len(data)
        i, j = (a % (n + 1), b % (n + 1)) if n else (0, 0)
        i, j = min(i, j), max(i, j)
        if op == "truncate":
            data = data[:j]
        elif op == "delete":
            data = data[:i] + data[j:]
        elif op == "insert":
            data = data[:i] + extra + data[i:]
        elif op == "duplicate":
            data = data[:j] + data[i:j] + data[j:]
        elif op == "bom":
            data = BOM + data
        elif op == "bad_utf8":
            data = data[:i] + b"\xff\xc3(" + data[i:]
        elif op == "swap":
            data = _swap_json(data, a, b)
        elif op == "deep":
            data = _deep(data, i)
        elif op == "empty":
            data = b"" if a % 2 else b"\n"
    return data


OPS = ["truncate", "delete", "insert", "duplicate", "bom", "bad_utf8", "swap", "swap", "swap", "deep", "empty"]
op_strategy = st.tuples(st.sampled_from(OPS), st.integers(0, 2**16), st.integers(0, 2**16), st.binary(max_size=6))
ops_strategy = st.lists(op_strategy, min_size=1, max_size=3)

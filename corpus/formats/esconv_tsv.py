"""ESConv as released for its baselines: `*WithStrategy_short.tsv` (Liu et al., 2021; DialoGPT's data layout).

One line per supporter turn: a window of the dialogue (at most five turns here) joined by ` EOS `, each turn
prefixed by `<float> <speaker> <index>`: the float is DialoGPT's target weight (1.0 on the turn to predict, the
last one), the speaker is 0 (seeker) or 1 (supporter), the index counts the turns of the whole dialogue from 0.
A supporter turn starts with its strategy in brackets, `[Reflection of feelings] ...`, in ESConv's own label set.

Two readings:
- `read_tsv_samples`: one line = one sample, exactly as released (the published protocol): the history is the
  window before the last turn, the reference is the last turn, the gold strategy its label. Sample ids are
  `<stem>-<dialogue>#<turn index>`; the dialogue number counts from 0 and grows when a line's turn index does not
  exceed the previous line's (a new dialogue starts there).
- `read_esconv_tsv` (`--from esconv-tsv`): the windows of each dialogue merged back into whole dialogues by turn
  index (the same index must carry the same text in every window; turns no window shows are absent, so a rebuilt
  dialogue ends at its last supporter turn).
Labels outside ESConv's label set are an error by default (`--unknown-labels keep` keeps and flags them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from extes.corpus.formats.base import (
    ReadOptions,
    ReadResult,
    RecordError,
    build_dialogue,
    labelled_turn,
    read_text,
    record_where,
)
from extes.corpus.labels import normalizer
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue, Meta

SEP = " EOS "
_PREFIX = re.compile(r"(\d+(?:\.\d+)?) ([01]) (\d+)(?: |$)")
_LABEL = re.compile(r"\[([^\]]*)\]\s*")


@dataclass(frozen=True)
class TsvTurn:
    """One turn of a window: DialoGPT weight, role, index in the dialogue, text (label removed), raw label."""

    weight: float
    role: str
    index: int
    text: str
    label: str | None


def parse_line(line: str) -> list[TsvTurn]:
    """The turns of one TSV line; raises RecordError naming the turn whose prefix is missing."""
    out = []
    for k, chunk in enumerate(line.rstrip("\r\n").split(SEP)):
        chunk = chunk.strip()
        m = _PREFIX.match(chunk)
        if not m:
            raise RecordError(
                f"turn {k} ({chunk[:40]!r}) lacks the '<float> <speaker 0/1> <turn index>' prefix; this is not an "
                "ESConv *WithStrategy_short.tsv line (re-export it, or --skip-invalid)"
            )
        text, label = chunk[m.end():].strip(), None
        role = "assistant" if m.group(2) == "1" else "user"
        lab = _LABEL.match(text) if role == "assistant" else None
        if lab:
            label, text = lab.group(1), text[lab.end():].strip()
        out.append(TsvTurn(float(m.group(1)), role, int(m.group(3)), text, label))
    if out[-1].role != "assistant":
        raise RecordError("the last turn is not a supporter turn (speaker 1); each line must end with the reply")
    return out


def _lines(path: Path, opts: ReadOptions, result: ReadResult):
    """(line number, parsed turns, dialogue number) for every readable line; bad lines raise or are skipped."""
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path}: the file is empty; expected ESConv *WithStrategy_short.tsv lines")
    dialogue, prev = -1, None
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            turns = parse_line(line)
        except RecordError as e:
            result.skip_or_raise(opts, f"{path}: line {n}", str(e))
            continue
        if prev is None or turns[-1].index <= prev:
            dialogue += 1
        prev = turns[-1].index
        yield n, turns, dialogue


def _label(turn: TsvTurn, opts: ReadOptions, where: str) -> str | None:
    norm = normalizer("esconv").normalize(turn.label)
    if not norm.known and (opts.unknown_labels or "error") == "error":
        raise InputError(
            f"{where}: unknown strategy {turn.label!r} (not one of ESConv's 8 labels in assets/esconv_strategies.yaml);"
            " fix the label, or pass --unknown-labels keep, or --skip-invalid"
        )
    return norm.label


def read_tsv_samples(path: str | Path, opts: ReadOptions | None = None, limit: int | None = None) -> list[dict]:
    """Every line as one evaluation sample (id, line, dialogue, history, reference, gold ESConv strategy)."""
    path, opts = Path(path), opts or ReadOptions()
    result, samples = ReadResult(), []
    for n, turns, dialogue in _lines(path, opts, result):
        last = turns[-1]
        samples.append({
            "id": f"{path.stem}-{dialogue:04d}#{last.index}", "line": n, "dialogue": f"{path.stem}-{dialogue:04d}",
            "history": [{"role": t.role, "text": t.text} for t in turns[:-1]], "reference": last.text,
            "gold_strategy": _label(last, opts, f"{path}: line {n}"), "turn_index": last.index,
        })
        if limit and len(samples) >= limit:
            break
    if not samples:
        raise InputError(f"{path}: no readable line; expected ESConv *WithStrategy_short.tsv lines")
    return samples


def read_esconv_tsv(path: Path, opts: ReadOptions) -> ReadResult:
    """Rebuild whole dialogues from the windows (the `esconv-tsv` corpus format)."""
    result = ReadResult()
    groups: dict[int, list[tuple[int, list[TsvTurn]]]] = {}
    for n, turns, dialogue in _lines(path, opts, result):
        groups.setdefault(dialogue, []).append((n, turns))
    for dialogue, lines in groups.items():
        result.add(opts, record_where(path, dialogue, lines[0][0]), _rebuild, path, dialogue, lines, opts)
    return result


def _rebuild(path: Path, dialogue: int, lines: list[tuple[int, list[TsvTurn]]], opts: ReadOptions) -> Dialogue:
    by_index: dict[int, TsvTurn] = {}
    for n, turns in lines:
        for t in turns:
            seen = by_index.setdefault(t.index, t)
            if (seen.role, seen.text, seen.label) != (t.role, t.text, t.label):
                raise RecordError(f"line {n}: turn {t.index} differs from the same turn in an earlier line of this "
                                  "dialogue; the file is not one ESConv export")
    flags: list[dict] = []
    built = []
    for i in sorted(by_index):
        t = by_index[i]
        built.append(labelled_turn(t.role, t.text, t.label, label_set="esconv", opts=opts, default_unknown="error",
                                   turn_index=i, flags=flags))
    missing = [i for i in range(max(by_index) + 1) if i not in by_index]
    meta = Meta(source="imported", label_set="extes" if opts.map_esconv else "esconv",
                origin=f"{path.name}:{lines[0][0]}", flags=flags,
                esconv={"lines": [n for n, _ in lines], "missing_turns": missing})
    return build_dialogue(id=f"{path.stem}-{dialogue:04d}", scene="unknown", turns=built, meta=meta)

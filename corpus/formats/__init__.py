"""Corpus formats: read any supported corpus into `Dialogue`s, write them out in any format.

| name    | reads                                      | writes |
|---------|--------------------------------------------|--------|
| extes   | ExTES release JSON (a list of records)     | yes    |
| esconv  | ESConv.json release format                 | yes    |
| esconv-tsv | ESConv *WithStrategy_short.tsv, rebuilt into dialogues | no |
| jsonl   | one Dialogue per line (lossless)           | yes    |
| hf      | Hugging Face `save_to_disk` folder         | yes    |
| seeds   | a folder of seed YAML files (assets/seeds) | no     |
| run     | a synthesis run folder (its accepted.jsonl) | no    |
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from extes.corpus.formats.base import ReadOptions, ReadResult
from extes.errors import InputError

READ_FORMATS = ("extes", "esconv", "esconv-tsv", "jsonl", "hf", "seeds", "run")
WRITE_FORMATS = ("extes", "esconv", "jsonl", "hf")


def detect_format(path: Path) -> str:
    """Guess a corpus format from the path (and, for .json, from the first record)."""
    if path.is_dir():
        if (path / "manifest.json").exists() and (path / "accepted.jsonl").exists():
            return "run"
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        if any(path.glob("*.yaml")):
            return "seeds"
        raise InputError(f"{path}: a folder that is neither a Hugging Face dataset nor a seed folder; pass --from")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".tsv":
        return "esconv-tsv"
    if suffix == ".json":
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
        return "esconv" if '"dialog"' in head else "extes"
    raise InputError(f"{path}: cannot tell the format from the name; pass --from ({', '.join(READ_FORMATS)})")


def read_corpus(path: str | Path, fmt: str | None = None, opts: ReadOptions | None = None) -> ReadResult:
    """Read a corpus in any supported format; label flags are counted into `result.flagged`."""
    path = Path(path)
    opts = opts or ReadOptions()
    fmt = fmt or detect_format(path)
    if fmt not in READ_FORMATS:
        raise InputError(f"--from {fmt!r} is not a corpus format; use one of {', '.join(READ_FORMATS)}")
    if fmt in ("hf", "seeds", "run") and not path.is_dir():
        raise InputError(f"{path}: --from {fmt} reads a folder, but this is a file; check --from (try jsonl or extes)")
    if fmt not in ("hf", "seeds", "run") and path.is_dir():
        raise InputError(f"{path}: is a folder; --from {fmt} reads a file (use --from hf or --from seeds for folders)")
    if fmt == "extes":
        from extes.corpus.formats.extes_json import read_extes_json as reader
    elif fmt == "esconv":
        from extes.corpus.formats.esconv import read_esconv as reader
    elif fmt == "esconv-tsv":
        from extes.corpus.formats.esconv_tsv import read_esconv_tsv as reader
    elif fmt == "jsonl":
        from extes.corpus.formats.jsonl import read_jsonl as reader
    elif fmt == "hf":
        from extes.corpus.formats.hf import read_hf as reader
    elif fmt == "run":
        reader = _read_run
    else:
        reader = _read_seeds
    result = reader(path, opts)
    result.flagged = Counter(
        f.get("label") for d in result.dialogues for f in d.meta.flags if f.get("problem") == "unknown label"
    )
    return result


def _read_run(path: Path, opts: ReadOptions) -> ReadResult:
    from extes.corpus.formats.jsonl import read_jsonl

    if not (path / "accepted.jsonl").exists():
        raise InputError(f"{path}: no accepted.jsonl in this run folder yet; nothing to read")
    return read_jsonl(path / "accepted.jsonl", opts)


def _read_seeds(path: Path, opts: ReadOptions) -> ReadResult:
    from extes.corpus.seeds import read_seed_folder

    return ReadResult(dialogues=read_seed_folder(path))


def write_corpus(dialogues: list, path: str | Path, fmt: str) -> None:
    """Write dialogues in `fmt` (atomically: nothing is left behind on failure)."""
    path = Path(path)
    if fmt not in WRITE_FORMATS:
        raise InputError(f"--to {fmt!r} is not a writable format; use one of {', '.join(WRITE_FORMATS)}")
    if fmt == "extes":
        from extes.corpus.formats.extes_json import write_extes_json as writer
    elif fmt == "esconv":
        from extes.corpus.formats.esconv import write_esconv as writer
    elif fmt == "jsonl":
        from extes.corpus.formats.jsonl import write_jsonl as writer
    else:
        from extes.corpus.formats.hf import write_hf as writer
    writer(dialogues, path)


def guess_output_format(path: Path) -> str:
    """The --to format implied by an output name (.jsonl, .json) or a folder (hf)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".json":
        return "extes"
    if suffix == "":
        return "hf"
    raise InputError(f"{path}: cannot tell the output format from the name; pass --to ({', '.join(WRITE_FORMATS)})")


__all__ = ["READ_FORMATS", "WRITE_FORMATS", "ReadOptions", "ReadResult", "read_corpus", "write_corpus"]

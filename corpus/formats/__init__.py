"""Corpus formats: read any supported corpus into `Dialogue`s, write them out in any format.

Every format is one row of `FORMATS` (name, what it reads, reader, writer, how a path is recognized);
`read_corpus`, `write_corpus`, the format guessing and the `--from`/`--to` choices all look it up there.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from extes.corpus.formats import esconv, extes_json
from extes.corpus.formats.base import ReadOptions, ReadResult, read_json_records, write_json_records
from extes.corpus.formats.esconv_tsv import read_esconv_tsv
from extes.corpus.formats.hf import read_hf, write_hf
from extes.corpus.formats.jsonl import read_jsonl, write_jsonl
from extes.corpus.seeds import read_seed_folder
from extes.errors import InputError
from extes.signatures.dialogue import Dialogue


@dataclass(frozen=True)
class CorpusFormat:
    """One corpus format: its reader, its writer (None: read only) and how a path in it is recognized.

    `suffix` is the file name ending that implies the format ("" for a folder format: a name without a suffix);
    `sniff(path)` tells formats apart that share a suffix (or, for folders, recognizes the folder's files).
    """

    name: str
    read: Callable[[Path, ReadOptions], ReadResult]
    write: Callable[[list[Dialogue], Path], None] | None = None
    suffix: str = ""
    sniff: Callable[[Path], bool] | None = None

    @property
    def folder(self) -> bool:
        return self.suffix == ""

    def recognizes(self, path: Path) -> bool:
        """Whether `path` looks like this format (a folder's own name, say `run.v2`, does not count)."""
        if path.is_dir() != self.folder or (not self.folder and path.suffix.lower() != self.suffix):
            return False
        return self.sniff is None or self.sniff(path)


def _json_is_esconv(path: Path) -> bool:
    # ESConv sessions hold their turns under "dialog", ExTES records under "content": the first record tells.
    with open(path, encoding="utf-8", errors="replace") as fh:
        return '"dialog"' in fh.read(4096)


def _is_run(path: Path) -> bool:
    return (path / "manifest.json").exists() and (path / "accepted.jsonl").exists()


def _is_hf(path: Path) -> bool:
    return not _is_run(path) and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists())


def _is_seeds(path: Path) -> bool:
    # a run folder may hold anything besides its own files: it is recognized first
    return not _is_run(path) and any(path.glob("*.yaml"))


def _read_run(path: Path, opts: ReadOptions) -> ReadResult:
    if not (path / "accepted.jsonl").exists():
        raise InputError(f"{path}: no accepted.jsonl in this run folder yet; nothing to read")
    return read_jsonl(path / "accepted.jsonl", opts)


def _read_seeds(path: Path, opts: ReadOptions) -> ReadResult:
    return ReadResult(dialogues=read_seed_folder(path))


FORMATS: tuple[CorpusFormat, ...] = (
    CorpusFormat("extes", partial(read_json_records, to_dialogue=extes_json.record_to_dialogue),
                 partial(write_json_records, to_record=extes_json.dialogue_to_record), ".json",
                 lambda p: not _json_is_esconv(p)),
    CorpusFormat("esconv", partial(read_json_records, to_dialogue=esconv.record_to_dialogue),
                 partial(write_json_records, to_record=esconv.dialogue_to_session), ".json", _json_is_esconv),
    CorpusFormat("esconv-tsv", read_esconv_tsv, suffix=".tsv"),
    CorpusFormat("jsonl", read_jsonl, write_jsonl, ".jsonl"),
    CorpusFormat("hf", read_hf, write_hf, sniff=_is_hf),
    CorpusFormat("seeds", _read_seeds, sniff=_is_seeds),
    CorpusFormat("run", _read_run, sniff=_is_run),
)
BY_NAME = {f.name: f for f in FORMATS}
READ_FORMATS = tuple(BY_NAME)
WRITE_FORMATS = tuple(f.name for f in FORMATS if f.write is not None)


def detect_format(path: Path) -> str:
    """Guess a corpus format from the path (and, for .json, from the first record)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    fmt = next((f.name for f in FORMATS if f.recognizes(path)), None)
    if fmt is not None:
        return fmt
    if path.is_dir():
        raise InputError(f"{path}: a folder that is neither a Hugging Face dataset nor a seed folder; pass --from")
    raise InputError(f"{path}: cannot tell the format from the name; pass --from ({', '.join(READ_FORMATS)})")


def read_corpus(path: str | Path, fmt: str | None = None, opts: ReadOptions | None = None) -> ReadResult:
    """Read a corpus in any supported format; label flags are counted into `result.flagged`."""
    path = Path(path)
    opts = opts or ReadOptions()
    fmt = fmt or detect_format(path)
    if fmt not in BY_NAME:
        raise InputError(f"--from {fmt!r} is not a corpus format; use one of {', '.join(READ_FORMATS)}")
    row = BY_NAME[fmt]
    if row.folder and not path.is_dir():
        raise InputError(f"{path}: --from {fmt} reads a folder, but this is a file; check --from (try jsonl or extes)")
    if not row.folder and path.is_dir():
        raise InputError(f"{path}: is a folder; --from {fmt} reads a file (use --from hf or --from seeds for folders)")
    result = row.read(path, opts)
    result.flagged = Counter(
        f.get("label") for d in result.dialogues for f in d.meta.flags if f.get("problem") == "unknown label"
    )
    return result


def write_corpus(dialogues: list, path: str | Path, fmt: str) -> None:
    """Write dialogues in `fmt` (atomically: nothing is left behind on failure)."""
    if fmt not in WRITE_FORMATS:
        raise InputError(f"--to {fmt!r} is not a writable format; use one of {', '.join(WRITE_FORMATS)}")
    BY_NAME[fmt].write(dialogues, Path(path))


def guess_output_format(path: Path) -> str:
    """The --to format implied by an output name (.jsonl, .json) or a name without a suffix (an hf folder)."""
    # the first writable row with that suffix: .json is written as extes, not esconv
    fmt = next((f.name for f in FORMATS if f.write is not None and f.suffix == path.suffix.lower()), None)
    if fmt is None:
        raise InputError(f"{path}: cannot tell the output format from the name; pass --to ({', '.join(WRITE_FORMATS)})")
    return fmt


__all__ = ["FORMATS", "READ_FORMATS", "WRITE_FORMATS", "CorpusFormat", "ReadOptions", "ReadResult", "read_corpus",
           "write_corpus"]

"""Fuzzing every reader, and `stats`/`convert`/`split`, with mutated real inputs: a crash is any exception other
than ExtesError in-process, or an exit code other than 0/2 or a traceback from the CLI.

The budget is fixed (about 800 inputs) and the draws are derandomized, so a run is reproducible. Derandomized draws
still follow the test's source and the seed files' bytes, so an edit elsewhere reshuffles the offsets tried: the
mutations that once found a crash are explicit examples, tried on every seed in every run. Every crash of a run
is collected (not only the first) and the test lists them, one line each, with the operations that made it.
"""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner
from fuzzing import apply, ops_strategy, seed_files
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from extes.errors import ExtesError

SEEDS = seed_files()
COMMON = {"deadline": None, "database": None, "derandomize": True, "print_blob": False,
          "suppress_health_check": list(HealthCheck)}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from extes.cli import main

    root = tmp_path_factory.mktemp("fuzz")
    run = root / "run"
    result = CliRunner().invoke(main, ["synthesize", "-m", "scripted", "--target", "2", "--out", str(run)])
    assert result.exit_code == 0, result.output
    return root


def _known_crashers(test):
    """Every seed with deep nesting at its start, where each parser (JSON and YAML alike) recurses; a random offset
    may land in a string or after a syntax error instead (that made a YAML RecursionError show only now and then)."""
    for name in sorted(SEEDS):
        test = example(name=name, ops=[("deep", 0, 0, b"")])(test)
    return test


def _readers(kind: str, path: Path, root: Path):
    """The in-process readers that take this kind of file: (name, thunk)."""
    from extes.commands.metrics_cmd import read_lines
    from extes.corpus.formats import ReadOptions, read_corpus
    from extes.corpus.rating import read_sheet
    from extes.corpus.review import import_decisions
    from extes.programs.runtime import read_history
    from extes.programs.safety import load_labelled

    keep = ReadOptions(unknown_labels="keep")
    skip = ReadOptions(skip_invalid=True, unknown_labels="keep")
    if kind in ("extes_json", "esconv_json"):
        fmt = kind.split("_")[0]
        return [("read_corpus(guess)", lambda: read_corpus(path)),
                (f"read_corpus({fmt})", lambda: read_corpus(path, fmt)),
                (f"read_corpus({fmt}, skip)", lambda: read_corpus(path, fmt, skip))]
    if kind == "jsonl":
        return [("read_corpus(jsonl)", lambda: read_corpus(path, "jsonl", keep)),
                ("read_corpus(jsonl, skip)", lambda: read_corpus(path, "jsonl", skip)),
                ("read_history(jsonl)", lambda: read_history(path))]
    if kind == "history_json":
        return [("read_history(json)", lambda: read_history(path))]
    if kind == "seed_yaml":
        return [("read_corpus(seeds)", lambda: read_corpus(path.parent, "seeds"))]
    if kind == "safety_jsonl":
        return [("load_labelled", lambda: load_labelled(path))]
    if kind == "decisions_jsonl":
        return [("import_decisions", lambda: import_decisions(root / "run", path))]
    if kind == "sheet_csv":
        return [("read_sheet", lambda: read_sheet(path))]
    return [("metrics.read_lines", lambda: read_lines(path))]


def _target(root: Path, name: str, data: bytes) -> Path:
    kind = SEEDS[name][0]
    folder = root / "in" / kind
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    path = folder / ("x.yaml" if kind == "seed_yaml" else name)
    path.write_bytes(data)
    return path


def _crash_line(where: str, ops, e: BaseException) -> str:
    """`where: Type at file:line` (the crash's signature) followed by the operations and the message."""
    frame = traceback.extract_tb(e.__traceback__)[-1]
    first = (str(e).splitlines() or [""])[0][:100]
    return f"{where}: {type(e).__name__} at {Path(frame.filename).name}:{frame.lineno} -- {ops!r:.160}: {first}"


def _report(crashes: list[str]) -> str:
    """Distinct crashes (by signature), each with its first example."""
    distinct: dict[str, str] = {}
    for c in crashes:
        distinct.setdefault(c.split(" -- ")[0], c)
    return f"{len(distinct)} distinct crashes ({len(crashes)} inputs):\n" + "\n".join(distinct.values())


def test_readers_survive_mutated_inputs(workdir):
    crashes: list[str] = []

    @settings(max_examples=600, **COMMON)
    @_known_crashers
    @given(name=st.sampled_from(sorted(SEEDS)), ops=ops_strategy)
    def one(name, ops):
        kind, data = SEEDS[name]
        path = _target(workdir, name, apply(data, ops))
        for reader, thunk in _readers(kind, path, workdir):
            try:
                thunk()
            except ExtesError as e:
                if "\n" in str(e):
                    crashes.append(f"{name} → {reader}: a message of several lines -- {ops!r:.160}: {str(e)[:200]!r}")
            except Exception as e:  # noqa: BLE001 - any other exception is the crash being looked for
                crashes.append(_crash_line(f"{name} → {reader}", ops, e))

    one()
    assert not crashes, _report(crashes)


CLI_KINDS = [n for n, (kind, _) in SEEDS.items() if kind in ("extes_json", "esconv_json", "jsonl")]


def test_stats_convert_split_survive_mutated_inputs(workdir):
    from extes.cli import main

    crashes: list[str] = []
    out = workdir / "cli-out"

    @settings(max_examples=200, **COMMON)
    @given(name=st.sampled_from(sorted(CLI_KINDS)), ops=ops_strategy, command=st.sampled_from(["stats", "convert",
                                                                                               "split"]),
           skip=st.booleans())
    def one(name, ops, command, skip):
        path = _target(workdir, name, apply(SEEDS[name][1], ops))
        if out.exists():
            shutil.rmtree(out)
        args = {"stats": ["stats", str(path), "--json"], "convert": ["data", "convert", str(path), str(out) + ".jsonl"],
                "split": ["data", "split", str(path), str(out)]}[command] + (["--skip-invalid"] if skip else [])
        result = CliRunner().invoke(main, args)
        text = result.output
        exc = result.exception
        if result.exit_code not in (0, 2) or "Traceback" in text or (exc and not isinstance(exc, SystemExit)):
            why = _crash_line(f"{name} → {command}", ops, exc) if exc and not isinstance(exc, SystemExit) else text
            crashes.append(f"exit {result.exit_code}: {why[:300]}" if " -- " in why else
                           f"{name} → {command}: exit {result.exit_code} -- {ops!r:.160}: {why[:200]!r}")
        elif result.exit_code == 2 and len(result.stderr.strip().splitlines()) != 1:
            crashes.append(f"{name} → {command}: exit 2, not one line -- {ops!r:.160}: {result.stderr[:200]!r}")
        if command == "convert" and Path(str(out) + ".jsonl").exists():
            if result.exit_code != 0:
                crashes.append(f"{name} → convert: output left on failure -- {ops!r:.160}")
            Path(str(out) + ".jsonl").unlink()

    one()
    assert not crashes, _report(crashes)


def test_the_seeds_themselves_read_cleanly(workdir):
    """The fuzzer's seeds are valid inputs (so mutations start from files that pass)."""
    for name, (kind, data) in SEEDS.items():
        path = _target(workdir, name, data)
        for reader, thunk in _readers(kind, path, workdir):
            if reader == "import_decisions":
                continue  # its tasks are not in the run's queue, on purpose: the run stays unchanged
            try:
                thunk()
            except ExtesError as e:
                pytest.fail(f"{name} → {reader}: {e}")
    assert json.loads(SEEDS["extes.json"][1])

"""Every `--help` Examples block runs as written (issues 12 and 13).

The click tree of `extes.cli.main` is walked, each command's help gives the lines of its "Examples:" block (a line
ending in a backslash continues on the next), and every example that runs offline runs here as its own process,
in a fresh folder laid out like the checkout: `assets/` (a copy), `../shared` (the shared data) and the inputs an
example names, made beforehand by earlier examples' commands (`splits/`, `runs/r1`, `cards.jsonl`, ...). Every
relative output an example writes lands in that folder. What cannot run here (an API key, a GPU, a server that keeps
running, the teacher wheels, a terminal or an editor, long model work) is in SKIP with its reason; SKIP is checked
against the help texts, so a reworded or removed example cannot leave a stale entry behind.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from extes.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# A fresh interpreter per example (3-6 s of imports each) instead of forks of one that imported the CLI once.
FRESH = os.environ.get("EXTES_EXAMPLES_FRESH") == "1"
TIMEOUT_S = 240

SKIP = {
    # API keys and servers out of reach
    "extes chat -m openai/gpt-4o-mini --save session.jsonl": "needs OPENAI_API_KEY and the network",
    "extes compare-optimizers supporter -m openai/gpt-4o-mini --optimizers labeled,knn --max-cost 2 --out runs/c2":
        "needs OPENAI_API_KEY and the network",
    "extes distill classifier --teacher openai/gpt-4o-mini --out runs/distilled-classifier":
        "needs OPENAI_API_KEY and the network",
    "extes distill classifier --teacher openai/gpt-4o-mini --optimizer better-together --strategy \"p -> w\" "
    "--out runs/bt": "needs OPENAI_API_KEY and the network",
    "extes rate judge sheet.csv -m openai/gpt-4o-mini --out judge.csv": "needs OPENAI_API_KEY and the network",
    "extes reply \"My dog died\" -m openai/gpt-4o-mini": "needs OPENAI_API_KEY and the network",
    "extes synthesize -m openai/gpt-4o-mini --target 1000 --workers 16 --max-cost 5 --out runs/r1":
        "needs OPENAI_API_KEY and the network (runs/r1 is made here by a scripted run instead)",
    "PERSPECTIVE_API_KEY=... extes toxicity ../shared/data/esconv/FailedESConv.json --backend perspective":
        "needs a Perspective API key and the network",
    "extes reply \"I failed my exam\" -m openai/smollm2-135m-instruct --api-base http://127.0.0.1:8000/v1":
        "needs the `extes serve` of the example before it running (tests/commands/test_serve_cmd.py)",
    "extes toxicity runs/r1 --backend detoxify --checkpoint toxic_original.ckpt":
        "needs the detoxify package and its checkpoint file, neither installed here",
    # servers that keep running, terminals, editors
    "extes serve": "a server that runs until interrupted (tests/commands/test_serve_cmd.py)",
    "extes serve -m scripted --port 8123": "a server that runs until interrupted (tests/commands/test_serve_cmd.py)",
    "extes serve --engine torch": "a server that runs until interrupted (tests/commands/test_serve_cmd.py)",
    "extes serve --adapter kind=runs/lora-kind --adapter brief=runs/lora-brief --api-key s3cret":
        "a server that runs until interrupted, with two tuned adapters",
    "extes human-eval serve --supporters a=scripted,b=scripted --out studies/pilot --min-turns 2 --port 8765":
        "a web server that runs until interrupted (tests/programs/human_eval/test_app.py)",
    "extes human-eval serve --supporters local/smollm2-135m-instruct,openai/gpt-4o-mini --out studies/s1":
        "a web server that runs until interrupted, and needs OPENAI_API_KEY",
    "extes chat": "an interactive terminal session (tests/commands/test_chat_pty.py)",
    "extes chat --adapter runs/lora --locale us": "an interactive terminal session, with a tuned adapter",
    "extes review runs/r1 --reviewer jk": "interactive: waits for keys and opens $EDITOR (the queue logic is in "
                                          "tests/corpus/test_review_and_export.py)",
    # long model work on the embedded model (or a model that is not here)
    "extes reply \"I failed my exam again\" --strategy \"Suggest Options\"":
        "loads and runs the embedded model (tests/programs/test_supporter.py)",
    "extes reply \"I failed my exam again and I feel worthless\"": "loads and runs the embedded model",
    "extes reply \"I failed my exam again\" --strategy \"Suggest Options\" --json": "loads and runs the embedded model",
    "extes reply \"Thanks, that helps\" --history chat.jsonl --adapter runs/lora":
        "needs a LoRA adapter from `extes tune lora` (minutes of training)",
    "extes reply \"I failed again\" --adapter runs/d/adapter": "needs the adapter of the `extes distill` example",
    "extes reply \"I failed my exam\" --adapter runs/lora": "needs a LoRA adapter from `extes tune lora`",
    "extes reply \"I failed my exam\" -m local/runs/merged": "needs a merged model from `extes tune merge`",
    "extes distill supporter --teacher scripted --limit 8 --max-steps 5 --out runs/d":
        "LoRA-trains the embedded model (tests/tuning/test_distill.py)",
    "extes distill supporter --teacher scripted --program s.json --limit 8 --max-steps 5 --out runs/d2":
        "LoRA-trains the embedded model (tests/tuning/test_recipe.py runs distill --program)",
    "extes recipe distill --teacher scripted --test ../shared/data/esconv/devWithStrategy_short.tsv "
    "--dialogues 4 --bench-limit 6 --max-steps 2 --cards 2 --turns 2 --out runs/recipe-test":
        "eleven stages on the embedded model, minutes (tests/tuning/test_recipe.py runs it on a tiny student)",
    "extes recipe distill --teacher local/qwen2.5-coder-1.5b-instruct "
    "--test ../shared/data/esconv/devWithStrategy_short.tsv --dialogues 150 --out runs/recipe":
        "the teacher wheels and hours of CPU (benchmarks/README.md, Teacher)",
    "extes recipe distill --teacher local/qwen2.5-coder-1.5b-instruct --mode whole --json-grammar "
    "--test ../shared/data/esconv/devWithStrategy_short.tsv --dialogues 150 --out runs/recipe-whole":
        "the teacher wheels, the llama.cpp extra and hours of CPU (benchmarks/README.md, Teacher)",
    "extes recipe report runs/recipe": "needs a recipe run (tests/tuning/test_recipe.py writes reports mid-run)",
    "extes recipe report runs/recipe --json": "needs a recipe run (tests/tuning/test_recipe.py writes reports mid-run)",
    "extes tune lora --data splits/train.jsonl --variant strategies --max-steps 30 --out runs/lora --json":
        "30 LoRA steps on the embedded model (tests/tuning/test_tune.py)",
    "extes tune adapter --data splits/train.jsonl --adapter-len 10 --adapter-layers 8 --out runs/adapter":
        "trains the embedded model (tests/tuning/test_tune.py)",
    "extes tune clm --base path/to/dialogpt-folder --data splits/train.jsonl --variant no-strategies --out runs/clm":
        "needs a DialoGPT folder of the user's own",
    "extes tune merge runs/lora --out runs/merged": "needs a LoRA adapter from `extes tune lora`",
    "extes synthesize -m local/smollm2-135m-instruct --mode turns --target 3 --out runs/small":
        "self-chat on the embedded model (minutes)",
    "extes evaluate -m local/smollm2-135m-instruct --test splits/test.jsonl --limit 20 --out runs/eval-base":
        "20 replies of the embedded model (tests/tuning/test_evaluation.py)",
    "extes evaluate --adapter runs/lora --test splits/test.jsonl --strategy predicted --out runs/eval-lora":
        "needs a LoRA adapter from `extes tune lora`",
    "extes evaluate matrix --models scripted,local/smollm2-135m-instruct --tests "
    "assets/seeds,../shared/data/esconv/devWithStrategy_short.tsv --limit 5 --out runs/matrix":
        "replies of the embedded model on two test sets (tests/tuning/test_matrix.py)",
    "extes benchmark esconv --test ../shared/data/esconv/devWithStrategy_short.tsv -m local/smollm2-135m-instruct "
    "--limit 200 --out runs/bench-base --json": "200 replies of the embedded model (benchmarks/)",
    "extes compile classifier --optimizer bootstrap --trainset splits/train.jsonl --valset splits/valid.jsonl "
    "--out clf.json":
        "bootstraps demos with the embedded model (tests/tuning/test_compile.py)",
    "extes compare-optimizers classifier --optimizers labeled,bootstrap,random-search --seeds 2 --out runs/cmp":
        "six compilations on the embedded model (tests/tuning/test_compare.py)",
    "extes arena run --supporters local/smollm2-135m-instruct,lora=local/smollm2-135m-instruct+adapter:runs/lora "
    "--cards cards.jsonl --turns 4 --seeker local/smollm2-135m-instruct --judge local/smollm2-135m-instruct "
    "--out runs/arena-small": "needs a LoRA adapter, and plays every card on the embedded model",
    "extes safety eval assets/safety/labelled.jsonl --json":
        "runs the multilingual-e5 classifier on 177 messages (~80 s here; tests/programs/test_safety_eval.py)",
    "extes safety eval assets/safety/development_fresh1.jsonl --sweep":
        "runs the multilingual-e5 classifier on every message (tests/programs/test_safety_eval.py)",
    "extes safety train": "rewrites the shipped classifier in assets/safety (tests/programs/test_safety_classifier.py)",
    "extes safety train assets/safety/labelled.jsonl assets/safety/development.jsonl --out my_classifier.json":
        "embeds every message with multilingual-e5 (tests/programs/test_safety_classifier.py)",
}

# Examples that run here but may run a learned model (the crisis classifier's multilingual-e5, bundled).
MODEL = {
    "extes safety check \"I've been giving my things away\" --json",
    "extes safety check \"this exam is killing me\" --json",
    "extes safety check \"I've been giving my things away\" --locale us",
}

# The inputs that examples name, made in order by the commands of earlier examples (or written as a user would).
PREPARE = [
    ["data", "split", "assets/seeds", "splits/"],
    ["data", "convert", "assets/seeds", "seeds.json", "--to", "extes"],
    ["arena", "cards", "--from", "seeds", "--n", "6", "--out", "cards.jsonl"],
    # the learned crisis classifier would take 0.4 s a message here; the example itself runs with it
    ["arena", "run", "--supporters", "a=scripted,b=scripted", "--cards", "cards.jsonl", "--turns", "4",
     "--rules-only-safety", "--bootstrap", "20", "--out", "runs/arena"],
    # runs/r1 stands for the openai example's run: a scripted one, large enough for `rate export --n 150`
    ["synthesize", "-m", "scripted", "--target", "80", "--workers", "4", "--out", "runs/r1"],
    ["rate", "export", "runs/r1", "assets/seeds", "--n", "150", "--out", "sheet.csv"],
    ["review", "runs/r1", "--export", "queue.jsonl"],
    # runs/eval-* and runs/bench-* stand for the model runs of the examples that make them (skipped above)
    ["evaluate", "-m", "scripted", "--test", "splits/test.jsonl", "--limit", "6", "--out", "runs/eval-base"],
    ["evaluate", "-m", "scripted", "--test", "splits/test.jsonl", "--strategy", "none", "--limit", "6",
     "--out", "runs/eval-lora"],
    ["benchmark", "esconv", "--test", "../shared/data/esconv/devWithStrategy_short.tsv", "-m", "scripted",
     "--limit", "6", "--reps", "20", "--out", "runs/bench-base"],
    ["benchmark", "esconv", "--test", "../shared/data/esconv/devWithStrategy_short.tsv", "-m", "scripted",
     "--predictor", "prefix", "--limit", "6", "--reps", "20", "--out", "runs/bench-lora"],
]


def walk(command: click.Command, path: tuple[str, ...] = ("extes",)):
    """Every command of the tree, groups included, with its path."""
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], (*path, name))


def examples_of(help_text: str) -> list[str]:
    """The lines of the "Examples:" block (indented under it, up to a blank line), continuations joined."""
    lines = help_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Examples:"), None)
    if start is None:
        return []
    indent = len(lines[start]) - len(lines[start].lstrip())
    out, pending = [], ""
    for line in lines[start + 1:]:
        if not line.strip() or len(line) - len(line.lstrip()) <= indent:
            break
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        out.append(" ".join(shlex.split(pending, posix=False)))  # one space between words, quotes kept
        pending = ""
    assert not pending, f"an example ends in a backslash with nothing after it: {pending!r}"
    return out


def all_examples() -> dict[str, str]:
    """Each distinct example once → the first command whose help shows it."""
    found: dict[str, str] = {}
    for path, command in walk(main):
        for example in examples_of(command.help or ""):
            found.setdefault(example, path)
    return found


EXAMPLES = all_examples()


def _params():
    counts: dict[str, int] = {}
    for example, path in EXAMPLES.items():
        if example in SKIP:
            continue
        counts[path] = counts.get(path, 0) + 1
        marks = [pytest.mark.model] if example in MODEL else []
        yield pytest.param(example, id=f"{path.removeprefix('extes ') or 'extes'} #{counts[path]}", marks=marks)


class Runner:
    """Runs `extes ARGV` as a separate process in a folder; returns (exit code, stdout, stderr)."""

    def __init__(self, logs: Path):
        self.logs, self.n, self.proc = logs, 0, None
        logs.mkdir(parents=True, exist_ok=True)
        if not FRESH:
            self.proc = subprocess.Popen([sys.executable, "-m", "extes.launcher"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=self._env({}))

    @staticmethod
    def _env(extra: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        env.pop("OPENAI_API_KEY", None)  # an example that silently needs a key must fail here, not pass on a dev box
        return {**env, **extra}

    def __call__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        self.n += 1
        out, err = self.logs / f"{self.n}.out", self.logs / f"{self.n}.err"
        if FRESH:
            with open(out, "w") as fo, open(err, "w") as fe:
                rc = subprocess.run([sys.executable, "-c", "from extes.cli import main; main()", *argv], cwd=cwd,
                                    env=self._env(env or {}), stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                    timeout=TIMEOUT_S).returncode
        else:
            request = {"argv": argv, "cwd": str(cwd), "env": env or {}, "stdout": str(out), "stderr": str(err),
                       "timeout": TIMEOUT_S}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            rc = json.loads(self.proc.stdout.readline())["rc"]
        return rc, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")

    def close(self) -> None:
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def runner(tmp_path_factory):
    r = Runner(tmp_path_factory.mktemp("example-logs"))
    yield r
    r.close()


def _make_study(folder: Path, choices: tuple[str, ...]) -> None:
    """A human-eval study with one participant per choice, as `extes human-eval serve` records them."""
    from extes.programs.human_eval.store import StudyStore

    store = StudyStore(folder)
    store.save_settings({"supporters": ["a", "b"], "specs": ["scripted", "scripted"], "min_turns": 1})
    for choice in choices:
        code = store.new_participant(["a", "b"])
        for slot, name in enumerate(store.participant(code)["order"]):
            text = "Okay." if name == "a" else "That sounds really hard; I am here. What happened next?"
            store.add_exchange(code, slot, name, "My friend stopped talking to me.",
                               {"reply": text, "crisis": False, "strategy": None})
        for criterion in ("fluency", "identification", "comforting", "suggestion", "overall"):
            store.add_answer(code, "a", "b", criterion, choice)


def _fill_sheets(sheet: Path, outs: list[Path]) -> None:
    """Annotators' copies of the exported sheet, every criterion scored 0-3."""
    rows = list(csv.reader(sheet.open(encoding="utf-8")))
    for k, out in enumerate(outs):
        with out.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(rows[0])
            for i, row in enumerate(rows[1:]):
                w.writerow(row[:2] + [str((i + j + (k == 2)) % 4) for j in range(len(row) - 2)])


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, runner) -> Path:
    """The prepared folder each example starts from (a copy of it): ws/ with assets and inputs, ../shared beside."""
    if not (SHARED / "data" / "esconv" / "FailedESConv.json").exists():
        pytest.skip(f"the shared ESConv files are not at {SHARED} (shared/ lies beside the checkout)")
    base = tmp_path_factory.mktemp("examples")
    (base / "shared").symlink_to(SHARED, target_is_directory=True)
    ws = base / "ws"
    shutil.copytree(ROOT / "assets", ws / "assets", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ws / "assets", ws / "my-assets")
    for argv in PREPARE:
        code, out, err = runner(argv, ws)
        assert code == 0, f"preparing with `extes {shlex.join(argv)}` failed ({code}): {err[-2000:]}"
    (ws / "hyp.txt").write_text("i am sorry you failed the exam\nthat sounds really hard for you\n", encoding="utf-8")
    (ws / "ref.txt").write_text("i am so sorry about the exam\nthat must be really hard\n", encoding="utf-8")
    _fill_sheets(ws / "sheet.csv", [ws / f"ann{k}.csv" for k in (1, 2, 3)])
    shutil.copy(ws / "ann1.csv", ws / "judge.csv")  # what `extes rate judge` writes (its example needs an API key)
    queue = [json.loads(line) for line in (ws / "queue.jsonl").read_text(encoding="utf-8").splitlines()]
    (ws / "decisions.jsonl").write_text("".join(json.dumps({"task": d["meta"]["task"], "decision": "accept"}) + "\n"
                                                for d in queue), encoding="utf-8")
    _make_study(ws / "studies" / "pilot", ("second", "second", "tie"))
    _make_study(ws / "studies" / "s1", ("second", "first"))
    return ws


def _split(example: str) -> tuple[dict[str, str], list[str]]:
    """`VAR=value ... extes ARGS` → ({VAR: value}, ARGS)."""
    words = shlex.split(example)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words and words[0] == "extes", f"an example must start with `extes`: {example!r}"
    return env, words[1:]


def _outputs(argv: list[str]) -> list[str]:
    """The paths an example names after --out / --export (written by a command that succeeds)."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "--export")]


@pytest.mark.parametrize("example", list(_params()))
def test_example_runs_as_written(example, workspace, runner, tmp_path):
    env, argv = _split(example)
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    for path in _outputs(argv):  # a prepared run of the same name would be resumed, not made
        target = ws / path
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    code, out, err = runner(argv, ws, env)
    assert code == 0, f"`{example}` exited {code}:\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    for path in _outputs(argv):
        assert (ws / path).exists(), f"`{example}` exited 0 but wrote no {path}"


def test_every_skipped_example_is_still_in_a_help_text():
    stale = sorted((set(SKIP) | MODEL) - set(EXAMPLES))
    assert not stale, f"SKIP or MODEL names examples no help text shows any more (update or drop them): {stale}"
    assert not MODEL & set(SKIP), "an example is either skipped or run (marked model), not both"


def test_continued_lines_are_joined():
    text = "Do it.\n\n\b\nExamples:\n  extes a --x 1 \\\n    --y 2\n  extes b \"two words\"\n\nMore text.\n"
    assert examples_of(text) == ["extes a --x 1 --y 2", "extes b \"two words\""]

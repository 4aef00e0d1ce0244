"""`python -m extes.launcher`: run `extes` commands as separate processes without paying the CLI's import (torch,
transformers, DSPy: 3-6 s on 2 cores) each time. `extes recipe` runs its stages through it; the help-examples test
runs every example through it.

Started as its own interpreter, it imports `extes.cli` once, then reads one JSON request per line on stdin
({"argv", "cwd", "env", "stdout", "stderr", "append", "timeout"}) and answers {"rc": N} on stdout. Each command
runs in a forked child with its own working directory, environment and output files, exactly as `extes ARGV...`
would after the import; nothing of it reaches the next. A child past its timeout is killed (rc 124). On Linux the
launcher and each child die with their parent (PR_SET_PDEATHSIG), so killing the caller, even with SIGKILL, never
leaves a command writing on. The launcher never runs a model itself: forking a process that has run torch's
OpenMP kernels is what is unsafe, forking one that only imported torch is not.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from extes.base import die_with_parent


def _child(req: dict) -> None:
    """In the forked child: become the command (cwd, env, stdio, argv), run it, and exit with its code."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C is the command's to handle
        die_with_parent()
        os.chdir(req["cwd"])
        os.environ.update(req.get("env") or {})
        stdin = os.open(os.devnull, os.O_RDONLY)
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | (os.O_APPEND if req.get("append") else os.O_TRUNC),
                      0o644)
        for src, dst in ((stdin, 0), (out, 1), (err, 2)):
            os.dup2(src, dst)
        sys.stdin = open(os.devnull, encoding="utf-8")  # the request stream's buffer is not the command's input
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # the launcher's own buffers stay behind
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
        from extes.cli import main  # lazy: cli imports dspy

        sys.argv = ["extes", *req["argv"]]
        main(args=req["argv"], prog_name="extes")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child reports any escape as a traceback and exit 1, as Python would
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream must not change the exit code
                pass
        os._exit(code)


def _wait(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return 124
        time.sleep(0.02)


def _preload() -> None:
    """Import the heavy libraries the commands import lazily (torch, transformers' LLaMA, DSPy), so that every
    child starts with them; none of them runs anything at import, so forking afterwards is safe."""
    import importlib
    import threading

    for name in ("torch", "transformers", "transformers.models.llama.modeling_llama", "peft", "dspy"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing or broken optional library is the command's to report
            pass
    extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if extra:  # a library started a thread: the children would inherit its locks half-held, so say it
        print(f"extes.launcher: threads running before fork: {extra}", file=sys.stderr)


def serve() -> None:
    """The request loop: one forked child per line of stdin, one answer line per child."""
    import extes.cli  # noqa: F401 - imported once here, inherited by every child

    _preload()

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the running command; the loop just goes on
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)
        rc = _wait(pid, float(req.get("timeout", 300)))
        sys.stdout.write(json.dumps({"rc": rc}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()

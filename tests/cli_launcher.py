"""Run `extes` commands as separate processes without paying the CLI's import (torch, ~3 s on 2 cores) each time.

Started as its own interpreter, it imports `extes.cli` once, then reads one JSON request per line on stdin
({"argv", "cwd", "env", "stdout", "stderr", "timeout"}) and answers {"rc": N} on stdout. Each command runs in a
forked child with its own working directory, environment and output files, exactly as
`python -c "from extes.cli import main; main()" ARGV...` would after the import; nothing of it reaches the next.
A child past its timeout is killed (rc 124).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def _child(req: dict) -> None:
    """In the forked child: become the command (cwd, env, stdio, argv), run it, and exit with its code."""
    code = 1
    try:
        os.chdir(req["cwd"])
        os.environ.update(req.get("env") or {})
        stdin = os.open(os.devnull, os.O_RDONLY)
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for src, dst in ((stdin, 0), (out, 1), (err, 2)):
            os.dup2(src, dst)
        sys.stdin = open(os.devnull, encoding="utf-8")  # the request stream's buffer is not the command's input
        from extes.cli import main

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


def serve() -> None:
    """The request loop: one forked child per line of stdin, one answer line per child."""
    import extes.cli  # noqa: F401 - imported once here, inherited by every child

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

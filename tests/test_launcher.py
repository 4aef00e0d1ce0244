"""`python -m extes.launcher`: one import of the CLI, a forked child per command, and nothing left running when the
caller dies (even by SIGKILL)."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

PARENT = r"""
import json, subprocess, sys, time
from extes.base import die_with_parent
launcher = subprocess.Popen([sys.executable, "-m", "extes.launcher"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, preexec_fn=die_with_parent)
req = {"argv": ["synthesize", "-m", "scripted", "--target", "100000", "--out", sys.argv[1], "-q"], "cwd": ".",
       "stdout": sys.argv[1] + ".out", "stderr": sys.argv[1] + ".err", "timeout": 600}
launcher.stdin.write(json.dumps(req) + "\n"); launcher.stdin.flush()
print(launcher.pid, flush=True)
time.sleep(600)
"""


def test_runs_commands_and_reports_their_exit_codes(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "extes.launcher"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    answers = []
    for argv in (["--version"], ["data", "split", "no/such/corpus", str(tmp_path / "s")]):
        proc.stdin.write(json.dumps({"argv": argv, "cwd": str(tmp_path), "stdout": str(tmp_path / "o"),
                                     "stderr": str(tmp_path / "e")}) + "\n")
        proc.stdin.flush()
        answers.append((json.loads(proc.stdout.readline())["rc"], (tmp_path / "o").read_text(),
                        (tmp_path / "e").read_text()))
    proc.stdin.close()
    assert proc.wait(30) == 0
    assert answers[0][0] == 0 and "extes" in answers[0][1]
    assert answers[1][0] == 2 and "no/such/corpus" in answers[1][2] and len(answers[1][2].strip().splitlines()) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_caller_leaves_no_command_running(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    launcher = psutil.Process(int(parent.stdout.readline()))
    deadline = time.time() + 60
    while not launcher.children() and time.time() < deadline:  # the command's forked child is running
        time.sleep(0.1)
    child = launcher.children()[0]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    gone, alive = psutil.wait_procs([launcher, child], timeout=20)
    assert not alive, f"still running after the caller was killed: {alive}"

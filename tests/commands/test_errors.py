"""The top-level handler's tables: each OSError kind and each DSPy LM error gets its own one-line fix."""

import errno

import click
import pytest
from dspy.utils import exceptions

from extes.commands.errors import describe_failure


@pytest.fixture
def ctx():
    return click.Context(click.Command("x"))


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "out.json"), "out.json: permission denied"),
        (OSError(errno.EPERM, "Operation not permitted", "out.json"), "out.json: permission denied"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "runs"), "runs: is a folder; give a file path"),
        (FileExistsError(errno.EEXIST, "File exists", "a", None, "b"), "a -> b: exists and is not a folder"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "a/b"), "a/b: a part of this path is a file"),
        (FileNotFoundError(errno.ENOENT, "No such file", "x.json"), "x.json: no such file or folder"),
        (OSError(errno.ENOSPC, "No space left on device"), "a file: no space left on the device"),
        (OSError(errno.EROFS, "Read-only file system", "/ro"), "/ro: the file system is read-only"),
        (OSError(errno.EIO, "Input/output error", "disk"), "disk: Input/output error; check the path"),
    ],
)
def test_os_errors_name_the_path_and_the_fix(ctx, error, fix):
    line, code = describe_failure(error, ctx)
    assert line.startswith(f"Error: {fix}") and code == 2 and "\n" not in line


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("LMTransportError", "cannot reach the LM provider (boom); start the server"),
        ("LMAuthError", "the LM provider refused the key (boom)"),
        ("LMRateLimitError", "the LM provider is rate-limiting (boom)"),
        ("LMTimeoutError", "the LM provider timed out (boom); rerun, or raise --timeout"),
        ("LMError", "the LM call to the LM provider failed (boom)"),
    ],
)
def test_lm_errors_get_their_own_fix(ctx, name, fix):
    line, code = describe_failure(getattr(exceptions, name)("boom"), ctx)
    assert line.startswith("Error: ") and fix in line and code == 2


def test_lm_error_names_the_api_base_redacted(ctx):
    ctx.meta["extes.argv"] = ["reply", "--api-base", "http://user:secret@127.0.0.1:9/v1"]
    line, _ = describe_failure(exceptions.LMTransportError("refused"), ctx)
    assert "the LM server at" in line and "secret" not in line

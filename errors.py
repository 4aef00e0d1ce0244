"""The one small error hierarchy of extes: every message says what was wrong, what was received, and the fix."""


class ExtesError(Exception):
    """Base of every error extes raises on purpose; the CLI prints it on one line and exits 2."""

    exit_code = 2


class InputError(ExtesError):
    """A file, record or option given by the user is not what it must be."""


class AssetError(ExtesError):
    """A shipped or user-supplied asset (taxonomy, scenarios, prompts, seeds) fails validation."""


class ModelError(ExtesError):
    """A model string, model file or adapter cannot be used."""


class OutputError(ExtesError):
    """An output path cannot be written: a folder extes did not write, a full disk, no permission."""

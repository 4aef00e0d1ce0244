"""What the benchmark scripts share: a command line declared once, as keyword defaults.

    args = parse_options(__doc__, steps=10, batch_size=4)   # --steps N --batch-size N --json

(The scripts run as `python benchmarks/<name>.py`, so this folder is on `sys.path` and `from _common import ...`
finds this file.)
"""

from __future__ import annotations

import argparse


def parse_options(doc: str | None, argv: list[str] | None = None, **defaults: object) -> argparse.Namespace:
    """Parse `argv`: the script's docstring as its --help, `--json`, and one option per keyword (`batch_size=4` is
    `--batch-size`, typed by its default; a `False` default is an on/off flag)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in {**defaults, "json": False}.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            ap.add_argument(flag, action="store_true", default=default)
        else:
            ap.add_argument(flag, type=type(default), default=default, help=f"(default {default})")
    return ap.parse_args(argv)

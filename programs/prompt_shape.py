"""The prompt shape an adapter was trained on: recorded in its folder by `extes tune`/`extes distill`, checked when
it is served.

A shape is the adapter class that formats the messages, the signature(s) it formats and how the target is written
(the `[Strategy]` tag or the plain reply), fingerprinted by a canonical example formatted with today's code. An
adapter trained under one shape and served under another sees messages it never saw (a LoRA tuned on a fixed system
prompt of its own and then served through the Supporter's signature wrote no `[Strategy]` tag at all, README
"Tuned vs base"); DSPy's fine-tuning review warns about the same drift. A mismatch is a warning, not an error:
old adapters keep loading.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from extes.programs.adapter import SmallChatAdapter
from extes.signatures.classify import ClassifyStrategy
from extes.signatures.reply_tag import tag_reply
from extes.signatures.support import Respond, RespondWithStrategy, SelectStrategy
from extes.signatures.synthesis import DescribeSituation, SimulateHelpSeeker, SynthesizeSupportDialogue

log = logging.getLogger(__name__)

# Bump when the formatting changes on purpose; the fingerprint catches the changes nobody meant.
SHAPE_VERSION = 2  # 2: ClassifyStrategy's utterance rides on the last message (after the history)
RECORD_FILE = "extes_tune.json"  # written next to adapter_config.json by the trainer; the shape is its "prompt_shape"
SIGNATURES = {s.__name__: s for s in (SelectStrategy, RespondWithStrategy, Respond, ClassifyStrategy,
                                      SynthesizeSupportDialogue, DescribeSituation, SimulateHelpSeeker)}
TARGETS = {"tagged": tag_reply("<strategy>", "<reply>"), "plain": "<reply>"}
_HISTORY = [{"role": "user", "text": "<user 1>"}, {"role": "assistant", "text": "<assistant 1>"},
            {"role": "user", "text": "<user 2>"}]


def canonical_messages(signature) -> list[dict[str, Any]]:
    """The messages the project's adapter formats for `signature` on placeholder inputs (no demos)."""
    inputs = {name: _HISTORY if name == "history" else f"<{name}>" for name in signature.input_fields}
    return SmallChatAdapter().format(signature, [], inputs)


def shape_record(signatures: list, target: str = "plain") -> dict[str, Any]:
    """The record of a shape: adapter, signature names, target style, version and fingerprint."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: use one of {', '.join(TARGETS)}")
    names = [s.__name__ for s in signatures]
    return {"adapter": SmallChatAdapter.__name__, "signature": ",".join(names), "target": target,
            "version": SHAPE_VERSION, "sha256": _fingerprint(signatures, target)}


def _fingerprint(signatures: list, target: str) -> str:
    payload = {"adapter": SmallChatAdapter.__name__, "target": TARGETS[target],
               "messages": [canonical_messages(s) for s in signatures]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def shape_problem(folder: Path) -> str | None:
    """Why the adapter in `folder` may be served another prompt shape than it was trained on; None when it matches."""
    path = Path(folder) / RECORD_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("prompt_shape")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, dict):
        return "records no prompt shape (made by an older extes, or not by `extes tune`/`extes distill`)"
    names = [n for n in str(recorded.get("signature") or "").split(",") if n]
    unknown = [n for n in names if n not in SIGNATURES]
    if recorded.get("adapter") != SmallChatAdapter.__name__ or unknown or not names:
        return (f"was trained through {recorded.get('adapter')} on {recorded.get('signature')}, which this version "
                f"does not serve")
    target = recorded.get("target", "plain")
    current = _fingerprint([SIGNATURES[n] for n in names], target) if target in TARGETS else "?"
    if current != recorded.get("sha256"):
        return (f"was trained on the {recorded.get('signature')} prompt shape version {recorded.get('version')} "
                f"(sha256 {str(recorded.get('sha256'))[:12]}), not this version's (version {SHAPE_VERSION}, "
                f"sha256 {current[:12]})")
    return None


def check_adapter_shape(folder: Path) -> None:
    """Log one warning when the adapter in `folder` was trained on another prompt shape than it is served with."""
    problem = shape_problem(folder)
    if problem:
        log.warning("adapter %s %s; its replies may ignore the prompt: retrain it with this version (`extes tune` "
                    "or `extes distill`)", folder, problem)

"""The human study's SQLite file: participants (a code each, no account), their messages and their answers.

WAL mode and one transaction per write (a message with its reply, one answer, one stage change), so a server
killed at any moment loses nothing that a participant saw acknowledged. A connection per call keeps it safe
under the server's thread pool.
"""

from __future__ import annotations

import datetime
import json
import random
import secrets
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
  code TEXT PRIMARY KEY, created_at TEXT NOT NULL, supporter_order TEXT NOT NULL,
  issue TEXT, stage TEXT NOT NULL DEFAULT 'issue');
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL REFERENCES participants(code), slot INTEGER NOT NULL,
  supporter TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, strategy TEXT, crisis INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
  code TEXT NOT NULL REFERENCES participants(code), first TEXT NOT NULL, second TEXT NOT NULL,
  criterion TEXT NOT NULL, choice TEXT NOT NULL CHECK (choice IN ('first', 'second', 'tie')),
  created_at TEXT NOT NULL, PRIMARY KEY (code, first, second, criterion));
"""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class StudyStore:
    """One study's SQLite file (STUDY/study.sqlite)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "study.sqlite"
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA synchronous=FULL")  # every committed answer is on disk before the page says so
        db.row_factory = sqlite3.Row
        return db

    # -- study settings -----------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        with closing(self._connect()) as db:
            return {r["key"]: json.loads(r["value"]) for r in db.execute("SELECT key, value FROM study")}

    def save_settings(self, values: dict[str, Any]) -> None:
        with closing(self._connect()) as db, db:
            db.executemany("INSERT OR REPLACE INTO study (key, value) VALUES (?, ?)",
                           [(k, json.dumps(v)) for k, v in values.items()])

    # -- participants -------------------------------------------------------------------------------------------
    def new_participant(self, supporters: list[str]) -> str:
        """A fresh code and a random supporter order for it (the order is what anonymizes the systems)."""
        code = "-".join(secrets.token_hex(2).upper() for _ in range(3))
        order = list(supporters)
        random.Random(code).shuffle(order)
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO participants (code, created_at, supporter_order) VALUES (?, ?, ?)",
                       (code, _now(), json.dumps(order)))
        return code

    def participant(self, code: str) -> dict[str, Any] | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM participants WHERE code = ?", (code.strip().upper(),)).fetchone()
        if row is None:
            return None
        return {**dict(row), "order": json.loads(row["supporter_order"])}

    def set_issue(self, code: str, issue: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("UPDATE participants SET issue = ?, stage = 'chat' WHERE code = ?", (issue, code))

    def set_stage(self, code: str, stage: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("UPDATE participants SET stage = ? WHERE code = ?", (stage, code))

    # -- messages -----------------------------------------------------------------------------------------------
    def add_exchange(self, code: str, slot: int, supporter: str, message: str, reply: dict[str, Any]) -> None:
        """The participant's message and the supporter's reply, in one transaction."""
        now = _now()
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO messages (code, slot, supporter, role, text, crisis, created_at) "
                       "VALUES (?, ?, ?, 'user', ?, ?, ?)", (code, slot, supporter, message, int(reply["crisis"]), now))
            db.execute("INSERT INTO messages (code, slot, supporter, role, text, strategy, crisis, created_at) "
                       "VALUES (?, ?, ?, 'assistant', ?, ?, ?, ?)",
                       (code, slot, supporter, reply["reply"], reply.get("strategy"), int(reply["crisis"]), now))

    def messages(self, code: str, slot: int | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM messages WHERE code = ?", [code]
        if slot is not None:
            q, args = q + " AND slot = ?", [code, slot]
        with closing(self._connect()) as db:
            return [dict(r) for r in db.execute(q + " ORDER BY id", args)]

    # -- answers ------------------------------------------------------------------------------------------------
    def add_answer(self, code: str, first: str, second: str, criterion: str, choice: str) -> None:
        """One answer, one transaction; answering again replaces it."""
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                       (code, first, second, criterion, choice, _now()))

    def answers(self) -> list[dict[str, Any]]:
        with closing(self._connect()) as db:
            return [dict(r) for r in db.execute("SELECT * FROM answers ORDER BY code, first, second, criterion")]

    def participants(self) -> list[dict[str, Any]]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM participants ORDER BY created_at").fetchall()
        return [{**dict(r), "order": json.loads(r["supporter_order"])} for r in rows]

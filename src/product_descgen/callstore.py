"""Append-only call log in SQLite: every call is recorded; successes double as the cache.

A result is keyed by a hash of everything that determines it (input, prompt, model,
settings), so a re-run skips what is done, a crash loses at most the batch in flight, and
editing a prompt regenerates only what that prompt touches.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from product_descgen.llm.types import Result

WAL_SWITCH_TRIES = 200  # x 0.05 s: how long a new store waits out another run's WAL switch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    key TEXT NOT NULL,
    step TEXT NOT NULL,
    item_id TEXT,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    ok INTEGER NOT NULL,
    text TEXT,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS calls_key_ok ON calls (key, ok);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

CALL_COLUMNS = [
    "run_id", "created_at", "key", "step", "item_id", "backend", "model", "ok", "text",
    "finish_reason", "prompt_tokens", "completion_tokens", "latency_s", "attempts", "error",
]  # fmt: skip


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(owner: str) -> bool:
    """Whether ``owner`` (``host:pid``) is a process of this machine that no longer runs."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def cache_key(**parts: Any) -> str:
    """A stable hash of the parts (JSON with sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallStore:
    """SQLite-backed call log; ``done()`` returns the cached successes. Runs sharing the store
    claim keys before calling (``claim``), so two runs at once never pay for one prompt twice;
    a claim lapses ``claim_ttl_s`` after its run last renewed it, or at once when its process is
    gone from this machine (a killed run's keys free up)."""

    def __init__(self, path: str | Path, claim_ttl_s: float = 300.0) -> None:
        self.path = Path(path)
        self.claim_ttl_s = claim_ttl_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = uuid.uuid4().hex[:12]
        with closing(self._connect()) as conn, conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        # switching a new file to WAL can meet another run's switch: SQLite then answers "locked"
        # at once, without waiting on the busy timeout, so wait here (WAL then stays on the file)
        for attempt in range(WAL_SWITCH_TRIES):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return conn
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or attempt == WAL_SWITCH_TRIES - 1:
                    conn.close()
                    raise
                time.sleep(0.05)
        return conn

    def _latest(self, keys: Iterable[str], ok: bool) -> dict[str, dict[str, Any]]:
        """The latest call with this outcome for each of ``keys`` that has one."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        with closing(self._connect()) as conn:
            conn.row_factory = sqlite3.Row
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = conn.execute(
                    f"SELECT * FROM calls WHERE ok = ? AND key IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY id",
                    [int(ok), *chunk],
                ).fetchall()
                found.update({row["key"]: dict(row) for row in rows})
        return found

    def done(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The latest successful call for each of ``keys`` that has one."""
        return self._latest(keys, ok=True)

    def last_errors(self, keys: Iterable[str]) -> dict[str, str]:
        """The latest error of each of ``keys`` that has a failed call."""
        return {key: row["error"] for key, row in self._latest(keys, ok=False).items()}

    def claim(self, keys: Iterable[str]) -> set[str]:
        """Of ``keys``, those this run now holds and that still need a call: free or lapsed
        ones are taken in one transaction (SQLite serialises writers, so no key is held twice)."""
        wanted, now = list(dict.fromkeys(keys)), time.time()
        with closing(self._connect()) as conn, conn:
            conn.execute("DELETE FROM claims WHERE expires_at < ?", (now,))
            owners = [row[0] for row in conn.execute("SELECT DISTINCT owner FROM claims")]
            conn.executemany(  # a run killed on this machine frees its keys at once
                "DELETE FROM claims WHERE owner = ?", [(o,) for o in owners if _dead_here(o)]
            )
            conn.executemany(
                "INSERT OR IGNORE INTO claims (key, run_id, owner, expires_at) VALUES (?, ?, ?, ?)",
                [(k, self.run_id, _owner(), now + self.claim_ttl_s) for k in wanted],
            )
            held = conn.execute("SELECT key FROM claims WHERE run_id = ?", (self.run_id,))
            held = {row[0] for row in held} & set(wanted)
        # a key another run finished and released since the caller looked is not work: runs
        # record a call before they release its claim, so it shows here
        finished = set(self._latest(held, ok=True))
        if finished:
            with closing(self._connect()) as conn, conn:
                conn.executemany(
                    "DELETE FROM claims WHERE key = ? AND run_id = ?",
                    [(k, self.run_id) for k in finished],
                )
        return held - finished

    def renew_claims(self) -> None:
        """Keep this run's claims alive (call as work progresses)."""
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "UPDATE claims SET expires_at = ? WHERE run_id = ?",
                (time.time() + self.claim_ttl_s, self.run_id),
            )

    def release_claims(self) -> None:
        with closing(self._connect()) as conn, conn:
            conn.execute("DELETE FROM claims WHERE run_id = ?", (self.run_id,))

    def record(self, results: Iterable[Result], step: str, backend: str, model: str) -> None:
        """Append one row per call, in one transaction (a batch is all in or all out)."""
        now = time.time()
        rows = [
            (
                self.run_id, now, r.key, step, r.meta.get("item_id"), backend, model, int(r.ok),
                r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens, r.latency_s,
                r.attempts, r.error,
            )
            for r in results
        ]  # fmt: skip
        with closing(self._connect()) as conn, conn:
            conn.executemany(
                f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(CALL_COLUMNS))})",
                rows,
            )

    def calls(self) -> pd.DataFrame:
        """The whole call log."""
        with closing(self._connect()) as conn:
            return pd.read_sql_query("SELECT * FROM calls ORDER BY id", conn)

"""SQLite metadata store (WAL).

One connection shared by the daemon, guarded by a lock so helper threads
(layer unpacking, network setup) can write too. Each domain module owns its
tables and creates them with `ensure_schema` at start-up.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from typing import Any, Iterator


def _private_files(path: str) -> None:
    """The database and its WAL and shared-memory files are root's alone
    (they hold every container's config and env): made 0600 before SQLite
    opens them, whatever the umask, and an older dockyard's 0644 tightened."""
    if path == ":memory:" or path.startswith("file:"):
        return
    for name in (path, path + "-wal", path + "-shm"):
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)


class Database:
    def __init__(self, path: str):
        _private_files(path)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable across process crashes
        self._conn.execute("PRAGMA foreign_keys=ON")

    def ensure_schema(self, script: str) -> None:
        with self._lock:
            self._conn.executescript(script)

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None

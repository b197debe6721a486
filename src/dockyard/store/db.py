"""SQLite metadata store (WAL).

One connection shared by the daemon, guarded by a lock so helper threads
(layer unpacking, network setup) can write too. Each domain module owns its
tables and creates them with `ensure_schema` at start-up.

The files stay as small as what they hold: the WAL is cut back to
`JOURNAL_SIZE_LIMIT` after checkpoints (and checkpointed with TRUNCATE when
it grew past it), and once a write leaves `COMPACT_FREE` bytes of free pages
(a large container removed) they are given back to the filesystem
(auto_vacuum=INCREMENTAL; a database made before that is VACUUMed once).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import threading
from typing import Any, Iterator

from ..errors import NoSpace

_SQLITE_FULL = 13                 # "database or disk is full"
_SQLITE_IOERR_SHMSIZE = 4874      # the -shm file could not grow (ENOSPC there)


def is_full(e: BaseException) -> bool:
    """A write refused because the disk is full: SQLite's SQLITE_FULL, or an
    OS error ENOSPC/EDQUOT (or the NoSpace made of either)."""
    if isinstance(e, NoSpace):
        return True
    if isinstance(e, sqlite3.OperationalError):
        code = getattr(e, "sqlite_errorcode", 0)
        return code & 0xFF == _SQLITE_FULL or code == _SQLITE_IOERR_SHMSIZE or "disk is full" in str(e)
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


JOURNAL_SIZE_LIMIT = 4 << 20     # bytes of WAL kept after a checkpoint
COMPACT_FREE = 4 << 20           # bytes of free pages that are given back at once


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
    """A full disk turns SQLite's "database or disk is full" into NoSpace
    (a clear 500, as moby's), and never leaves a transaction open."""

    def __init__(self, path: str):
        self.path = path
        _private_files(path)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._wal = path + "-wal"
        if self._conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")   # a new file: takes effect now
            try:
                self._conn.execute("VACUUM")      # an older file: rebuilt once (best effort: a full disk)
            except sqlite3.Error:
                pass
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable across process crashes
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        self._page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        self.compact()

    def compact(self) -> None:
        """Give free pages back and cut the WAL down when either grew large;
        cheap when neither did (two header reads and a stat). Best effort:
        on a full disk the data is safe and the next write tries again."""
        with self._lock:
            if self._conn.in_transaction:
                return
            try:
                free = self._conn.execute("PRAGMA freelist_count").fetchone()[0] * self._page_size
                if free >= COMPACT_FREE:
                    self._conn.executescript("PRAGMA incremental_vacuum")   # steps it to the end
                elif self._wal_size() <= JOURNAL_SIZE_LIMIT:
                    return
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass

    def _wal_size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except OSError:
            return 0

    @contextlib.contextmanager
    def _full_is_nospace(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            if is_full(e):
                raise NoSpace(f"write {self.path}") from e
            raise

    def ensure_schema(self, script: str) -> None:
        with self._lock, self._full_is_nospace():
            self._conn.executescript(script)

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock, self._full_is_nospace():
            cur = self._conn.execute(sql, params)
            if not self._conn.in_transaction and sql.lstrip()[:6].upper() != "SELECT":
                self.compact()
            return cur

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock, self._full_is_nospace():
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self._lock, self._full_is_nospace():
            return self._conn.execute(sql, params).fetchone()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception, a COMMIT
        refused by a full disk included (SQLite may leave it open then)."""
        with self._lock, self._full_is_nospace():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self.compact()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None

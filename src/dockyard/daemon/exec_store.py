"""Exec sessions on disk, so a daemon restart or crash loses none of them.

One row per exec in the daemon's SQLite store, written on create, once the
process runs (its pid) and when it ends (its exit code): one write per state
change. Rows go with their container (foreign key, ON DELETE CASCADE).

How long they live (moby's rules, daemon/exec.go): a finished exec can be
inspected for 5 to 10 minutes (moby's execCommandGC ticks every 5 minutes),
then it is dropped; all of a container's execs go when it is removed.
Unlike dockerd, a container's exit does not drop them at once: a client
inspecting the exit code of an exec that stopped its own container would
race that exit and get a 404.
"""
from __future__ import annotations

from ..store.db import Database, dumps, loads

SCHEMA = """
CREATE TABLE IF NOT EXISTS execs (
    id           TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    rec          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS execs_by_container ON execs (container_id);
"""

GC_INTERVAL = 300.0   # moby: execCommandGC every 5 minutes
KEEP_FINISHED = 300.0  # a finished exec stays inspectable at least this long

# the exec's fields kept in `rec` (everything but runtime handles)
FIELDS = ("cmd", "env", "user", "workdir", "privileged", "tty", "attach_stdin", "attach_stdout",
          "attach_stderr", "detach_keys", "console_size", "running", "started", "exit_code", "pid",
          "created_at", "finished_at")


def to_record(ex) -> dict:
    rec = {f: getattr(ex, f) for f in FIELDS}
    if rec["console_size"] is not None:
        rec["console_size"] = list(rec["console_size"])
    return rec


def from_record(eid: str, cid: str, rec: dict) -> dict:
    """Keyword arguments for `Exec(...)`; unknown keys (a newer daemon's) are ignored."""
    kw = {f: rec[f] for f in FIELDS if f in rec}
    if kw.get("console_size"):
        kw["console_size"] = tuple(kw["console_size"])
    return {"id": eid, "container_id": cid, **kw}


def recovery_verdict(started: bool, dir_exists: bool, exit_code: int | None,
                     conmon_alive: bool) -> str:
    """What a daemon start does with an exec it finds unfinished:
    "keep"   never started: stays startable;
    "finish" its conmon recorded the exit code: record it;
    "watch"  still running under its conmon: watch it again;
    "lost"   gone without a word: finished, exit code unknown."""
    if not started and not dir_exists:
        return "keep"
    if exit_code is not None:
        return "finish"
    if conmon_alive:
        return "watch"
    return "lost"


def collectable(ex, container_running: bool, now: float) -> bool:
    """moby's GC: finished execs after a while; never-started ones once their
    container no longer runs (dockerd drops those when the container stops)."""
    if ex.running:
        return False
    if ex.started:
        return ex.finished_at is not None and now - ex.finished_at >= KEEP_FINISHED
    return not container_running and now - ex.created_at >= KEEP_FINISHED


class ExecStore:
    def __init__(self, db: Database):
        self.db = db
        db.ensure_schema(SCHEMA)

    def load(self) -> list[tuple[str, str, dict]]:
        return [(r["id"], r["container_id"], loads(r["rec"]))
                for r in self.db.query("SELECT id, container_id, rec FROM execs")]

    def add(self, ex) -> None:
        self.db.execute("INSERT INTO execs (id, container_id, rec) VALUES (?, ?, ?)",
                        (ex.id, ex.container_id, dumps(to_record(ex))))

    def save(self, ex) -> None:
        self.db.execute("UPDATE execs SET rec = ? WHERE id = ?", (dumps(to_record(ex)), ex.id))

    def delete(self, eids: list[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM execs WHERE id = ?", [(e,) for e in eids])

    def delete_for_container(self, cid: str) -> None:
        self.db.execute("DELETE FROM execs WHERE container_id = ?", (cid,))

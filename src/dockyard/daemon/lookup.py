"""Where containers live: an in-memory index over the SQLite table, and
Docker's lookup order (full ID → exact name → unique ID prefix).

The in-memory containers are authoritative: a save (or a removal's delete)
that a full disk refuses does not fail the verb; the container is marked
dirty and `flush` writes it once space returns (the daemon retries every few
seconds and at shutdown). Creating and renaming still need the disk: they
fail with a clear "no space left on device" and change nothing.

Namespaces, as containerd's: Docker's containers are in "" and the CRI's
in "k8s.io". Iteration and `get` (the Docker API's lookup: ID, name,
prefix) are Docker's namespace only, so no Docker verb reaches a
Kubernetes container; `all()` and `in_namespace()` are for the engine and
the CRI, and `find` by a full 64-hex ID reaches any namespace (the engine's
own lookups after the fact: exits, execs, removal). Names are unique per
namespace (a namespaced container's name column is "<namespace>/<name>")."""
from __future__ import annotations

import logging
import sqlite3
from typing import Iterator

from ..errors import Conflict, InvalidParameter, NoSuchContainer
from ..store.db import Database, dumps, is_full, loads
from .container import Container

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    rec  TEXT NOT NULL
);
"""


log = logging.getLogger("dockyard.containers")


class ContainerStore:
    def __init__(self, db: Database):
        self.db = db
        db.ensure_schema(SCHEMA)
        self._by_id: dict[str, Container] = {}
        self._by_name: dict[str, str] = {}
        self._dirty: dict[str, Container | None] = {}   # id -> to save (None: to delete)
        for row in db.query("SELECT rec FROM containers"):
            c = Container.from_record(loads(row["rec"]))
            self._by_id[c.id] = c
            self._by_name[self.key(c.name, c.namespace)] = c.id

    def __iter__(self) -> Iterator[Container]:
        """Docker's containers."""
        return iter([c for c in self._by_id.values() if not c.namespace])

    def total(self) -> int:
        """Every container, the CRI's too; O(1)."""
        return len(self._by_id)

    def __len__(self) -> int:
        return sum(1 for c in self._by_id.values() if not c.namespace)

    def all(self) -> list[Container]:
        """Every namespace's containers (recovery, image users)."""
        return list(self._by_id.values())

    def in_namespace(self, namespace: str) -> list[Container]:
        return [c for c in self._by_id.values() if c.namespace == namespace]

    @staticmethod
    def key(name: str, namespace: str = "") -> str:
        """The name's unique key (the table's name column)."""
        return f"{namespace}/{name}" if namespace else name

    def add(self, c: Container) -> None:
        """Insert a new container; the name is reserved atomically (the
        in-memory check and the UNIQUE column agree, and nothing awaits
        between check and insert)."""
        key = self.key(c.name, c.namespace)
        if key in self._by_name:
            raise self._name_conflict(c.name, c.namespace)
        self.flush()           # a deferred delete may still hold the name in the table
        try:
            self.db.execute("INSERT INTO containers (id, name, rec) VALUES (?, ?, ?)",
                            (c.id, key, dumps(c.to_record())))
        except sqlite3.IntegrityError:
            raise self._name_conflict(c.name, c.namespace) from None
        self._by_id[c.id] = c
        self._by_name[key] = c.id

    def _name_conflict(self, name: str, namespace: str = "") -> Conflict:
        other = self._by_name.get(self.key(name, namespace), "")
        if namespace:
            from .pods import NameReserved
            return NameReserved(f'the container name "{name}" is already in use by "{other}" '
                             f"in namespace {namespace}")
        return Conflict(f'Conflict. The container name "/{name}" is already in use by container "{other}". '
                        "You have to remove (or rename) that container to be able to reuse that name.")

    def save(self, c: Container) -> None:
        """Write the container's record; on a full disk keep it dirty (see flush)."""
        try:
            self._write(c)
        except Exception as e:
            if not is_full(e):
                raise
            if c.id not in self._dirty:
                log.warning("saving container %s deferred: %s", c.id[:12], e)
            self._dirty[c.id] = c

    def _write(self, c: Container) -> None:
        self.db.execute("UPDATE containers SET rec = ? WHERE id = ?", (dumps(c.to_record()), c.id))
        self._dirty.pop(c.id, None)

    @property
    def dirty(self) -> int:
        """How many containers wait for a save the disk refused."""
        return len(self._dirty)

    def flush(self) -> int:
        """Retry the saves and deletes a full disk refused; returns how many
        still wait. Containers are written one at a time, so any that fit land."""
        for cid, c in list(self._dirty.items()):
            try:
                if c is None:
                    self._delete(cid)
                else:
                    self._write(c)
            except Exception as e:
                if not is_full(e):
                    log.exception("saving container %s failed", cid[:12])
                    self._dirty.pop(cid, None)
                continue
            log.info("deferred save of container %s done", cid[:12])
        return len(self._dirty)

    def rename(self, c: Container, new: str) -> None:
        if new in self._by_name:
            raise self._name_conflict(new)
        self.flush()           # a deferred delete may still hold the name in the table
        old = c.name
        c.name = new
        try:
            self.db.execute("UPDATE containers SET name = ?, rec = ? WHERE id = ?", (new, dumps(c.to_record()), c.id))
        except sqlite3.IntegrityError:
            c.name = old
            raise self._name_conflict(new) from None
        except BaseException:
            c.name = old       # a full disk: the old name stays, here as in the table
            raise
        if self._dirty.get(c.id) is c:
            del self._dirty[c.id]      # the whole record was just written
        del self._by_name[old]
        self._by_name[new] = c.id

    def remove(self, c: Container) -> None:
        """Forget the container; a delete the full disk refuses is retried by flush."""
        try:
            self._delete(c.id)
        except Exception as e:
            if not is_full(e):
                raise
            log.warning("deleting container %s deferred: %s", c.id[:12], e)
            self._dirty[c.id] = None
        self._by_id.pop(c.id, None)
        key = self.key(c.name, c.namespace)
        if self._by_name.get(key) == c.id:
            del self._by_name[key]

    def _delete(self, cid: str) -> None:
        self.db.execute("DELETE FROM containers WHERE id = ?", (cid,))
        self._dirty.pop(cid, None)

    def name_taken(self, name: str) -> bool:
        return name in self._by_name

    def get(self, ref: str) -> Container:
        """Full ID, then exact name (leading '/' optional), then a unique
        ID prefix. An ambiguous prefix is an error, never a guess."""
        if not ref:
            raise NoSuchContainer(ref)
        c = self._by_id.get(ref)
        if c and not c.namespace:
            return c
        cid = self._by_name.get(ref.removeprefix("/"))
        if cid and not self._by_id[cid].namespace:
            return self._by_id[cid]
        matches = [c for i, c in self._by_id.items() if i.startswith(ref) and not c.namespace]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NoSuchContainer(ref)

    def find(self, ref: str) -> Container | None:
        """`get`, or else the container of that full ID in any namespace; None if neither."""
        try:
            return self.get(ref)
        except (NoSuchContainer, InvalidParameter):
            return self._by_id.get(ref)

"""Image metadata in SQLite: images, their layer lists, and tags.

The config JSON is stored byte for byte, since its sha256 *is* the image
id. Tags are stored fully qualified (docker.io/library/bb:latest) and shown
in familiar form (bb:latest).

An image force-removed while stopped containers still use it is only
marked `removed`: gone for users (lookups, lists), still there for its
containers (config, layers), the way Docker's layer references keep such
a container startable. It is deleted for real once no container uses it.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id            TEXT PRIMARY KEY,     -- sha256:<hex of config>
    config        BLOB NOT NULL,        -- the image config JSON, exactly as hashed
    created_ns    INTEGER NOT NULL,     -- config's created; 0 when it has none
    size          INTEGER NOT NULL,     -- sum of its layers' sizes
    last_tag_time TEXT,                 -- RFC 3339 time of the last local tag
    removed       INTEGER NOT NULL DEFAULT 0   -- rmi'd, kept for containers still using it
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,          -- 0 = base layer
    chain_id TEXT NOT NULL REFERENCES unpacked_layers(chain_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_by_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS image_tags (
    ref      TEXT PRIMARY KEY,          -- docker.io/library/bb:latest
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS image_tags_by_image ON image_tags(image_id);
"""


@dataclass(frozen=True)
class ImageRow:
    id: str
    config: bytes
    created_ns: int
    size: int
    last_tag_time: str | None
    removed: bool


def _row(r: sqlite3.Row | None) -> ImageRow | None:
    if r is None:
        return None
    return ImageRow(r["id"], bytes(r["config"]), r["created_ns"], r["size"], r["last_tag_time"],
                    bool(r["removed"]))


class ImageStore:
    def __init__(self, db: Database):
        self.db = db
        db.ensure_schema(SCHEMA)
        columns = {r["name"] for r in db.query("PRAGMA table_info(images)")}
        if "removed" not in columns:        # a store from before `removed` existed
            db.execute("ALTER TABLE images ADD COLUMN removed INTEGER NOT NULL DEFAULT 0")

    # -- reads
    def get(self, image_id: str, include_removed: bool = False) -> ImageRow | None:
        row = _row(self.db.one("SELECT * FROM images WHERE id=?", (image_id,)))
        return row if row and (include_removed or not row.removed) else None

    def all(self) -> list[ImageRow]:
        return [_row(r) for r in self.db.query(
            "SELECT * FROM images WHERE removed=0 ORDER BY created_ns DESC, id")]

    def removed_ids(self) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM images WHERE removed=1")]

    def ids_with_prefix(self, hex_prefix: str, limit: int = 2) -> list[str]:
        # hex only (checked by the caller), so no LIKE wildcards can sneak in
        rows = self.db.query("SELECT id FROM images WHERE removed=0 AND id LIKE ? ORDER BY id LIMIT ?",
                             (f"sha256:{hex_prefix}%", limit))
        return [r["id"] for r in rows]

    def tagged(self, ref: str) -> str | None:
        r = self.db.one("SELECT image_id FROM image_tags WHERE ref=?", (ref,))
        return r["image_id"] if r else None

    def tags_of(self, image_id: str) -> list[str]:
        # lexical order, as moby's reference store returns them
        return [r["ref"] for r in self.db.query(
            "SELECT ref FROM image_tags WHERE image_id=? ORDER BY ref", (image_id,))]

    def all_tags(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.db.query("SELECT ref, image_id FROM image_tags ORDER BY ref"):
            out.setdefault(r["image_id"], []).append(r["ref"])
        return out

    def chain_ids(self, image_id: str) -> list[str]:
        """Base layer first."""
        return [r["chain_id"] for r in self.db.query(
            "SELECT chain_id FROM image_layers WHERE image_id=? ORDER BY position", (image_id,))]

    # -- writes (inside the caller's transaction)
    @staticmethod
    def add(conn: sqlite3.Connection, image_id: str, config: bytes, created_ns: int,
            size: int, chain_ids: list[str]) -> bool:
        """Record an image; False if it was there already (same config, same
        id), in which case a removed one is back."""
        if conn.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone():
            conn.execute("UPDATE images SET removed=0 WHERE id=?", (image_id,))
            return False
        conn.execute("INSERT INTO images (id, config, created_ns, size) VALUES (?,?,?,?)",
                     (image_id, config, created_ns, size))
        conn.executemany("INSERT INTO image_layers (image_id, position, chain_id) VALUES (?,?,?)",
                         [(image_id, i, c) for i, c in enumerate(chain_ids)])
        return True

    @staticmethod
    def set_tag(conn: sqlite3.Connection, ref: str, image_id: str, when: str) -> str | None:
        """Point `ref` at `image_id`; returns the image it pointed at before, if another."""
        r = conn.execute("SELECT image_id FROM image_tags WHERE ref=?", (ref,)).fetchone()
        conn.execute("INSERT OR REPLACE INTO image_tags (ref, image_id) VALUES (?,?)", (ref, image_id))
        conn.execute("UPDATE images SET last_tag_time=? WHERE id=?", (when, image_id))
        prev = r["image_id"] if r else None
        return prev if prev != image_id else None

    @staticmethod
    def delete_tag(conn: sqlite3.Connection, ref: str) -> bool:
        return conn.execute("DELETE FROM image_tags WHERE ref=?", (ref,)).rowcount > 0

    @staticmethod
    def mark_removed(conn: sqlite3.Connection, image_id: str) -> None:
        conn.execute("DELETE FROM image_tags WHERE image_id=?", (image_id,))
        conn.execute("UPDATE images SET removed=1, last_tag_time=NULL WHERE id=?", (image_id,))

    @staticmethod
    def delete(conn: sqlite3.Connection, image_id: str) -> None:
        conn.execute("DELETE FROM image_tags WHERE image_id=?", (image_id,))
        conn.execute("DELETE FROM image_layers WHERE image_id=?", (image_id,))
        conn.execute("DELETE FROM images WHERE id=?", (image_id,))

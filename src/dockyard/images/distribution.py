"""What we know about images' life in registries, kept in SQLite:

- repo_digests: `name@sha256:…` of the manifests an image was pulled by or
  pushed as (Docker's RepoDigests; `docker run name@digest` finds it);
- layer_digests: the compressed blob digest a layer has in a repository,
  so a later push can ask the registry for it (HEAD, cross-repo mount)
  instead of compressing and uploading it again.
"""
from __future__ import annotations

from ..store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS repo_digests (
    ref      TEXT PRIMARY KEY,          -- 127.0.0.1:5000/app@sha256:...
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS repo_digests_by_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS image_parents (  -- commit's and the builder's parent: history, inspect, rmi
    image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    parent   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_digests (
    diff_id  TEXT NOT NULL,             -- sha256 of the plain tar
    repo     TEXT NOT NULL,             -- host/path of the repository
    digest   TEXT NOT NULL,             -- sha256 of the blob as the registry has it
    size     INTEGER NOT NULL,
    media    TEXT NOT NULL,
    PRIMARY KEY (diff_id, repo)
);
"""


class DistributionStore:
    def __init__(self, db: Database):
        self.db = db
        db.ensure_schema(SCHEMA)

    def add_repo_digest(self, ref: str, image_id: str) -> None:
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone():
                conn.execute("INSERT OR REPLACE INTO repo_digests (ref, image_id) VALUES (?,?)",
                             (ref, image_id))

    def repo_digests(self, image_id: str) -> list[str]:
        return [r["ref"] for r in self.db.query(
            "SELECT ref FROM repo_digests WHERE image_id=? ORDER BY ref", (image_id,))]

    def all_repo_digests(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.db.query("SELECT ref, image_id FROM repo_digests ORDER BY ref"):
            out.setdefault(r["image_id"], []).append(r["ref"])
        return out

    def by_digest(self, ref: str) -> str | None:
        r = self.db.one("SELECT image_id FROM repo_digests WHERE ref=?", (ref,))
        return r["image_id"] if r else None

    def remove_repo_digest(self, ref: str) -> bool:
        return self.db.execute("DELETE FROM repo_digests WHERE ref=?", (ref,)).rowcount > 0

    def set_parent(self, image_id: str, parent: str) -> None:
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone():
                conn.execute("INSERT OR REPLACE INTO image_parents (image_id, parent) VALUES (?,?)",
                             (image_id, parent))

    def parent(self, image_id: str) -> str | None:
        """The parent image id, if it is still here."""
        r = self.db.one("SELECT p.parent FROM image_parents p JOIN images i ON i.id = p.parent "
                        "WHERE p.image_id=?", (image_id,))
        return r["parent"] if r else None

    def parents(self) -> dict[str, str]:
        """{image id: parent id} for every image and parent still here (not rmi'd)."""
        return {r["image_id"]: r["parent"] for r in self.db.query(
            "SELECT p.image_id, p.parent FROM image_parents p JOIN images c ON c.id = p.image_id "
            "JOIN images i ON i.id = p.parent WHERE c.removed=0 AND i.removed=0")}

    def children(self, image_id: str) -> list[str]:
        """moby's imageStore.Children: the images (not rmi'd) whose parent this is."""
        return [r["image_id"] for r in self.db.query(
            "SELECT p.image_id FROM image_parents p JOIN images c ON c.id = p.image_id "
            "WHERE p.parent=? AND c.removed=0 ORDER BY p.image_id", (image_id,))]

    def add_layer(self, diff_id: str, repo: str, digest: str, size: int, media: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO layer_digests (diff_id, repo, digest, size, media) "
                        "VALUES (?,?,?,?,?)", (diff_id, repo, digest, size, media))

    def layer_candidates(self, diff_id: str, host: str) -> list[tuple[str, str, int, str]]:
        """(repo, digest, size, media) of the blobs this layer has in repositories of `host`."""
        rows = self.db.query("SELECT repo, digest, size, media FROM layer_digests WHERE diff_id=?", (diff_id,))
        return [(r["repo"], r["digest"], r["size"], r["media"]) for r in rows
                if r["repo"].startswith(host + "/")]

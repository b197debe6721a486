"""The build cache: which image a step made from which parent.

A step's key is the sha256 of its parent image id and the config it
records (moby's cache probe compares the same thing: the container config
with Cmd set to the step's history line, which holds the expanded
instruction, RUN's build args in effect (`|N k=v ...`) and COPY/ADD's
source checksum). A hit is used only while its image is still here.

`GET /system/df` shows the records as BuildCache entries; `POST
/build/prune` drops them, and the intermediate images no tagged image
descends from.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING

from ...errors import DockyardError
from ...filters import until_limits
from ...timestamps import format_ns

if TYPE_CHECKING:
    from ...images.service import ImageService
    from ...store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key         TEXT PRIMARY KEY,    -- sha256 of parent + the step's recorded config
    parent      TEXT NOT NULL,       -- image id the step started from ("" for scratch)
    image_id    TEXT NOT NULL,       -- the image the step made
    description TEXT NOT NULL,       -- the step, as the stream showed it
    size        INTEGER NOT NULL,    -- bytes of the layer it added (0: config only)
    created_ns  INTEGER NOT NULL,
    used_ns     INTEGER NOT NULL,
    usage       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS build_cache_by_image ON build_cache(image_id);
"""


def step_key(parent: str, recorded: dict) -> str:
    doc = json.dumps({"parent": parent, "config": recorded}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


class BuildCache:
    def __init__(self, db: "Database", images: "ImageService"):
        self.db = db
        self.images = images
        db.ensure_schema(SCHEMA)

    def get(self, key: str) -> str | None:
        """The image a step with this key made, if it is still here."""
        r = self.db.one("SELECT image_id FROM build_cache WHERE key=?", (key,))
        if r is None:
            return None
        if self.images.store.get(r["image_id"]) is None:
            self.db.execute("DELETE FROM build_cache WHERE key=?", (key,))
            return None
        self.db.execute("UPDATE build_cache SET used_ns=?, usage=usage+1 WHERE key=?", (time.time_ns(), key))
        return r["image_id"]

    def put(self, key: str, parent: str, image_id: str, description: str, size: int) -> None:
        now = time.time_ns()
        self.db.execute("INSERT OR REPLACE INTO build_cache (key, parent, image_id, description, size, "
                        "created_ns, used_ns, usage) VALUES (?,?,?,?,?,?,?,0)",
                        (key, parent, image_id, description[:1024], size, now, now))

    # ------------------------------------------------------------ df / prune
    def _shared(self) -> set[str]:
        """Images a tagged image descends from (or is): what a user keeps."""
        out: set[str] = set()
        for image_id in self.images.store.all_tags():
            cur: str | None = image_id
            while cur and cur not in out:
                out.add(cur)
                cur = self.images.dist.parent(cur)
        return out

    def usage(self) -> list[dict]:
        shared = self._shared()
        out = []
        for r in self.db.query("SELECT * FROM build_cache ORDER BY created_ns"):
            if self.images.store.get(r["image_id"]) is None:       # its image went (rmi): so does the record
                self.db.execute("DELETE FROM build_cache WHERE key=?", (r["key"],))
                continue
            out.append({"ID": r["key"][:25], "Parent": "", "Parents": None, "Type": "regular",
                        "Description": r["description"], "InUse": False, "Shared": r["image_id"] in shared,
                        "Size": r["size"], "CreatedAt": format_ns(r["created_ns"]),
                        "LastUsedAt": format_ns(r["used_ns"]), "UsageCount": r["usage"]})
        return out

    def prune(self, all: bool = False, filters: dict | None = None) -> tuple[list[str], int]:
        """Drop cache records (all, or those no tagged image uses) and the
        untagged intermediate images they kept. Returns (ids, bytes)."""
        f = filters or {}
        limits = until_limits(f) if "until" in f else []
        shared = self._shared()
        deleted, reclaimed = [], 0
        for r in self.db.query("SELECT * FROM build_cache ORDER BY created_ns DESC"):
            if any(r["created_ns"] >= lim for lim in limits):
                continue
            is_shared = r["image_id"] in shared
            if is_shared and not all:
                continue
            self.db.execute("DELETE FROM build_cache WHERE key=?", (r["key"],))
            deleted.append(r["key"][:25])
            if is_shared or self.images.store.get(r["image_id"]) is None:
                continue
            if self.db.one("SELECT 1 FROM build_cache WHERE image_id=?", (r["image_id"],)):
                continue
            try:
                self.images.remove(r["image_id"])
            except DockyardError:
                continue          # a container uses it: it stays
            reclaimed += r["size"]
        return deleted, reclaimed


class CacheFrom:
    """`--cache-from` as moby's image/cache ImageCache: a local hit counts only
    when it is an ancestor of one of the given images; else a step whose
    parent's history (and layers) are a prefix of a given image's and whose
    recorded command is that image's next history entry is served from it
    (the last entry: the image itself; an earlier one: an image made from
    the parent plus that entry and its layer, as moby's restoreCachedImage)."""

    def __init__(self, images: "ImageService", refs: list[str]):
        self.images = images
        self.sources: list = []
        for ref in refs:
            try:
                self.sources.append(images.resolve(ref))
            except DockyardError:
                continue        # moby: a warning in its log, and on without it

    def ancestor_of_source(self, image_id: str) -> bool:
        for src in self.sources:
            cur = self.images.dist.parent(src.id)
            seen = set()
            while cur and cur not in seen:
                if cur == image_id:
                    return True
                seen.add(cur)
                cur = self.images.dist.parent(cur)
        return False

    def probe(self, parent_id: str, recorded: dict) -> str | None:
        from ...images.ingest import config_bytes
        from ...images.layers import chain_ids
        parent = self.images.store.get(parent_id) if parent_id else None
        pdoc = json.loads(parent.config) if parent is not None else {}
        phist = list(pdoc.get("history") or [])
        pdiffs = list((pdoc.get("rootfs") or {}).get("diff_ids") or [])
        created_by = " ".join(recorded.get("Cmd") or [])
        for target in self.sources:
            thist = list(target.config.get("history") or [])
            tdiffs = target.diff_ids
            if not thist or len(phist) >= len(thist) or len(pdiffs) > len(tdiffs):
                continue
            if thist[:len(phist)] != phist or tdiffs[:len(pdiffs)] != pdiffs:
                continue
            entry = thist[len(phist)]
            if entry.get("created_by", "") != created_by:
                continue
            if len(thist) - 1 == len(phist):
                if parent_id:
                    self.images.dist.set_parent(target.id, parent_id)
                return target.id
            layer_index = sum(1 for h in thist[:len(phist)] if not h.get("empty_layer"))
            diffs = pdiffs + ([] if entry.get("empty_layer") else [tdiffs[layer_index]])
            doc = {"architecture": target.config.get("architecture"), "config": recorded,
                   "created": entry.get("created"), "docker_version": target.config.get("docker_version", ""),
                   "history": phist + [entry], "os": target.config.get("os") or "linux",
                   "rootfs": {"type": "layers", "diff_ids": diffs}}
            if target.config.get("author"):
                doc["author"] = target.config["author"]
            if not all(self.images.layers.exists(c) for c in chain_ids(diffs)):
                continue
            image_id = self.images.ingest(config_bytes(dict(sorted(doc.items()))), lambda todo, staged: None,
                                          [], "build").image_id
            if parent_id:
                self.images.dist.set_parent(image_id, parent_id)
            self.sources = [target]      # moby: no jumping to another source from here on
            return image_id
        return None

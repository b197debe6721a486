"""Unpacked layers on disk, keyed by chain id and shared between images.

  <root>/layers/<chain hex>/diff   one layer's files, an overlay lower dir
  <root>/layers/<chain hex>/layer.tar   the layer's exact tar (its sha256 is
                                   the diff id): what save and push send
  <root>/layers/<chain hex>/layer.tar.gz  instead, for a pulled layer: the blob
                                   exactly as the registry had it (push sends
                                   it as is, save gunzips it); tar-size holds
                                   the plain tar's length
  <root>/layers/.tmp-*             being unpacked
  <root>/layers/.trash-*           being deleted

A layer is unpacked into a `.tmp-` dir and renamed into place only when
complete, and gets its row in the same transaction that records the image
using it; so a crash leaves either nothing or a dir without a row, and the
start-up sweep removes both `.tmp-` dirs and row-less dirs. A layer is
deleted when no image lists it any more (image_layers is the refcount).

The chain id (OCI image spec) names a layer *on top of its parents*, so two
images share a directory exactly when they share the whole stack below it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Callable

from ..store.db import Database
from .unpack import unpack_layer
from .whiteouts import keep_only_opaque_xattrs

log = logging.getLogger("dockyard.images")

SCHEMA = """
CREATE TABLE IF NOT EXISTS unpacked_layers (
    chain_id TEXT PRIMARY KEY,      -- sha256:..., names the directory
    diff_id  TEXT NOT NULL,         -- sha256 of the uncompressed layer tar
    parent   TEXT,                  -- chain id of the layer below; NULL for a base layer
    size     INTEGER NOT NULL       -- bytes of file content
);
"""


TAR_NAME = "layer.tar"
BLOB_NAME = "layer.tar.gz"
SIZE_NAME = "tar-size"


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


class LayerMissing(Exception):
    """A layer we planned to reuse went away meanwhile (removed by an rmi)."""

    def __init__(self, chain_id: str):
        super().__init__(chain_id)
        self.chain_id = chain_id


@dataclass
class StagedLayer:
    path: str        # the .tmp- dir; its diff/ holds the files
    diff_id: str
    size: int
    tar_size: int = 0


class LayerStore:
    def __init__(self, db: Database, root: str):
        self.db = db
        self.dir = os.path.join(root, "layers")
        self.empty_dir = os.path.join(root, "empty")   # lower dir for an image without layers
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.makedirs(self.empty_dir, mode=0o755, exist_ok=True)
        db.ensure_schema(SCHEMA)
        self._sweep()

    # -- paths and lookups
    def diff_dir(self, chain_id: str) -> str:
        return os.path.join(self.dir, _hex(chain_id), "diff")

    def tar_path(self, chain_id: str) -> str:
        """The layer's original tar; missing for layers stored before it was kept."""
        return os.path.join(self.dir, _hex(chain_id), TAR_NAME)

    def exists(self, chain_id: str) -> bool:
        return self.db.one("SELECT 1 FROM unpacked_layers WHERE chain_id=?", (chain_id,)) is not None

    def sizes(self, chain_ids: list[str]) -> dict[str, int]:
        """chain id -> bytes of file content, for the layers present."""
        if not chain_ids:
            return {}
        return {r["chain_id"]: r["size"] for r in self.db.query(
            "SELECT chain_id, size FROM unpacked_layers WHERE chain_id IN (%s)" % ",".join("?" * len(chain_ids)),
            tuple(chain_ids))}

    @staticmethod
    def total_size(conn: sqlite3.Connection, chain_ids: list[str]) -> int:
        """Bytes of a stack of layers, inside the caller's transaction."""
        if not chain_ids:
            return 0
        return conn.execute("SELECT COALESCE(SUM(size),0) FROM unpacked_layers WHERE chain_id IN (%s)"
                            % ",".join("?" * len(chain_ids)), tuple(chain_ids)).fetchone()[0]

    # -- adding
    def stage(self, src: BinaryIO, keep_tar: bool = True) -> StagedLayer:
        """Unpack `src` into a fresh .tmp- dir (no lock needed: nobody else
        sees it), keeping the plain tar unless the caller keeps the blob
        (`keep_blob`)."""
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=self.dir)
        try:
            diff = os.path.join(tmp, "diff")
            os.mkdir(diff, 0o755)
            if keep_tar:
                with open(os.path.join(tmp, TAR_NAME), "wb") as tee:
                    result = unpack_layer(src, diff, tee)
            else:
                result = unpack_layer(src, diff)
            with open(os.path.join(tmp, SIZE_NAME), "w") as f:
                f.write(str(result.tar_size))
        except BaseException:
            _rmtree(tmp)
            raise
        return StagedLayer(tmp, result.diff_id, result.size, result.tar_size)

    def stage_dir(self, src_dir: str, write_tar: Callable[[BinaryIO], None]) -> StagedLayer:
        """Stage a layer whose files exist already in `src_dir` (a build
        step's overlay upper dir, on this filesystem): `write_tar` writes its
        tar (hashed on the way: the diff id), then the dir itself is moved in
        as the layer's diff dir instead of unpacking the tar again. OSError
        (EXDEV on another filesystem) leaves `src_dir` where it was."""
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=self.dir)
        try:
            with open(os.path.join(tmp, TAR_NAME), "wb") as raw:
                out = _HashingWriter(raw)
                write_tar(out)
            keep_only_opaque_xattrs(src_dir)
            os.rename(src_dir, os.path.join(tmp, "diff"))
            with open(os.path.join(tmp, SIZE_NAME), "w") as f:
                f.write(str(out.count))
            size = _regular_bytes(os.path.join(tmp, "diff"))
        except BaseException:
            _rmtree(tmp)
            raise
        return StagedLayer(tmp, "sha256:" + out.sha.hexdigest(), size, out.count)

    def keep_blob(self, staged: StagedLayer, blob_path: str) -> None:
        """Keep a pulled layer's blob (gzip) instead of its plain tar."""
        os.rename(blob_path, os.path.join(staged.path, BLOB_NAME))

    def open_tar(self, chain_id: str) -> tuple[BinaryIO, int]:
        """The layer's exact plain tar as a stream, and its length."""
        d = os.path.join(self.dir, _hex(chain_id))
        plain = os.path.join(d, TAR_NAME)
        if os.path.exists(plain):
            return open(plain, "rb"), os.path.getsize(plain)
        import gzip
        with open(os.path.join(d, SIZE_NAME)) as f:
            size = int(f.read().strip())
        return gzip.open(os.path.join(d, BLOB_NAME), "rb"), size

    def has_tar(self, chain_id: str) -> bool:
        d = os.path.join(self.dir, _hex(chain_id))
        return os.path.exists(os.path.join(d, TAR_NAME)) or (
            os.path.exists(os.path.join(d, BLOB_NAME)) and os.path.exists(os.path.join(d, SIZE_NAME)))

    def blob_path(self, chain_id: str) -> str:
        return os.path.join(self.dir, _hex(chain_id), BLOB_NAME)

    def discard(self, staged: StagedLayer | None) -> None:
        if staged is not None:
            _rmtree(staged.path)

    def install(self, conn: sqlite3.Connection, chain_id: str, parent: str | None,
                staged: StagedLayer | None) -> str | None:
        """Make `chain_id` present, inside the caller's transaction and lock.
        Returns the directory this call moved into place (to undo on
        rollback), None if the layer was there already."""
        if conn.execute("SELECT 1 FROM unpacked_layers WHERE chain_id=?", (chain_id,)).fetchone():
            self.discard(staged)
            return None
        if staged is None:
            raise LayerMissing(chain_id)
        final = os.path.join(self.dir, _hex(chain_id))
        if os.path.lexists(final):        # a row-less leftover: ours replaces it
            self._trash(final)
        os.rename(staged.path, final)
        conn.execute("INSERT INTO unpacked_layers (chain_id, diff_id, parent, size) VALUES (?,?,?,?)",
                     (chain_id, staged.diff_id, parent, staged.size))
        return final

    def uninstall_dir(self, path: str) -> None:
        """Undo an `install` whose transaction rolled back."""
        self._trash(path)

    # -- removing
    def release_unused(self, conn: sqlite3.Connection) -> list[tuple[str, int]]:
        """Drop the rows of layers no image uses (caller's transaction);
        returns (chain id, size) of each, top of a stack first, for
        `remove_dirs` after the commit."""
        rows = conn.execute(
            "SELECT chain_id, parent, size FROM unpacked_layers "
            "WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)").fetchall()
        conn.executemany("DELETE FROM unpacked_layers WHERE chain_id=?", [(r["chain_id"],) for r in rows])
        return _top_down({r["chain_id"]: (r["parent"], r["size"]) for r in rows})

    def remove_dirs(self, chain_ids: list[str]) -> list[str]:
        """Move the layers' dirs out of the way (quick: under the caller's
        lock); returns the trash dirs for `purge` (slow: after the lock)."""
        trash = []
        for c in chain_ids:
            t = self._move_to_trash(os.path.join(self.dir, _hex(c)))
            if t:
                trash.append(t)
        return trash

    def purge(self, trash_dirs: list[str]) -> None:
        for t in trash_dirs:
            _rmtree(t)

    # -- internals
    def _move_to_trash(self, path: str) -> str | None:
        """Rename away first so a half-deleted layer never sits under its real name."""
        if not os.path.lexists(path):
            return None
        trash = tempfile.mkdtemp(prefix=".trash-", dir=self.dir)
        os.rename(path, os.path.join(trash, "layer"))
        return trash

    def _trash(self, path: str) -> None:
        t = self._move_to_trash(path)
        if t:
            _rmtree(t)

    def _sweep(self) -> None:
        known = {_hex(r["chain_id"]) for r in self.db.query("SELECT chain_id FROM unpacked_layers")}
        for name in os.listdir(self.dir):
            if name.startswith((".tmp-", ".trash-")) or name not in known:
                log.info("removing unfinished layer dir %s", name)
                _rmtree(os.path.join(self.dir, name))
        for h in known:
            if not os.path.isdir(os.path.join(self.dir, h, "diff")):
                log.warning("layer sha256:%s is recorded but its directory is missing", h)


def _top_down(layers: dict[str, tuple[str | None, int]]) -> list[tuple[str, int]]:
    """Each stack from its top layer down to its base, as `docker rmi` lists them."""
    parents = {p for p, _ in layers.values()}
    tops = sorted(c for c in layers if c not in parents)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for c in tops + sorted(layers):         # the tail catches anything no top leads to
        while c in layers and c not in seen:
            seen.add(c)
            out.append((c, layers[c][1]))
            c = layers[c][0]
    return out


def _rmtree(path: str) -> None:
    def onerror(func, p, exc):
        log.warning("could not remove %s: %s", p, exc[1])
    shutil.rmtree(path, onerror=onerror)


def _regular_bytes(path: str) -> int:
    """A layer's size as moby counts it (and an unpack does): the bytes of
    its regular files, each inode once, and its symlinks' target lengths."""
    total = 0
    seen: set[int] = set()
    for root, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(root, f))
            if stat.S_ISLNK(st.st_mode):
                total += st.st_size
            elif stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


class _HashingWriter:
    """A write-only file that hashes what passes through it."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.count = 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.count += len(data)
        return self.raw.write(data)

    def tell(self) -> int:
        return self.count

    def flush(self) -> None:
        self.raw.flush()

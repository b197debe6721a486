"""Adding images: the one ingest path (`Ingester.ingest`) that `docker
load`, `import`, `pull` and `commit` all take, and load and import
themselves.

An ingest stages the layers it lacks, unlocked (unpacking into private
`.tmp-` dirs is the slow part), then takes the service's lock to move them
into place and record the image and its tags in one transaction. A layer
it meant to reuse may be removed meanwhile by an rmi (LayerMissing): then
it stages every layer and tries once more. Whatever is left staged is
discarded, so a failed ingest leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from ..errors import InvalidParameter, SystemError_
from ..store.db import Database
from .archive import ArchivedImage, SavedArchive, host_arch
from .changes import apply_changes
from .layers import LayerMissing, LayerStore, StagedLayer, chain_ids
from .reference import Reference
from .reference import repo_tag as parse_repo_tag
from .store import ImageStore
from .times import format_ns, now_ns, parse_ns
from .unpack import decompressed

# stage(todo, staged): stage the layers at the indexes in `todo` into
# staged[i]; the others exist already and are reused.
LayerStager = Callable[[list[int], list], None]


def image_id_of(raw_config: bytes) -> str:
    """An image's id: the sha256 of its config document."""
    return "sha256:" + hashlib.sha256(raw_config).hexdigest()


def config_bytes(doc: dict) -> bytes:
    """An image config as dockerd serialises one (compact JSON)."""
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Ingested:
    image_id: str
    moved_tags: list[tuple[Reference, str]]    # (tag, image it was taken from)


class Prestaged:
    """A stager for layers staged before the config could be written
    (import, commit: their diff id comes from unpacking). Hands each over
    at most once; `close` discards those never handed over. A layer it does
    not have cannot be staged again: the ingest then fails."""

    def __init__(self, layers: LayerStore, staged: dict[int, StagedLayer]):
        self.layers = layers
        self.staged = dict(staged)

    def __call__(self, todo: list[int], staged: list) -> None:
        for i in todo:
            if i in self.staged:
                staged[i] = self.staged.pop(i)

    def close(self) -> None:
        for s in self.staged.values():
            self.layers.discard(s)
        self.staged.clear()

    def __enter__(self) -> "Prestaged":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Ingester:
    def __init__(self, db: Database, layers: LayerStore, lock: threading.RLock, tmp_dir: str):
        self.db = db
        self.layers = layers
        self.lock = lock
        self.tmp_dir = tmp_dir

    def ingest(self, raw: bytes, stage: LayerStager, refs: Sequence[Reference] = (),
               job: str = "ingest") -> Ingested:
        """Record the image whose config is `raw`, its layers staged by
        `stage`, tagged `refs`; retried once with every layer staged if a
        layer to reuse went away meanwhile."""
        try:
            diff_ids = list(json.loads(raw)["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidParameter("invalid image config: no rootfs.diff_ids") from None
        image_id = image_id_of(raw)
        chains = chain_ids(diff_ids)
        for attempt in (0, 1):
            staged: list[StagedLayer | None] = [None] * len(chains)
            try:
                todo = [i for i, c in enumerate(chains) if attempt or not self.layers.exists(c)]
                stage(todo, staged)
                moved = self._record(raw, image_id, chains, staged, list(refs))
                return Ingested(image_id, moved)
            except LayerMissing:
                if attempt:
                    raise SystemError_(f"layer store changed during {job}") from None
            finally:
                for s in staged:
                    self.layers.discard(s)
        raise AssertionError("unreachable")

    def _record(self, raw: bytes, image_id: str, chains: list[str], staged: list[StagedLayer | None],
                refs: list[Reference]) -> list[tuple[Reference, str]]:
        """Move layers into place and record image and tags, atomically.
        Consumed entries of `staged` are set to None. Returns the tags
        taken over from other images."""
        try:
            created_ns = parse_ns(json.loads(raw).get("created") or "")
        except ValueError:
            created_ns = 0
        moved_tags = []
        with self.lock:
            new_dirs: list[str] = []
            try:
                with self.db.transaction() as conn:
                    for i, chain in enumerate(chains):
                        d = self.layers.install(conn, chain, chains[i - 1] if i else None, staged[i])
                        staged[i] = None
                        if d:
                            new_dirs.append(d)
                    size = LayerStore.total_size(conn, chains)
                    ImageStore.add(conn, image_id, raw, created_ns, size, chains)
                    when = format_ns(now_ns())
                    for ref in refs:
                        prev = ImageStore.set_tag(conn, str(ref), image_id, when)
                        if prev:
                            moved_tags.append((ref, prev))
            except BaseException:
                for d in new_dirs:
                    self.layers.uninstall_dir(d)
                raise
        return moved_tags

    # ------------------------------------------------------------ import

    def import_rootfs(self, tar_path: str, repo_tag: str | None = None,
                      changes: Iterable[str] = (), message: str = "") -> str:
        """`docker import`: one layer from a (possibly compressed) rootfs
        tar, a config built from Dockerfile `changes`. Returns the image id."""
        ref = parse_repo_tag(repo_tag, None) if repo_tag else None
        cfg = apply_changes(list(changes or []))          # bad changes fail before any unpacking
        with open(tar_path, "rb") as f:
            layer = self.layers.stage(f)
        with Prestaged(self.layers, {0: layer}) as source:
            created = format_ns(now_ns())
            history = {"created": created}
            if message:
                history["comment"] = message
            doc = {"architecture": host_arch(), "config": cfg, "created": created}
            if message:
                doc["comment"] = message
            doc.update({"history": [history], "os": "linux",
                        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}})
            return self.ingest(config_bytes(doc), source, [ref] if ref else [], "import").image_id

    # ------------------------------------------------------------ load

    def load(self, tar_path: str, progress: Callable[[str, int], None] | None = None
             ) -> tuple[list[str], list[str]]:
        """`docker load`: a docker-save or OCI-layout archive (possibly
        compressed). Returns the lines Docker prints ("Loaded image: ...")
        and the ids of the images loaded. Each image is stored whole or not
        at all. `progress(diff id, size)` is told of each layer unpacked."""
        lines: list[str] = []
        ids: list[str] = []
        with _PlainArchive(tar_path, self.tmp_dir) as plain, SavedArchive(plain) as archive:
            for item in archive.images():
                image_id, item_lines = self._load_one(archive, item, progress)
                lines += item_lines
                ids.append(image_id)
        return lines, ids

    def _load_one(self, archive: SavedArchive, item: ArchivedImage,
                  progress: Callable[[str, int], None] | None = None) -> tuple[str, list[str]]:
        try:
            doc = json.loads(item.config)
            diff_ids = list(doc["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidParameter("invalid image archive: image config without rootfs.diff_ids") from None
        if doc.get("os", "linux") != "linux":
            raise InvalidParameter(f"cannot load {doc['os']} image on linux")
        if len(diff_ids) != len(item.layers):
            raise InvalidParameter(f"invalid manifest, layers length mismatch: "
                                   f"expected {len(diff_ids)}, got {len(item.layers)}")

        def stage(todo: list[int], staged: list) -> None:
            for i in todo:
                with archive.open(item.layers[i]) as f:
                    s = staged[i] = self.layers.stage(f)
                if progress is not None:
                    progress(s.diff_id, os.path.getsize(os.path.join(s.path, "layer.tar")))
                if s.diff_id != diff_ids[i]:
                    raise InvalidParameter(f"invalid diffID for layer {i}: expected "
                                           f"{diff_ids[i]!r}, got {s.diff_id!r}")

        done = self.ingest(item.config, stage, item.refs, "load")
        lines = [f"The image {r.familiar()} already exists, renaming the old one with ID "
                 f"{prev} to empty string" for r, prev in done.moved_tags]
        if item.refs:
            lines += [f"Loaded image: {r.familiar()}" for r in item.refs]
        else:
            lines.append(f"Loaded image ID: {done.image_id}")
        return done.image_id, lines


class _PlainArchive:
    """Context manager: path of an uncompressed version of an archive."""

    def __init__(self, path: str, tmp_dir: str):
        self.path = path
        self.tmp_dir = tmp_dir
        self._tmp: str | None = None

    def __enter__(self) -> str:
        with open(self.path, "rb") as f:
            head = f.read(6)
        if not (head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"))):
            return self.path
        fd, self._tmp = tempfile.mkstemp(prefix="load-", suffix=".tar", dir=self.tmp_dir)
        try:
            with open(self.path, "rb") as src, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(decompressed(src), out, 1 << 20)
        except (OSError, EOFError) as e:
            raise InvalidParameter(f"invalid image archive: {e}") from None
        return self._tmp

    def __exit__(self, *exc) -> None:
        if self._tmp:
            os.unlink(self._tmp)

"""The image service: what the daemon and the API ask of images.

`ImageService` is a facade: it wires the stores to the parts that each do
one job and tells `docker events` what happened to images:

  lookup.py   find an image, read its config and layer dirs (no lock)
  views.py    inspect, list, history
  ingest.py   the one ingest (stage, record, retry once) for load,
              import, pull and commit; load and import themselves
  tags.py     tag
  delete.py   rmi, prune, garbage collection
  pull.py, push.py, save.py   registries and archives

Collaborators come in through the constructor: `in_use` (the containers
using an image, for rmi's conflicts), `is_running` and `emit` (the event
sink, `Events.emit`'s signature). Their attributes stay assignable while
the daemon still sets them after construction.
"""
from __future__ import annotations

import os
import shutil
import threading
from typing import BinaryIO, Callable, Iterable, Protocol, Sequence

from ..errors import DockyardError
from ..store.db import Database
from . import save as saving
from . import tags as tagging
from .delete import Deleter
from .distribution import DistributionStore
from .ingest import Ingested, Ingester, LayerStager
from .layers import LayerStore
from .lookup import CONFIG_DEFAULTS, Image, ImageLookup, short_id
from .progress import Progress
from .pull import AllTagsPuller, Puller
from .push import Pusher
from .reference import Reference
from .registry import AuthConfig
from .store import ImageStore
from .views import ImageViews

__all__ = ["ImageService", "Image", "CONFIG_DEFAULTS", "short_id", "EventSink", "ImageUsers", "Transfer"]


class EventSink(Protocol):
    """Where events go: `daemon.events.Events.emit`."""

    def __call__(self, type: str, action: str, actor_id: str, attributes: dict | None = None) -> object: ...


class ImageUsers(Protocol):
    """The containers created from an image: ids, or (id, running) pairs."""

    def __call__(self, image_id: str) -> list: ...


class Transfer:
    """A pull or push whose first phase (registry, manifest, what to send)
    is done, so its errors were the caller's; `run` streams the rest to a
    Progress and tells the events; `cancel` stops it from another thread."""

    def __init__(self, job, done: Callable[[], None]):
        self._job = job
        self._done = done

    def run(self, progress: Progress) -> None:
        self._job.run(progress)
        self._done()

    def cancel(self) -> None:
        self._job.cancel()


class ImageService:
    def __init__(self, db: Database, root: str, *, in_use: ImageUsers | None = None,
                 is_running: Callable[[str], bool] | None = None, emit: EventSink | None = None):
        self.db = db
        self.root = root
        self.tmp_dir = os.path.join(root, "tmp")   # spooled uploads; same fs as layers
        os.makedirs(root, mode=0o700, exist_ok=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)   # uploads cut off by a crash
        os.makedirs(self.tmp_dir, mode=0o700, exist_ok=True)
        self.layers = LayerStore(db, root)
        self.store = ImageStore(db)
        self.dist = DistributionStore(db)       # RepoDigests, layers' blob digests in registries
        # rmi refuses (or needs force) while containers use the image; for
        # bare ids `is_running` tells which run.
        self.in_use: ImageUsers = in_use or (lambda image_id: [])
        self.is_running: Callable[[str], bool] = is_running or (lambda container_id: False)
        self.emit: EventSink | None = emit
        lock = threading.RLock()        # changes: ingest's install, tag, delete
        self._lookup = ImageLookup(self.store, self.dist, self.layers)
        self._views = ImageViews(self._lookup, self.dist)
        self._ingester = Ingester(db, self.layers, lock, self.tmp_dir)
        self._deleter = Deleter(db, self._lookup, self.dist, lock, self._users)
        self._lock = lock

    # ================================================================ lookups

    def resolve(self, ref: str) -> Image:
        """By id, `sha256:<id>`, unique id prefix, or name[:tag]."""
        return self._lookup.resolve(ref)

    def config(self, image_id: str) -> dict:
        return self._lookup.config(image_id)

    def lower_dirs(self, image_id: str) -> list[str]:
        return self._lookup.lower_dirs(image_id)

    def repo_tags(self, image_id: str) -> list[str]:
        return self._lookup.repo_tags(image_id)

    def inspect(self, ref: str) -> dict:
        return self._views.inspect(ref)

    def list(self, all: bool = False, filters: dict | None = None) -> list[dict]:
        return self._views.list(all, filters)

    def history(self, ref: str) -> list[dict]:
        return self._views.history(ref)

    # ================================================================ adding images

    def ingest(self, raw_config: bytes, stage: LayerStager, refs: Sequence[Reference] = (),
               job: str = "ingest") -> Ingested:
        """Stage the layers (`stage(todo, staged)`), record the image and its
        tags, retry once if a reused layer went away (see ingest.py)."""
        return self._ingester.ingest(raw_config, stage, refs, job)

    def import_rootfs(self, tar_path: str, repo_tag: str | None = None,
                      changes: Iterable[str] = (), message: str = "") -> str:
        """`docker import`: returns the image id."""
        image_id = self._ingester.import_rootfs(tar_path, repo_tag, changes, message)
        self._event("import", image_id)
        return image_id

    def load(self, tar_path: str, progress: Callable[[str, int], None] | None = None) -> list[str]:
        """`docker load`: returns the lines Docker prints; one `load` event
        per image once all are in."""
        lines, ids = self._ingester.load(tar_path, progress)
        for image_id in dict.fromkeys(ids):
            self._event("load", image_id)
        return lines

    def pull(self, ref: Reference, auth: AuthConfig, platform: str | None = None,
             insecure: Sequence[str] = (), mirrors: Sequence[str] = (), concurrency: int = 3,
             any_registry: bool = False) -> Transfer:
        """`docker pull` up to its first output (blocking): the registry, the
        manifest, the config. No tag nor digest: every tag (`pull -a`).
        Docker Hub images come from `mirrors` first (any registry's with
        `any_registry`: the CRI's per-registry mirrors); `concurrency` layers
        download at once (--max-concurrent-downloads)."""
        if ref.tag or ref.digest:
            puller = Puller(self, ref, auth, platform, tuple(insecure), mirrors=tuple(mirrors),
                            concurrency=concurrency, any_registry=any_registry)
        else:
            puller = AllTagsPuller(self, ref, auth, platform, tuple(insecure))
        puller.resolve()
        return Transfer(puller, lambda: self._event("pull", puller.image_id, puller.ref.familiar()))

    def push(self, ref: Reference, auth: AuthConfig, insecure: Sequence[str] = (),
             concurrency: int = 5) -> Transfer:
        """`docker push` up to its first output (blocking): the local tags to
        send (no tag: every tag of the repository), the registry;
        `concurrency` layers go up at once (--max-concurrent-uploads)."""
        pusher = Pusher(self, ref, auth, tuple(insecure), concurrency=concurrency)
        pusher.resolve()

        def done() -> None:
            for tag, image_id in pusher.targets:
                self._event("push", image_id, f"{ref.familiar_name}:{tag}")
        return Transfer(pusher, done)

    # ================================================================ saving

    def save(self, names: list[str]) -> Callable[[BinaryIO], None]:
        """`docker save` (blocking): resolves every name first (unknown ones
        fail here, before any byte), then returns the writer of the tar."""
        entries = saving.plan(self, names)
        for e in entries:
            self._event("save", e.image_id, e.refs[0].familiar() if e.refs else e.image_id)
        return lambda out: saving.write(self.layers, entries, out)

    # ================================================================ tags and removal

    def tag(self, ref: str, repo: str, tag: str | None = None) -> None:
        """POST /images/{name}/tag."""
        img, new = tagging.add_tag(self.db, self._lookup, self._lock, ref, repo, tag)
        self._event("tag", img.id, new.familiar())

    def remove(self, ref: str, force: bool = False, noprune: bool = False) -> list[dict]:
        """DELETE /images/{name}: untag, and delete the image when no tag is
        left, then (unless `noprune`) its untagged parents nothing else holds."""
        image_id = self.resolve(ref).id
        chain, parent = {image_id}, self.dist.parent(image_id)
        while parent and parent not in chain:
            chain.add(parent)
            parent = self.dist.parent(parent)
        records = self._deleter.remove(ref, force, prune=not noprune)
        for r in records:
            if "Untagged" in r:
                self._event("untag", image_id)
            elif r.get("Deleted") in chain:
                self._event("delete", r["Deleted"])
        return records

    def collect_garbage(self) -> None:
        """Delete removed images no container uses any more (the daemon may
        call this after removing containers; rmi and prune do it anyway)."""
        self._deleter.collect_garbage()

    def prune(self, filters: dict | None = None) -> dict:
        """POST /images/prune."""
        report = self._deleter.prune(filters)
        for item in report.get("ImagesDeleted") or []:
            if item.get("Deleted"):
                self._event("delete", item["Deleted"])
        if self.emit is not None:
            self.emit("image", "prune", "", {"reclaimed": report.get("SpaceReclaimed") or 0})
        return report

    # ================================================================ helpers

    def _users(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) for each container using the image."""
        out = []
        for u in self.in_use(image_id):
            if isinstance(u, (tuple, list)):
                out.append((u[0], bool(u[1])))
            else:
                out.append((u, bool(self.is_running(u))))
        return out

    def _event(self, action: str, image_id: str, name: str | None = None) -> None:
        """An image event as moby's LogImageEvent makes it: the name, plus the
        image's labels as attributes."""
        if self.emit is None:
            return
        attrs: dict[str, str] = {}
        try:
            attrs.update(self.config(image_id).get("Labels") or {})
        except DockyardError:
            pass                                # deleted by now: no labels to add
        attrs["name"] = name or image_id
        self.emit("image", action, image_id, attrs)

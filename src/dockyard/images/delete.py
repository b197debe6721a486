"""Removing images: `docker rmi` (moby's daemon/images/image_delete.go,
including its conflict messages, because users and tests recognise
them), prune, and the garbage collection of images forced out from under
stopped containers (they stay hidden until those are gone, see store.py,
so the containers can still start).

Every change takes the service's lock, so a layer is never deleted while
an ingest is reusing it; layer dirs are only renamed away under the lock
and deleted after it (`purge`), which is the slow part.
"""
from __future__ import annotations

import threading
from typing import Callable

from .. import filters as query_filters
from ..errors import Conflict, InvalidParameter
from ..store.db import Database
from . import filters as flt
from .distribution import DistributionStore
from .lookup import Image, ImageLookup, is_full_id, short_id
from .reference import parse, parse_normalized
from .store import ImageStore
from .views import until_filter

# (container id, running) for each container using an image
Users = Callable[[str], list[tuple[str, bool]]]


class Deleter:
    def __init__(self, db: Database, lookup: ImageLookup, dist: DistributionStore,
                 lock: threading.RLock, users: Users):
        self.db = db
        self.lookup = lookup
        self.store = lookup.store
        self.layers = lookup.layers
        self.dist = dist
        self.lock = lock
        self.users = users

    # ------------------------------------------------------------ rmi

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[dict]:
        """DELETE /images/{name}: untag, and delete the image when no tag is
        left; with `prune` (not ?noprune) its untagged parents go too, as
        far as nothing else holds them (moby's imageDeleteHelper)."""
        trash: list[str] = []
        try:
            self._collect_garbage(trash)
            return self._remove(ref, force, prune, trash)
        finally:
            self.layers.purge(trash)     # the slow part, after the lock

    def collect_garbage(self) -> None:
        """Delete removed images no container uses any more."""
        trash: list[str] = []
        try:
            self._collect_garbage(trash)
        finally:
            self.layers.purge(trash)

    def _collect_garbage(self, trash: list[str]) -> None:
        with self.lock:
            for image_id in self.store.removed_ids():
                if not self.users(image_id):
                    with self.db.transaction() as conn:
                        ImageStore.delete(conn, image_id)
                        gone = self.layers.release_unused(conn)
                    trash += self.layers.remove_dirs([c for c, _ in gone])

    def _remove(self, ref: str, force: bool, prune: bool, trash: list[str]) -> list[dict]:
        with self.lock:
            img = self.lookup.resolve(ref)
            records: list[dict] = []
            refs = self.store.tags_of(img.id)
            users = self.users(img.id)
            if not _is_id_prefix(img.id, ref) or self._is_tag_of(ref, img.id):
                # A name was given: drop that tag; the image goes only with its last tag.
                if not force and len(refs) == 1 and users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" (must force) - '
                        f"container {short_id(users[0][0])} is using its referenced image {short_id(img.id)}")
                named = parse_normalized(ref).with_default_tag()
                if named.digest:
                    self.dist.remove_repo_digest(f"{named.name}@{named.digest}")
                with self.db.transaction() as conn:
                    ImageStore.delete_tag(conn, str(named))
                records.append({"Untagged": named.familiar()})
                if not named.digest and not any(parse(r).name == named.name for r in self.store.tags_of(img.id)):
                    # moby: with the repository's last tag go its digest references
                    for d in self.dist.repo_digests(img.id):
                        if parse(d).name == named.name and self.dist.remove_repo_digest(d):
                            records.append({"Untagged": parse(d).familiar()})
                if self.store.tags_of(img.id) or self.dist.repo_digests(img.id):
                    return records
                self.delete(img, records, users, force, trash, quiet=True, prune=prune)
                return records
            digests = self.dist.repo_digests(img.id)
            if len(refs) <= 1 and (refs or digests) and \
                    len({parse(r).name for r in refs + digests}) == 1:
                # An id with one tag (and digests) of one repository: they go too,
                # unless a container or a child image objects (moby's isSingleReference).
                _check_conflict(img.id, users, refs + digests, force, active_reference=False,
                                children=self.dist.children(img.id))
                with self.db.transaction() as conn:
                    for r in refs:
                        ImageStore.delete_tag(conn, r)
                for r in refs:
                    records.append({"Untagged": parse(r).familiar()})
                for d in digests:
                    self.dist.remove_repo_digest(d)
                    records.append({"Untagged": parse(d).familiar()})
            self.delete(img, records, users, force, trash, quiet=False, prune=prune)
            return records

    def _is_tag_of(self, ref: str, image_id: str) -> bool:
        """Did `ref` find the image through a tag? moby's ImageDelete asks only
        isImageIDPrefix, so there `rmi bb` of an image tagged `bb` whose id
        happens to start with "bb" is taken as a removal by id (other conflicts,
        other messages). resolve() lets a tag win over an id prefix, so rmi does too."""
        if is_full_id(ref):
            return False
        try:
            named = parse_normalized(ref)
        except InvalidParameter:
            return False
        return named.digest is None and self.store.tagged(str(named.with_default_tag())) == image_id

    def delete(self, img: Image, records: list[dict], users: list[tuple[str, bool]], force: bool,
               trash: list[str], quiet: bool, prune: bool = False) -> int:
        """moby's imageDeleteHelper, under the lock: drop remaining tags, the
        image, and layers no other image uses (their dirs are added to
        `trash`). `quiet`: an image that is not dangling (tagged, or the
        parent of another) or that a container uses stays without an error.
        `prune`: then its parent, quietly and unforced, and so up the chain.
        Returns the bytes freed."""
        refs = self.store.tags_of(img.id)
        digests = self.dist.repo_digests(img.id)
        children = self.dist.children(img.id)
        try:
            _check_conflict(img.id, users, refs + digests, force, children=children)
        except DeleteConflict as c:
            if quiet and (refs or digests or children or c.used):
                return 0
            raise
        parent = self.dist.parent(img.id) if prune else None
        with self.db.transaction() as conn:
            _untag_all(conn, refs, digests, records)
            if users:
                # forced past stopped containers: they keep config and layers
                ImageStore.mark_removed(conn, img.id)
                records.append({"Deleted": img.id})
                return 0
            ImageStore.delete(conn, img.id)
            gone = self.layers.release_unused(conn)
        trash += self.layers.remove_dirs([c for c, _ in gone])
        records.append({"Deleted": img.id})
        records.extend({"Deleted": c} for c, _ in gone)
        freed = sum(size for _, size in gone)
        parent_img = self.lookup.get(parent) if parent else None
        if parent_img is not None:
            freed += self.delete(parent_img, records, self.users(parent_img.id), False, trash,
                                 quiet=True, prune=True)
        return freed

    # ------------------------------------------------------------ prune

    def prune(self, filters: dict | None = None) -> dict:
        """POST /images/prune: dangling images no container uses (all
        unused images with dangling=false)."""
        f = flt.normalize(filters, flt.PRUNE_FILTERS)
        dangling_only = flt.bool_filter(f, "dangling") is not False
        if len(f.get("until") or []) > 1:
            raise InvalidParameter("more than one until filter specified")
        until = until_filter(f)
        deleted: list[dict] = []
        reclaimed = 0
        trash: list[str] = []
        try:
            self._collect_garbage(trash)
            reclaimed = self._prune(f, dangling_only, until, deleted, trash)
        finally:
            self.layers.purge(trash)
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def _prune(self, f: dict, dangling_only: bool, until: int | None, deleted: list[dict],
               trash: list[str]) -> int:
        reclaimed = 0
        with self.lock:
            tags = self.store.all_tags()
            digests = self.dist.all_repo_digests()
            parents = self.dist.parents()
            with_children = set(parents.values())
            for img in self.lookup.all():
                if self.lookup.get(img.id) is None:
                    continue            # gone with a child pruned before it
                if not (tags.get(img.id) or digests.get(img.id)) and img.id in with_children:
                    continue            # an intermediate: goes with its last child (moby's top images)
                if dangling_only and (tags.get(img.id) or digests.get(img.id)):
                    continue
                if until is not None and not img.created_ns < until:
                    continue
                labels = img.labels
                if not query_filters.prune_labels_match(f, labels):     # moby's matchLabels
                    continue
                users = self.users(img.id)
                if users:
                    continue
                if img.id in with_children:
                    # tagged, with children: moby's prune removes its references, the
                    # image stays for its children (an intermediate now)
                    with self.db.transaction() as conn:
                        _untag_all(conn, self.store.tags_of(img.id), self.dist.repo_digests(img.id), deleted)
                    continue
                try:
                    reclaimed += self.delete(img, deleted, users, True, trash, quiet=False, prune=True)
                except DeleteConflict:
                    continue            # a child image holds it (moby's imageDeleteFailed)
        return reclaimed


def _untag_all(conn, refs: list[str], digests: list[str], records: list[dict]) -> None:
    for r in refs:
        ImageStore.delete_tag(conn, r)
        records.append({"Untagged": parse(r).familiar()})
    for d in digests:
        conn.execute("DELETE FROM repo_digests WHERE ref=?", (d,))
        records.append({"Untagged": parse(d).familiar()})


class DeleteConflict(Conflict):
    def __init__(self, image_id: str, hard: bool, used: bool, what: str):
        how = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id(image_id)} ({how}) - {what}")
        self.used = used


def _check_conflict(image_id: str, users: list[tuple[str, bool]], refs: list[str], force: bool,
                    active_reference: bool = True, children: list[str] | tuple = ()) -> None:
    """moby's checkImageDeleteConflict: child images and running containers
    always block ("cannot be forced"); more tags and stopped containers block
    unless forced."""
    if children:
        raise DeleteConflict(image_id, True, False, "image has dependent child images")
    running = [c for c, is_running in users if is_running]
    if running:
        raise DeleteConflict(image_id, True, True,
                             f"image is being used by running container {short_id(running[0])}")
    if force:
        return
    if active_reference and refs:
        raise DeleteConflict(image_id, False, False, "image is referenced in multiple repositories")
    if users:
        raise DeleteConflict(image_id, False, True,
                             f"image is being used by stopped container {short_id(users[0][0])}")


def _is_id_prefix(image_id: str, ref: str) -> bool:
    """moby's isImageIDPrefix: was the image named by (a prefix of) its id?"""
    return image_id.startswith(ref) or image_id.split(":", 1)[1].startswith(ref)

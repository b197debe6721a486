"""The image service: what the daemon and the API ask of images.

Lookups (`resolve`, `config`, `lower_dirs`, `inspect`, `list`) read the
store without locking. Changes (`import_rootfs`, `load`, `tag`, `remove`)
do their slow part — unpacking layers into private temp dirs — unlocked,
then take one lock to move layers into place and record the image in one
transaction; `remove` takes the same lock, so a layer is never deleted
while an import is reusing it.

`remove` follows moby's daemon/images/image_delete.go, including its
conflict messages, because users and tests recognise them. An image
forced out from under stopped containers stays hidden until they are
gone (see store.py), so those containers can still start.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from ..errors import Conflict, InvalidParameter, NoSuchImage, SystemError_
from ..store.db import Database
from . import filters as flt
from .archive import ArchivedImage, SavedArchive, host_arch
from .changes import apply_changes
from .distribution import DistributionStore
from .layers import LayerMissing, LayerStore, StagedLayer, chain_ids
from .reference import Reference, parse, parse_normalized
from .reference import repo_tag as parse_repo_tag
from .store import ImageStore
from .times import ZERO_TIME, format_ns, now_ns, parse_filter_time, parse_ns
from .unpack import decompressed

_FULL_ID = re.compile(r"^(?:sha256:)?([a-f0-9]{64})$")
_HEX_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]+)$")
_OTHER_DIGEST = re.compile(r"^(?:sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$")   # valid, never an image id

# The image config's "config" object as the daemon sees it: every key
# present, Docker's zero value when the image does not set it.
CONFIG_DEFAULTS: dict = {
    "User": "", "ExposedPorts": None, "Env": None, "Cmd": None, "Healthcheck": None,
    "ArgsEscaped": False, "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None, "StopSignal": "", "Shell": None,
}


def short_id(image_or_container_id: str) -> str:
    """stringid.TruncateID: no algorithm prefix, 12 hex digits."""
    return image_or_container_id.split(":", 1)[-1][:12]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    id: str                 # "sha256:<64 hex>"
    config: dict            # the whole image config document
    created_ns: int
    size: int
    last_tag_time: str | None

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])


class ImageService:
    def __init__(self, db: Database, root: str):
        self.db = db
        self.root = root
        self.tmp_dir = os.path.join(root, "tmp")   # spooled uploads; same fs as layers
        os.makedirs(root, mode=0o700, exist_ok=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)   # uploads cut off by a crash
        os.makedirs(self.tmp_dir, mode=0o700, exist_ok=True)
        self.layers = LayerStore(db, root)
        self.store = ImageStore(db)
        self.dist = DistributionStore(db)       # RepoDigests, layers' blob digests in registries
        self._lock = threading.RLock()
        # Set by the daemon: the containers created from an image, as ids or
        # as (id, running) pairs; for bare ids `is_running` tells which run.
        # rmi refuses (or needs force) while containers use the image.
        self.in_use: Callable[[str], list] = lambda image_id: []
        self.is_running: Callable[[str], bool] = lambda container_id: False

    # ================================================================ lookups

    def resolve(self, ref: str) -> Image:
        """By id, `sha256:<id>`, unique id prefix, or name[:tag] (moby's
        GetImage order: a tag wins over an id prefix). NoSuchImage if none;
        InvalidParameter for a malformed reference."""
        m = _FULL_ID.match(ref)
        if m:
            img = self._get("sha256:" + m.group(1))
            if img is None:
                raise NoSuchImage(ref)
            return img
        if _OTHER_DIGEST.match(ref):
            raise NoSuchImage(ref)
        named = parse_normalized(ref)
        if named.digest is not None:
            image_id = self.dist.by_digest(f"{named.name}@{named.digest}")
            img = self._get(image_id) if image_id else None
            if img is not None:
                return img
        if named.digest is None:
            image_id = self.store.tagged(str(named.with_default_tag()))
            if image_id:
                img = self._get(image_id)
                if img is not None:
                    return img
        m = _HEX_PREFIX.match(ref)
        if m:
            ids = self.store.ids_with_prefix(m.group(1))
            if len(ids) == 1:      # ambiguous is "No such image" too, as in Docker
                img = self._get(ids[0])
                if img is not None:
                    return img
        raise NoSuchImage(named.with_default_tag().familiar())

    def _get(self, image_id: str, include_removed: bool = False) -> Image | None:
        row = self.store.get(image_id, include_removed)
        return self._row_image(row) if row is not None else None

    def _by_id(self, image_id: str) -> Image:
        """For the daemon's own calls with a container's image id: a removed
        image that containers still use is found too."""
        img = self._get(image_id, include_removed=True) if image_id.startswith("sha256:") else None
        return img if img is not None else self.resolve(image_id)

    def config(self, image_id: str) -> dict:
        """The image's container defaults (Env, Cmd, Entrypoint, WorkingDir,
        User, ExposedPorts, Volumes, Labels, StopSignal, Healthcheck, ...),
        every key present."""
        cfg = self._by_id(image_id).config.get("config") or {}
        return {k: copy.deepcopy(cfg.get(k, default)) for k, default in CONFIG_DEFAULTS.items()}

    def lower_dirs(self, image_id: str) -> list[str]:
        """Unpacked layer dirs, topmost first, for overlay `lowerdir=`. An
        image without layers gets one empty dir (overlay needs a lower)."""
        img = self._by_id(image_id)
        dirs = [self.layers.diff_dir(c) for c in reversed(self.store.chain_ids(img.id))]
        return dirs or [self.layers.empty_dir]

    def repo_tags(self, image_id: str) -> list[str]:
        return [parse(r).familiar() for r in self.store.tags_of(image_id)]

    # ================================================================ views

    def inspect(self, ref: str) -> dict:
        """GET /images/{name}/json."""
        img = self.resolve(ref)
        c = img.config
        out = {
            "Id": img.id,
            "RepoTags": self.repo_tags(img.id),
            "RepoDigests": [parse(r).familiar() for r in self.dist.repo_digests(img.id)],
            "Parent": self.dist.parent(img.id) or "",
            "Comment": c.get("comment", ""),
        }
        if c.get("created"):
            out["Created"] = format_ns(img.created_ns)
        out.update({
            "DockerVersion": c.get("docker_version", ""),
            "Author": c.get("author", ""),
            "Config": _present(c.get("config") or {}),
            "Architecture": c.get("architecture", ""),
        })
        if c.get("variant"):
            out["Variant"] = c["variant"]
        out["Os"] = c.get("os", "")
        if c.get("os.version"):
            out["OsVersion"] = c["os.version"]
        lowers = self.lower_dirs(img.id)
        data = {"UpperDir": lowers[0]}
        if len(lowers) > 1:
            data["LowerDir"] = ":".join(lowers[1:])
        out.update({
            "Size": img.size,
            "GraphDriver": {"Name": "overlay2", "Data": data},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": img.last_tag_time or ZERO_TIME},
        })
        return out

    def list(self, all: bool = False, filters: dict | None = None) -> list[dict]:
        """GET /images/json. `all` changes nothing yet: no image here has
        children (no local builds), so none is hidden as intermediate."""
        f = flt.normalize(filters, flt.LIST_FILTERS)
        dangling = flt.bool_filter(f, "dangling")
        before = self._filter_time(f, "before")
        since = self._filter_time(f, "since")
        until = _until(f)
        tags = self.store.all_tags()
        digests = self.dist.all_repo_digests()
        out = []
        for img in (self._row_image(r) for r in self.store.all()):
            if before is not None and not img.created_ns < before:
                continue
            if since is not None and not img.created_ns > since:
                continue
            if until is not None and not img.created_ns < until:
                continue
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if "label" in f and not flt.labels_match(f["label"], labels):
                continue
            refs = [parse(r) for r in tags.get(img.id, [])]
            if "reference" in f:
                refs = [r for r in refs if any(flt.reference_match(p, r) for p in f["reference"])]
            if not refs and not ("reference" not in f and digests.get(img.id)):
                if dangling is False or "reference" in f:
                    continue
            elif dangling:
                continue           # a digest reference (pulled by digest) is not dangling either
            out.append({
                "Containers": -1,
                "Created": img.created_ns // 1_000_000_000,
                "Id": img.id,
                "Labels": labels,
                "ParentId": "",
                "RepoDigests": [parse(r).familiar() for r in digests.get(img.id, [])],
                "RepoTags": [r.familiar() for r in refs],
                "SharedSize": -1,
                "Size": img.size,
            })
        return out

    def _row_image(self, row) -> Image:
        return Image(row.id, json.loads(row.config), row.created_ns, row.size, row.last_tag_time)

    def _filter_time(self, f: dict[str, list[str]], key: str) -> int | None:
        if not f.get(key):
            return None
        return self.resolve(f[key][-1]).created_ns     # the last one wins, as in moby

    def history(self, ref: str) -> list[dict]:
        """GET /images/{name}/history: newest first; only the newest entry
        names the image, the rest are <missing> (no parent images here)."""
        img = self.resolve(ref)
        chains = self.store.chain_ids(img.id)
        sizes = {r["chain_id"]: r["size"] for r in self.db.query(
            "SELECT chain_id, size FROM unpacked_layers WHERE chain_id IN (%s)" % ",".join("?" * len(chains)),
            tuple(chains))} if chains else {}
        hist = img.config.get("history") or [{"created": img.config.get("created")} for _ in chains]
        out, layer = [], 0
        for h in hist:
            size = 0
            if not h.get("empty_layer") and layer < len(chains):
                size = sizes.get(chains[layer], 0)
                layer += 1
            out.append({
                "Id": "<missing>",
                "Created": _unix(h.get("created")),
                "CreatedBy": h.get("created_by", ""),
                "Tags": None,
                "Size": size,
                "Comment": h.get("comment", ""),
            })
        out.reverse()
        if out:
            out[0]["Id"] = img.id
            out[0]["Tags"] = self.repo_tags(img.id) or None
        # a committed image's older entries belong to its parent: name them, as moby does
        parent, seen = self.dist.parent(img.id), {img.id}
        while parent and parent not in seen:
            seen.add(parent)
            pimg = self._get(parent)
            if pimg is None:
                break
            n = len(pimg.config.get("history") or pimg.diff_ids)
            if 0 < n <= len(out):
                out[len(out) - n]["Id"] = parent
                out[len(out) - n]["Tags"] = self.repo_tags(parent) or None
            parent = self.dist.parent(parent)
        return out

    # ================================================================ adding images

    def import_rootfs(self, tar_path: str, repo_tag: str | None = None,
                      changes: Iterable[str] = (), message: str = "") -> str:
        """`docker import`: one layer from a (possibly compressed) rootfs
        tar, a config built from Dockerfile `changes`. Returns the image id."""
        ref = parse_repo_tag(repo_tag, None) if repo_tag else None
        cfg = apply_changes(list(changes or []))          # bad changes fail before any unpacking
        with open(tar_path, "rb") as f:
            staged = [self.layers.stage(f)]
        diff_id = staged[0].diff_id
        created = format_ns(now_ns())
        history = {"created": created}
        if message:
            history["comment"] = message
        doc = {"architecture": host_arch(), "config": cfg, "created": created}
        if message:
            doc["comment"] = message
        doc.update({"history": [history], "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
        raw = json.dumps(doc, separators=(",", ":")).encode()
        image_id = _sha256(raw)
        try:
            self._commit(raw, image_id, [diff_id], staged, [ref] if ref else [])
        finally:
            for s in staged:
                self.layers.discard(s)
        return image_id

    def load(self, tar_path: str, progress: Callable[[str, int], None] | None = None) -> list[str]:
        """`docker load`: a docker-save or OCI-layout archive (possibly
        compressed). Returns the lines Docker prints ("Loaded image: ...").
        Each image is stored whole or not at all. `progress(diff id, size)`
        is told of each layer unpacked."""
        lines: list[str] = []
        with self._plain_copy(tar_path) as plain, SavedArchive(plain) as archive:
            for item in archive.images():
                lines += self._load_one(archive, item, progress)
        return lines

    def _load_one(self, archive: SavedArchive, item: ArchivedImage,
                  progress: Callable[[str, int], None] | None = None) -> list[str]:
        image_id = _sha256(item.config)
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
        chains = chain_ids(diff_ids)
        for reuse in (True, False):    # second round: a reused layer was removed meanwhile
            staged: list[StagedLayer | None] = []
            try:
                for i, (chain, member) in enumerate(zip(chains, item.layers)):
                    if reuse and self.layers.exists(chain):
                        staged.append(None)
                        continue
                    with archive.open(member) as f:
                        s = self.layers.stage(f)
                    staged.append(s)
                    if progress is not None:
                        progress(s.diff_id, os.path.getsize(os.path.join(s.path, "layer.tar")))
                    if s.diff_id != diff_ids[i]:
                        raise InvalidParameter(f"invalid diffID for layer {i}: expected "
                                               f"{diff_ids[i]!r}, got {s.diff_id!r}")
                moved = self._commit(item.config, image_id, diff_ids, staged, item.refs)
                break
            except LayerMissing:
                if not reuse:
                    raise SystemError_("layer store changed during load") from None
            finally:
                for s in staged:
                    self.layers.discard(s)
        lines = [f"The image {r.familiar()} already exists, renaming the old one with ID "
                 f"{prev} to empty string" for r, prev in moved]
        if item.refs:
            lines += [f"Loaded image: {r.familiar()}" for r in item.refs]
        else:
            lines.append(f"Loaded image ID: {image_id}")
        return lines

    def _commit(self, raw: bytes, image_id: str, diff_ids: list[str],
                staged: list[StagedLayer | None], refs: list[Reference]) -> list[tuple[Reference, str]]:
        """Move layers into place and record image and tags, atomically.
        Consumed entries of `staged` are set to None. Returns the tags
        taken over from other images."""
        chains = chain_ids(diff_ids)
        try:
            created_ns = parse_ns(json.loads(raw).get("created") or "")
        except ValueError:
            created_ns = 0
        moved_tags = []
        with self._lock:
            new_dirs: list[str] = []
            try:
                with self.db.transaction() as conn:
                    for i, chain in enumerate(chains):
                        d = self.layers.install(conn, chain, chains[i - 1] if i else None, staged[i])
                        staged[i] = None
                        if d:
                            new_dirs.append(d)
                    size = 0
                    if chains:
                        size = conn.execute(
                            "SELECT COALESCE(SUM(size),0) FROM unpacked_layers WHERE chain_id IN (%s)"
                            % ",".join("?" * len(chains)), tuple(chains)).fetchone()[0]
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

    def _plain_copy(self, path: str):
        """The archive uncompressed, for random access: the file itself if
        it is a plain tar, else a decompressed temp copy."""
        return _PlainArchive(path, self.tmp_dir)

    # ================================================================ tags

    def tag(self, ref: str, repo: str, tag: str | None = None) -> None:
        """POST /images/{name}/tag."""
        img = self.resolve(ref)
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        new = parse_repo_tag(repo, tag)
        if new.familiar_name == "sha256":
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        with self._lock, self.db.transaction() as conn:
            if not conn.execute("SELECT 1 FROM images WHERE id=?", (img.id,)).fetchone():
                raise NoSuchImage(ref)
            ImageStore.set_tag(conn, str(new), img.id, format_ns(now_ns()))

    # ================================================================ removal

    def remove(self, ref: str, force: bool = False, noprune: bool = False) -> list[dict]:
        """DELETE /images/{name}: untag, and delete the image when no tag is
        left. `noprune` is accepted: there are no parent images to prune."""
        trash: list[str] = []
        try:
            self._collect_garbage(trash)
            return self._remove(ref, force, trash)
        finally:
            self.layers.purge(trash)     # the slow part, after the lock

    def collect_garbage(self) -> None:
        """Delete removed images no container uses any more (the daemon may
        call this after removing containers; rmi and prune do it anyway)."""
        trash: list[str] = []
        try:
            self._collect_garbage(trash)
        finally:
            self.layers.purge(trash)

    def _collect_garbage(self, trash: list[str]) -> None:
        with self._lock:
            for image_id in self.store.removed_ids():
                if not self._users(image_id):
                    with self.db.transaction() as conn:
                        ImageStore.delete(conn, image_id)
                        gone = self.layers.release_unused(conn)
                    trash += self.layers.remove_dirs([c for c, _ in gone])

    def _remove(self, ref: str, force: bool, trash: list[str]) -> list[dict]:
        with self._lock:
            img = self.resolve(ref)
            records: list[dict] = []
            refs = self.store.tags_of(img.id)
            users = self._users(img.id)
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
                self._delete(img, records, users, force, trash, quiet=True)
                return records
            digests = self.dist.repo_digests(img.id)
            if len(refs) <= 1 and (refs or digests) and \
                    len({parse(r).name for r in refs + digests}) == 1:
                # An id with one tag (and digests) of one repository: they go too,
                # unless a container objects (moby's isSingleReference).
                self._check_conflict(img.id, users, refs + digests, force, active_reference=False)
                with self.db.transaction() as conn:
                    for r in refs:
                        ImageStore.delete_tag(conn, r)
                for r in refs:
                    records.append({"Untagged": parse(r).familiar()})
                for d in digests:
                    self.dist.remove_repo_digest(d)
                    records.append({"Untagged": parse(d).familiar()})
            self._delete(img, records, users, force, trash, quiet=False)
            return records

    def _is_tag_of(self, ref: str, image_id: str) -> bool:
        """Did `ref` find the image through a tag? moby's ImageDelete asks only
        isImageIDPrefix, so there `rmi bb` of an image tagged `bb` whose id
        happens to start with "bb" is taken as a removal by id (other conflicts,
        other messages). resolve() lets a tag win over an id prefix, so rmi does too."""
        if _FULL_ID.match(ref):
            return False
        try:
            named = parse_normalized(ref)
        except InvalidParameter:
            return False
        return named.digest is None and self.store.tagged(str(named.with_default_tag())) == image_id

    def _users(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) for each container using the image."""
        out = []
        for u in self.in_use(image_id):
            if isinstance(u, (tuple, list)):
                out.append((u[0], bool(u[1])))
            else:
                out.append((u, bool(self.is_running(u))))
        return out

    def _check_conflict(self, image_id: str, users: list[tuple[str, bool]], refs: list[str], force: bool,
                        active_reference: bool = True) -> None:
        """moby's checkImageDeleteConflict: running containers always block
        ("cannot be forced"); more tags and stopped containers block unless forced."""
        running = [c for c, is_running in users if is_running]
        if running:
            raise _DeleteConflict(image_id, True, True,
                                  f"image is being used by running container {short_id(running[0])}")
        if force:
            return
        if active_reference and refs:
            raise _DeleteConflict(image_id, False, False, "image is referenced in multiple repositories")
        if users:
            raise _DeleteConflict(image_id, False, True,
                                  f"image is being used by stopped container {short_id(users[0][0])}")

    def _delete(self, img: Image, records: list[dict], users: list[tuple[str, bool]], force: bool,
                trash: list[str], quiet: bool) -> int:
        """imageDeleteHelper: drop remaining tags, the image, and layers no
        other image uses (their dirs are added to `trash`). `quiet`: after
        untagging by name, an image a container still uses stays (dangling)
        without an error. Returns the bytes freed."""
        refs = self.store.tags_of(img.id)
        digests = self.dist.repo_digests(img.id)
        try:
            self._check_conflict(img.id, users, refs + digests, force)
        except _DeleteConflict as c:
            if quiet and (refs or c.used):
                return 0
            raise
        with self.db.transaction() as conn:
            for r in refs:
                ImageStore.delete_tag(conn, r)
                records.append({"Untagged": parse(r).familiar()})
            for d in digests:
                conn.execute("DELETE FROM repo_digests WHERE ref=?", (d,))
                records.append({"Untagged": parse(d).familiar()})
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
        return sum(size for _, size in gone)

    def prune(self, filters: dict | None = None) -> dict:
        """POST /images/prune: dangling images no container uses (all
        unused images with dangling=false)."""
        f = flt.normalize(filters, flt.PRUNE_FILTERS)
        dangling_only = flt.bool_filter(f, "dangling") is not False
        if len(f.get("until") or []) > 1:
            raise InvalidParameter("more than one until filter specified")
        until = _until(f)
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
        with self._lock:
            tags = self.store.all_tags()
            digests = self.dist.all_repo_digests()
            for row in self.store.all():
                img = self._row_image(row)
                if dangling_only and (tags.get(img.id) or digests.get(img.id)):
                    continue
                if until is not None and not img.created_ns < until:
                    continue
                labels = (img.config.get("config") or {}).get("Labels") or {}
                if "label" in f and not flt.labels_match(f["label"], labels):
                    continue
                if "label!" in f and any(flt.labels_match([w], labels) for w in f["label!"]):
                    continue
                users = self._users(img.id)
                if users:
                    continue
                reclaimed += self._delete(img, deleted, users, True, trash, quiet=False)
        return reclaimed


# ---------------------------------------------------------------- helpers

class _DeleteConflict(Conflict):
    def __init__(self, image_id: str, hard: bool, used: bool, what: str):
        how = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id(image_id)} ({how}) - {what}")
        self.used = used


def _until(f: dict) -> int | None:
    """The `until` filter in ns; a bad value is a 400 as in moby, not a 500."""
    if not f.get("until"):
        return None
    try:
        return parse_filter_time(f["until"][-1])
    except ValueError as e:
        raise InvalidParameter(f"invalid value for 'until' filter: {e}") from None


def _is_id_prefix(image_id: str, ref: str) -> bool:
    """moby's isImageIDPrefix: was the image named by (a prefix of) its id?"""
    return image_id.startswith(ref) or image_id.split(":", 1)[1].startswith(ref)


def _present(cfg: dict) -> dict:
    """The config as Docker 28 shows it: unset fields left out."""
    return {k: v for k, v in cfg.items() if v not in (None, "", [], {}, False)}


def _unix(created: str | None) -> int:
    try:
        return parse_ns(created or "") // 1_000_000_000
    except ValueError:
        return 0


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

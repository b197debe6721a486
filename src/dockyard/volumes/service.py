"""Volumes: the `local` driver, their records, and which container uses
which mount.

A volume is a directory `<data-root>/volumes/<name>/_data`; with driver
options (`type`, `device`, `o`) that directory is a mount point, mounted on
first use and unmounted when the volume is removed. Records (volumes, and
each container's mount points) live in SQLite, so a crash loses neither; a
volume is in use while any container, running or not, names it.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import time

from .. import filters, linux
from ..errors import Conflict, InvalidParameter, NoSpace, NotFound
from . import mountspec
from ..fsutil import dir_size as _dir_size
from ..store.db import is_full

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY, driver TEXT NOT NULL, labels TEXT NOT NULL,
    options TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS container_mounts (
    container_id TEXT PRIMARY KEY, mounts TEXT NOT NULL);
"""
DRIVER_OPTIONS = ("type", "device", "o", "size")
LIST_FILTERS = {"name", "driver", "label", "dangling", "all"}     # `all` is accepted, and means nothing, in a list
PRUNE_FILTERS = {"name", "driver", "label", "all"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class VolumeService:
    def __init__(self, db, data_root: str):
        self.db = db
        self.root = os.path.join(data_root, "volumes")
        os.makedirs(self.root, mode=0o701, exist_ok=True)
        db.ensure_schema(SCHEMA)
        self.owner: tuple[int, int] | None = None     # the remapped root, with --userns-remap
        for leftover in os.listdir(self.root):            # removals a crash interrupted
            if leftover.startswith(".trash-"):
                shutil.rmtree(os.path.join(self.root, leftover), ignore_errors=True)

    # ------------------------------------------------------------ records
    def _path(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    def _row(self, name: str):
        return self.db.one("SELECT * FROM volumes WHERE name=?", (name,))

    def _view(self, row) -> dict:
        options = json.loads(row["options"])
        return {"CreatedAt": row["created"], "Driver": row["driver"], "Labels": json.loads(row["labels"]),
                "Mountpoint": self._path(row["name"]), "Name": row["name"],
                "Options": options or None, "Scope": "local"}

    def get(self, name: str) -> dict:
        row = self._row(name)
        if row is None:
            raise NotFound(f"get {name}: no such volume")
        return self._view(row)

    def list(self, f: filters.Filters | None = None) -> list[dict]:
        """All volumes, or those `GET /volumes` filters keep (name, driver,
        label, dangling)."""
        vols = [self._view(r) for r in self.db.query("SELECT * FROM volumes ORDER BY name")]
        if not f:
            return vols
        filters.validate(f, LIST_FILTERS)
        keep = self._predicate(f)
        return [v for v in vols if keep(v)]

    def _predicate(self, f: filters.Filters):
        dangling = filters.bool_value(f, "dangling")

        def keep(vol: dict) -> bool:
            if "name" in f and not any(n in vol["Name"] for n in f["name"]):
                return False
            if "driver" in f and vol["Driver"] not in f["driver"]:
                return False
            if not filters.labels_match(f, vol["Labels"]):
                return False
            return dangling is None or dangling != bool(self.users(vol["Name"]))
        return keep

    def create(self, name: str | None = None, driver: str | None = None, options: dict | None = None,
               labels: dict | None = None) -> dict:
        driver = driver or "local"
        if driver != "local":
            raise NotFound(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        if name:
            name = mountspec.validate_name(name)
        else:       # moby's VolumesService.Create: a volume made without a name is anonymous (prune takes it)
            name = mountspec.anonymous_name()
            labels = {**(labels or {}), mountspec.ANONYMOUS_LABEL: ""}
        options = self._checked_options(name, options or {})
        made = False
        try:
            with self.db.transaction():      # against a concurrent create or rm of this name
                existing = self._row(name)
                if existing is not None:
                    return self._view(existing)        # Docker: creating an existing volume is a no-op
                made = True      # no record: the directory, however far it got, is this create's
                self._make(name, driver, options, labels)
        except BaseException as e:
            if made:         # the record was rolled back: so goes the directory
                shutil.rmtree(os.path.dirname(self._path(name)), ignore_errors=True)
            if isinstance(e, OSError) and is_full(e):      # moby's wording, not Python's
                raise NoSpace(f"mkdir {e.filename or self._path(name)}") from e
            raise
        return self.get(name)

    @staticmethod
    def _checked_options(name: str, options: dict) -> dict:
        options = {str(k): str(v) for k, v in options.items()}
        for key in options:
            if key not in DRIVER_OPTIONS:
                raise InvalidParameter(f'create {name}: invalid option key: "{key}"')
        if options.get("type") and not options.get("device"):
            raise InvalidParameter(f'create {name}: missing required option: "device"')
        return options

    def _make(self, name: str, driver: str, options: dict, labels: dict | None) -> None:
        """The volume's directory and record; the caller holds the
        transaction and removes the directory when it does not commit."""
        path = self._path(name)
        os.makedirs(path, mode=0o755, exist_ok=True)
        if self.owner:
            os.chown(path, *self.owner)
        self.db.execute("INSERT INTO volumes(name, driver, labels, options, created) VALUES (?,?,?,?,?)",
                        (name, driver, json.dumps(labels or {}), json.dumps(options), _now()))

    def users(self, name: str) -> list[str]:
        out = []
        for row in self.db.query("SELECT container_id, mounts FROM container_mounts"):
            if any(p["Type"] == "volume" and p["Name"] == name for p in json.loads(row["mounts"])):
                out.append(row["container_id"])
        return out

    def remove(self, name: str, force: bool = False) -> None:
        """Docker's 409 while any container names it. The check and the
        removal are one transaction, as `attach`'s existence check and
        reference are: a create racing this rm either records its
        reference first (then this is refused) or finds no volume."""
        trash = ""
        try:
            with self.db.transaction():
                row = self._row(name)
                if row is None:
                    if force:
                        return
                    raise NotFound(f"get {name}: no such volume")
                users = self.users(name)
                if users:
                    raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
                path = self._path(name)
                linux.umount(path)
                # out of the way first (atomic), then the record, then the data: a
                # crash in between never lets a new volume of this name see old data
                trash = os.path.join(self.root, f".trash-{name}-{os.getpid()}-{time.monotonic_ns()}")
                try:
                    os.rename(os.path.dirname(path), trash)
                except FileNotFoundError:
                    trash = ""
                self.db.execute("DELETE FROM volumes WHERE name=?", (name,))
        except BaseException:
            if trash:        # the record stays (rolled back): so does its data
                os.rename(trash, os.path.dirname(self._path(name)))
            raise
        if trash:
            shutil.rmtree(trash, ignore_errors=True)

    def prune(self, f: filters.Filters | None = None) -> dict:
        """`POST /volumes/prune`: unused anonymous volumes (any unused volume
        with `all=true`) that the name, driver and label filters keep."""
        f = dict(f or {})
        if "dangling" in f:
            raise InvalidParameter("invalid filter 'dangling'")
        filters.validate(f, PRUNE_FILTERS)
        all_ = bool(filters.bool_value(f, "all"))
        keep = self._predicate(f)
        deleted, reclaimed = [], 0
        in_use = set()
        for row in self.db.query("SELECT mounts FROM container_mounts"):
            in_use.update(p["Name"] for p in json.loads(row["mounts"]) if p["Type"] == "volume")
        for vol in self.list():
            if vol["Name"] in in_use or not keep(vol):
                continue
            if not all_ and mountspec.ANONYMOUS_LABEL not in (vol["Labels"] or {}):
                continue
            size = _dir_size(vol["Mountpoint"])
            try:
                self.remove(vol["Name"])
            except (Conflict, NotFound):
                continue
            deleted.append(vol["Name"])
            reclaimed += size
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ------------------------------------------------------------ containers
    def plan(self, host_config: dict, config: dict, image_config: dict, containers,
             api_before_1_44: bool = False) -> list[dict]:
        """The new container's mount points (400 on bad input; nothing made)."""
        sources = []
        for entry in host_config.get("VolumesFrom") or ():
            ref, mode = mountspec.parse_volumes_from(entry)
            other = containers.get(ref)
            sources.append((self.mounts(other.id), mode))
        return mountspec.plan(host_config, config, image_config, os.path.exists, sources, api_before_1_44,
                              volume_exists=lambda name: self._row(name) is not None)

    def attach(self, cid: str, points: list[dict]) -> None:
        """Record the container's mount points, creating the volumes they
        name: one transaction with the existence checks, so a concurrent
        `volume rm` either sees the reference (409) or removed the volume
        before the check (then it is made again here, as Docker does for a
        named volume a create asks for)."""
        made = []
        try:
            with self.db.transaction():
                for p in points:
                    if p["Type"] == "volume" and self._row(p["Name"]) is None:
                        labels = dict(p.get("VolumeLabels") or {})
                        if p.get("Anonymous"):
                            labels[mountspec.ANONYMOUS_LABEL] = ""
                        options = self._checked_options(p["Name"], p.get("VolumeOptions") or {})
                        self._make(p["Name"], "local", options, labels)
                        made.append(p["Name"])
                self.db.execute("INSERT OR REPLACE INTO container_mounts(container_id, mounts) VALUES (?,?)",
                                (cid, json.dumps(points)))
        except BaseException:      # the records are rolled back; the directories go too
            for name in made:
                shutil.rmtree(os.path.dirname(self._path(name)), ignore_errors=True)
            raise

    def mounts_of(self, cids: list[str]) -> dict[str, list[dict]]:
        """mounts() of many containers in one query (a listing)."""
        out: dict[str, list[dict]] = {}
        wanted = set(cids)
        for row in self.db.query("SELECT container_id, mounts FROM container_mounts"):
            if row["container_id"] in wanted:
                out[row["container_id"]] = json.loads(row["mounts"])
        return out

    def mounts(self, cid: str) -> list[dict]:
        row = self.db.one("SELECT mounts FROM container_mounts WHERE container_id=?", (cid,))
        return json.loads(row["mounts"]) if row else []

    def ensure(self, c, image_config: dict, containers) -> list[dict]:
        """The container's mount points; recorded now if create did not get
        to it (a crash between reserving the name and recording mounts)."""
        row = self.db.one("SELECT mounts FROM container_mounts WHERE container_id=?", (c.id,))
        if row is not None:
            return json.loads(row["mounts"])
        points = self.plan(c.host_config, c.config, image_config, containers)
        self.attach(c.id, points)
        return points

    def uses(self, cid: str, refs: list[str]) -> bool:
        """`ps --filter volume=X`: X names one of its volumes, or a mount's
        destination or bind source."""
        for p in self.mounts(cid):
            if p.get("Name") in refs or p["Destination"] in refs or (p["Type"] == "bind" and p["Source"] in refs):
                return True
        return False

    def inspect_mounts(self, cid: str, points: list[dict] | None = None) -> list[dict]:
        """Mounts as inspect and ps show them; points: the container's
        recorded mount points when the caller has them (mounts_of)."""
        out = []
        for p in self.mounts(cid) if points is None else points:
            if p.get("Hidden"):
                continue
            shown = mountspec.public(p)
            if p["Type"] == "volume":
                shown["Source"] = self._path(p["Name"])
            out.append(shown)
        return out

    def release(self, cid: str, remove_anonymous: bool) -> None:
        """The container is gone: forget its mounts; with `rm -v`, remove the
        anonymous volumes no other container uses."""
        points = self.mounts(cid)
        self.db.execute("DELETE FROM container_mounts WHERE container_id=?", (cid,))
        if not remove_anonymous:
            return
        for p in points:
            if p["Type"] == "volume" and p.get("Anonymous"):
                try:
                    self.remove(p["Name"])
                except (Conflict, NotFound):
                    pass

    def prepare(self, points: list[dict], rootfs: str,
                rro_error: str | None = mountspec.RRO_NOT_PROBED) -> list[dict]:
        """At start: mount option volumes, create missing `-v` bind sources,
        copy the image's content into empty volumes; the OCI mounts
        (`rro_error`: why read-only ones cannot be recursively so here)."""
        out = []
        for p in mountspec.depth_sorted(points):
            if p["Type"] == "volume":
                row = self._row(p["Name"])
                if row is None:      # removed behind our back (e.g. by hand): make it again
                    self.create(p["Name"])
                    row = self._row(p["Name"])
                source = self._path(p["Name"])
                if not os.path.isdir(source):     # its removal was cut short by a crash
                    os.makedirs(source, mode=0o755)
                    if self.owner:
                        os.chown(source, *self.owner)
                self._mount_options(source, json.loads(row["options"]))
                if p.get("CopyData"):
                    copy_up(_inside(rootfs, p["Destination"]), source)
                if p.get("Subpath"):     # resolved inside the volume: links cannot lead out
                    source = _inside(source, p["Subpath"])
                    if not os.path.exists(source):
                        raise InvalidParameter(f"cannot access path {source}: no such file or directory")
            elif p["Type"] == "bind":
                source = p["Source"]
                if p.get("CreateSource") and not os.path.lexists(source):
                    os.makedirs(source, mode=0o755, exist_ok=True)
            else:
                source = "tmpfs"
            out.append(mountspec.oci_mount(p, source, rro_error))
        return out

    def _mount_options(self, path: str, options: dict) -> None:
        if not options.get("type") or linux.is_mountpoint(path):
            return
        data = options.get("o") or ""
        if options.get("size") and "size=" not in data:
            data = ",".join(filter(None, [data, "size=" + options["size"]]))
        flags = 0
        if "bind" in data.split(","):
            flags |= linux.MS_BIND
            data = ",".join(o for o in data.split(",") if o not in ("bind", "rbind"))
        try:
            linux.mount(options.get("device") or "none", path, options["type"], flags, data or None)
        except OSError as e:
            raise InvalidParameter(f"error while mounting volume '{path}': failed to mount local volume: "
                                   f"mount {options.get('device')}:{path}, data: {data}: {e.strerror}") from None


def _inside(rootfs: str, dest: str) -> str:
    """`dest` inside the rootfs with symlinks resolved as the container would
    see them, so an image's `/data -> /etc` never reaches the host's /etc."""
    parts = [p for p in dest.split("/") if p]
    resolved, hops = "", 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        full = os.path.join(rootfs, candidate)
        if os.path.islink(full):
            hops += 1
            if hops > 40:
                raise InvalidParameter(f"too many levels of symbolic links at {dest}")
            target = os.readlink(full)
            if target.startswith("/"):
                resolved = ""
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved = candidate
    return os.path.join(rootfs, resolved)


def copy_up(src: str, dst: str) -> None:
    """Docker's copy-up: an empty volume gets the image's content at its
    mount point (owners, modes and links kept). Symlinked mount points are
    resolved inside the rootfs by the caller (`_inside`)."""
    try:
        if os.listdir(dst) or not os.path.isdir(src):
            return
    except OSError:
        return
    st = os.lstat(src)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.chown(dst, st.st_uid, st.st_gid)
    _copy_dir(src, dst)


def _copy_dir(src: str, dst: str) -> None:
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            os.symlink(os.readlink(s), d)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(d)
            _copy_dir(s, d)
            os.chmod(d, stat.S_IMODE(st.st_mode))
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(s, d, follow_symlinks=False)
            os.chmod(d, stat.S_IMODE(st.st_mode))
        else:
            os.mknod(d, st.st_mode, st.st_rdev)
        os.lchown(d, st.st_uid, st.st_gid)

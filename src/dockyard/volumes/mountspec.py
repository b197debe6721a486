"""A container's mounts from its create request, as Docker reads them:
HostConfig.Binds (`-v src:dst[:mode]`), HostConfig.Mounts (`--mount`),
HostConfig.Tmpfs (`--tmpfs`), Config.Volumes and the image's VOLUMEs
(anonymous volumes). Pure: no I/O except the bind-source check `--mount`
asks for, which the caller passes in as `exists`.

A mount point is a plain dict (persisted as JSON with the container):
Type, Name, Source, Destination, Driver, Mode, RW, Propagation (Docker's
inspect `Mounts` keys) plus our own Anonymous, CopyData, NonRecursive,
Tmpfs (the tmpfs mount options), CreateSource, Hidden (`--tmpfs` mounts,
which Docker does not list in Mounts), VolumeLabels/VolumeOptions (for a
volume `--mount` creates), ReadOnlyNonRecursive/ReadOnlyForceRecursive
(BindOptions: a read-only mount is read-only all the way down unless
asked otherwise, see `oci_mount`).
"""
from __future__ import annotations

import posixpath
import re
import secrets
from typing import Callable, Iterable, Mapping

from ..errors import InvalidParameter, NotFound, SystemError_

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_INTERNAL = ("Anonymous", "CopyData", "NonRecursive", "Tmpfs", "CreateSource", "Hidden",
             "VolumeLabels", "VolumeOptions", "Subpath", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive")


def validate_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path")
    return name


def anonymous_name() -> str:
    return secrets.token_hex(32)


def _point(type_: str, destination: str, **kw) -> dict:
    point = {"Type": type_, "Name": "", "Source": "", "Destination": destination, "Driver": "",
             "Mode": "", "RW": True, "Propagation": "", "Anonymous": False, "CopyData": False,
             "NonRecursive": False, "Tmpfs": [], "CreateSource": False, "Hidden": False,
             "VolumeLabels": {}, "VolumeOptions": {}, "Subpath": "", "ReadOnlyNonRecursive": False,
             "ReadOnlyForceRecursive": False}
    point.update(kw)
    return point


def public(point: Mapping) -> dict:
    """The mount as `docker inspect` shows it (Name and Driver are omitempty)."""
    return {k: v for k, v in point.items()
            if k not in _INTERNAL and not (k in ("Name", "Driver") and not v)}


def _check_destination(dest: str, type_: str, spec: str | None = None) -> str:
    def fail(why: str):
        prefix = f"invalid volume specification: '{spec}': " if spec is not None else ""
        raise InvalidParameter(f'{prefix}invalid mount config for type "{type_}": {why}')
    if not dest:
        fail("field Target must not be empty")
    if not dest.startswith("/"):
        fail(f"invalid mount path: '{dest}' mount path must be absolute")
    dest = posixpath.normpath(dest)
    if dest == "/":
        fail("invalid specification: destination can't be '/'")
    return dest


# ---------------------------------------------------------------- -v / Binds

def parse_bind(spec: str) -> dict:
    """`/host:/ctr[:opts]` (bind) or `name:/ctr[:opts]` (named volume)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    source, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    rw, propagation, copy, relabel = _parse_mode(mode, spec)
    if source.startswith("/"):
        dest = _check_destination(dest, "bind", spec)
        return _point("bind", dest, Source=posixpath.normpath(source), Mode=mode, RW=rw,
                      Propagation=propagation or "rprivate", CreateSource=True)
    if source.startswith("."):
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    dest = _check_destination(dest, "volume", spec)
    validate_name(source)
    if propagation:
        raise InvalidParameter(f"invalid volume specification: '{spec}': propagation is only "
                               "allowed on bind mounts")
    return _point("volume", dest, Name=source, Driver="local", Mode=mode or "z", RW=rw,
                  CopyData=copy)


def _parse_mode(mode: str, spec: str) -> tuple[bool, str, bool, str]:
    rw, propagation, copy, relabel = True, "", True, ""
    seen: set[str] = set()
    for opt in filter(None, mode.split(",")):
        kind = ("rw" if opt in ("ro", "rw") else "label" if opt in ("z", "Z")
                else "prop" if opt in PROPAGATIONS else "copy" if opt in ("nocopy", "copy") else "")
        if not kind or kind in seen:
            raise InvalidParameter(f"invalid mode: {mode}")
        seen.add(kind)
        if opt == "ro":
            rw = False
        elif kind == "prop":
            propagation = opt
        elif opt == "nocopy":
            copy = False
        elif kind == "label":
            relabel = opt
    return rw, propagation, copy, relabel


# ---------------------------------------------------------------- --mount / Mounts

def from_mount(m: Mapping, exists: Callable[[str], bool]) -> dict:
    """One HostConfig.Mounts entry (what `--mount` becomes)."""
    if not isinstance(m, Mapping):
        raise InvalidParameter("invalid mount config: each mount must be an object")
    type_ = m.get("Type") or ""
    source, target = m.get("Source") or "", m.get("Target") or ""
    read_only = bool(m.get("ReadOnly"))

    def fail(why: str):
        raise InvalidParameter(f'invalid mount config for type "{type_}": {why}')
    if type_ not in ("bind", "volume", "tmpfs"):
        raise InvalidParameter(f'invalid mount config for type "{type_}": mount type unknown')
    dest = _check_destination(target, type_)
    if type_ == "bind":
        if m.get("VolumeOptions"):
            fail("field VolumeOptions must not be specified")
        if not source:
            fail("field Source must not be empty")
        if not source.startswith("/"):
            fail(f"invalid mount path: '{source}' mount path must be absolute")
        opts = m.get("BindOptions") or {}
        create = bool(opts.get("CreateMountpoint"))
        if not create and not exists(source):
            fail(f"bind source path does not exist: {source}")
        propagation = opts.get("Propagation") or "rprivate"
        if propagation not in PROPAGATIONS:
            fail(f"invalid propagation mode: {propagation}")
        return _point("bind", dest, Source=posixpath.normpath(source), RW=not read_only,
                      Propagation=propagation, NonRecursive=bool(opts.get("NonRecursive")),
                      CreateSource=create, ReadOnlyNonRecursive=bool(opts.get("ReadOnlyNonRecursive")),
                      ReadOnlyForceRecursive=bool(opts.get("ReadOnlyForceRecursive")))
    if type_ == "volume":
        if m.get("BindOptions"):
            fail("field BindOptions must not be specified")
        opts = m.get("VolumeOptions") or {}
        driver = ((opts.get("DriverConfig") or {}).get("Name")) or "local"
        if driver != "local":
            raise NotFound(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        anonymous = not source
        if source:
            validate_name(source)
        subpath = opts.get("Subpath") or ""
        if subpath and (subpath.startswith("/") or ".." in subpath.split("/")):
            fail(f"subpath must be a relative path within the volume: {subpath}")
        return _point("volume", dest, Name=source or anonymous_name(), Driver="local", Mode="z",
                      RW=not read_only, Anonymous=anonymous,
                      CopyData=not opts.get("NoCopy") and not subpath,   # no copy-up into a subpath
                      VolumeLabels=dict(opts.get("Labels") or {}),
                      Subpath=posixpath.normpath(subpath) if subpath else "",
                      VolumeOptions=dict((opts.get("DriverConfig") or {}).get("Options") or {}))
    if source:
        fail("field Source must not be specified")
    if m.get("BindOptions") or m.get("VolumeOptions"):
        fail("field BindOptions must not be specified" if m.get("BindOptions")
             else "field VolumeOptions must not be specified")
    opts = m.get("TmpfsOptions") or {}
    options = []
    if opts.get("SizeBytes"):
        size = int(opts["SizeBytes"])
        if size < 0:
            fail("invalid tmpfs size")
        options.append(f"size={size}")
    if opts.get("Mode"):
        options.append(f"mode={int(opts['Mode']):o}")
    for pair in opts.get("Options") or ():
        options.append("=".join(str(x) for x in pair if x != ""))
    return _point("tmpfs", dest, RW=not read_only, Tmpfs=tmpfs_options(",".join(options), read_only))


# ---------------------------------------------------------------- --tmpfs / Tmpfs

def tmpfs_options(text: str, read_only: bool = False) -> list[str]:
    """Docker's tmpfs defaults (noexec,nosuid,nodev) with the user's options
    on top; `exec`/`suid`/`dev` switch a default off."""
    opts = ["noexec", "nosuid", "nodev"]
    for opt in filter(None, (o.strip() for o in (text or "").split(","))):
        if opt in ("exec", "suid", "dev"):
            opts = [o for o in opts if o != "no" + opt]
        elif opt in ("noexec", "nosuid", "nodev"):
            if opt not in opts:
                opts.append(opt)
        elif opt in ("ro", "rw"):
            read_only = opt == "ro"
        else:
            key = opt.partition("=")[0]
            opts = [o for o in opts if o.partition("=")[0] != key] + [opt]
    if read_only:
        opts.append("ro")
    return opts


def from_tmpfs(tmpfs: Mapping[str, str] | None) -> list[dict]:
    out = []
    for dest, options in (tmpfs or {}).items():
        dest = _check_destination(dest, "tmpfs")
        out.append(_point("tmpfs", dest, Tmpfs=tmpfs_options(options or ""), Hidden=True))
    return out


# ---------------------------------------------------------------- all together

def plan(host_config: Mapping, config: Mapping, image_config: Mapping,
         exists: Callable[[str], bool], volumes_from: Iterable[tuple[list[dict], str]] = (),
         api_before_1_44: bool = False, volume_exists: Callable[[str], bool] = lambda name: False) -> list[dict]:
    """Every mount point of a new container, in Docker's precedence:
    Binds and Mounts, then Tmpfs, then --volumes-from, then anonymous
    volumes for Config.Volumes and the image's VOLUMEs not covered yet.
    `volumes_from` gives (the other container's mount points, mode).
    A client older than API 1.44 keeps its read-only binds read-only on
    their top mount only, as they were then (moby's
    DefaultReadOnlyNonRecursive), and cannot ask for ReadOnlyForceRecursive.
    `HostConfig.VolumeDriver` is the driver of the volumes `-v` and
    `Volumes` make (not of `--mount`'s): only the local one exists, and a
    container none of whose volumes uses it is made, as by dockerd."""
    points: list[dict] = []
    taken: set[str] = set()

    def add(point: dict) -> None:
        if point["Destination"] in taken:
            raise InvalidParameter(f"Duplicate mount point: {point['Destination']}")
        taken.add(point["Destination"])
        points.append(point)

    dash_v = [parse_bind(spec) for spec in host_config.get("Binds") or ()]
    binds = dash_v + [from_mount(m, exists) for m in host_config.get("Mounts") or ()]
    for point in binds:
        if api_before_1_44 and point["Type"] == "bind":
            if point.get("ReadOnlyForceRecursive"):
                raise InvalidParameter("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer")
            if not point["RW"]:
                point["ReadOnlyNonRecursive"] = True
        add(point)
    for point in from_tmpfs(host_config.get("Tmpfs")):
        add(point)
    for their_points, mode in volumes_from:
        for theirs in their_points:
            if theirs["Type"] == "tmpfs" or theirs["Destination"] in taken:
                continue
            mine = dict(theirs, Anonymous=False)
            if mode:
                mine["RW"] = mode == "rw"
            taken.add(mine["Destination"])
            points.append(mine)
    anonymous = list((config.get("Volumes") or {}).keys()) + list((image_config.get("Volumes") or {}).keys())
    by_driver = [p for p in dash_v if p["Type"] == "volume"]       # the volumes VolumeDriver makes
    for dest in anonymous:
        dest = _check_destination(dest, "volume")
        if dest in taken:
            continue
        taken.add(dest)
        points.append(_point("volume", dest, Name=anonymous_name(), Driver="local", Anonymous=True,
                             CopyData=True))
        by_driver.append(points[-1])
    driver = host_config.get("VolumeDriver") or "local"
    if driver != "local" and by_driver:
        _no_volume_driver(driver, by_driver[0]["Name"], volume_exists(by_driver[0]["Name"]))
    return points


def _no_volume_driver(driver: str, name: str, known: bool) -> None:
    """moby's volume store on a driver it cannot find: a volume it knows
    fails the name conflict check on the bare lookup error, a new one its
    create (`create NAME: …`); both 404."""
    msg = f'error looking up volume plugin {driver}: plugin "{driver}" not found'
    raise NotFound(msg if known else f"create {name}: {msg}")


def parse_volumes_from(entry: str) -> tuple[str, str]:
    """`container[:ro|rw]` → (container, mode)."""
    ref, _, mode = entry.partition(":")
    if mode not in ("", "ro", "rw"):
        raise InvalidParameter(f"invalid mode: {mode}")
    if not ref:
        raise InvalidParameter(f"invalid volumes-from specification: '{entry}'")
    return ref, mode


RRO_NOT_PROBED = "rro is not supported: support not probed"


def oci_mount(point: Mapping, source: str, rro_error: str | None = RRO_NOT_PROBED) -> dict:
    """The OCI spec entry for a mount point whose host path is `source`.

    A read-only bind or volume is recursively read-only (`rro`: its
    submounts too) as with Docker 25+, unless ReadOnlyNonRecursive; where
    the kernel or runtime cannot (`rro_error` says why; None: both can,
    as the caller found out) it falls back to `ro`, or fails with that
    reason when ReadOnlyForceRecursive asked for it. The conflicts fail the start with moby's words (a System error,
    as moby's spec errors are)."""
    if point["Type"] == "tmpfs":
        return {"destination": point["Destination"], "type": "tmpfs", "source": "tmpfs",
                "options": list(point.get("Tmpfs") or ["noexec", "nosuid", "nodev"])}
    options = ["bind" if point.get("NonRecursive") else "rbind",
               point.get("Propagation") or "rprivate"]
    read_only = not point.get("RW", True)
    non_recursive, force = bool(point.get("ReadOnlyNonRecursive")), bool(point.get("ReadOnlyForceRecursive"))
    if not read_only and non_recursive:
        raise SystemError_("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive")
    if not read_only and force:
        raise SystemError_("mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive")
    if non_recursive and force:
        raise SystemError_("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive")
    if read_only:
        recursive = not non_recursive
        if recursive and rro_error:
            if force:
                raise SystemError_(rro_error)
            recursive = False
        options.append("rro" if recursive else "ro")
    return {"destination": point["Destination"], "type": "bind", "source": source, "options": options}


def wants_rro(points: Iterable[Mapping]) -> bool:
    """Whether any of these mounts would be recursively read-only (so the
    kernel's and runtime's support need asking)."""
    return any(p["Type"] != "tmpfs" and not p.get("RW", True) and not p.get("ReadOnlyNonRecursive")
               for p in points)


def depth_sorted(points: Iterable[dict]) -> list[dict]:
    """Parents before children (Docker sorts mounts by path depth)."""
    return sorted(points, key=lambda p: len([x for x in p["Destination"].split("/") if x]))

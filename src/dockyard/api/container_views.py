"""Containers in Docker's JSON shapes: inspect (`GET /containers/{id}/json`)
and list (`GET /containers/json`)."""
from __future__ import annotations

import functools
import json
import os
import secrets
import shlex
import time
import weakref
from typing import TYPE_CHECKING

from ..daemon import networking
from ..daemon.container import Container
from ..daemon.container_filters import Lookups
from ..daemon.logs import parse_time
from ..units import human_duration

if TYPE_CHECKING:
    from ..daemon.daemon import Daemon


@functools.lru_cache(maxsize=8192)
def _epoch(rfc: str) -> float | None:
    """An RFC 3339 time as epoch seconds (None if unreadable), parsed once:
    a listing reads two per container, the same strings every time."""
    try:
        return parse_time(rfc.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ago(rfc: str) -> str:
    t = _epoch(rfc)
    if t is None:
        return ""
    return human_duration(time.time() - t)



def status_text(c: Container) -> str:
    st = c.state
    if st.status == "running":
        h = (st.health or {}).get("Status")
        health = {"starting": " (health: starting)", "healthy": " (healthy)", "unhealthy": " (unhealthy)"}
        return f"Up {_ago(st.started_at)}{health.get(h, '')}"
    if st.status == "paused":
        return f"Up {_ago(st.started_at)} (Paused)"
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) {_ago(st.finished_at)} ago"
    if st.status == "exited":
        return f"Exited ({st.exit_code}) {_ago(st.finished_at)} ago"
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "dead":
        return "Dead"
    return "Created"


def _command(c: Container, image_cfg: dict) -> tuple[str, list[str]]:
    from ..runtime.command import resolve_command
    try:
        args = resolve_command(c.config, image_cfg)
    except Exception:
        args = [""]
    return args[0], args[1:]


def network_settings(d: Daemon, c: Container) -> dict:
    net = c.network or {}
    mode = c.network_mode
    nets = {} if mode.startswith("container:") else networking.networks_view(d, c)
    ep = nets.get("bridge") or {}   # the deprecated top-level fields are the default bridge's, as dockerd's
    return {"Bridge": "", "SandboxID": c.id if net.get("SandboxKey") else "", "SandboxKey": net.get("SandboxKey", ""),
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": networking.ports_view(c, d.images.config(c.image) or {}), "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": ep.get("EndpointID", ""), "Gateway": ep.get("Gateway", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": ep.get("IPAddress", ""),
            "IPPrefixLen": ep.get("IPPrefixLen", 0), "IPv6Gateway": "", "MacAddress": ep.get("MacAddress", ""),
            "Networks": nets}


def add_legacy_aliases(out: dict) -> None:
    """Before API 1.45, a user network's Aliases also list the short id and the hostname (moby's
    router; dockerd 20.10 put them there itself)."""
    extra = [out["Id"][:12], (out.get("Config") or {}).get("Hostname") or ""]
    for name, ep in (out["NetworkSettings"].get("Networks") or {}).items():
        if networking.user_defined(name):
            ep["Aliases"] = list(dict.fromkeys([*(ep.get("Aliases") or []), *extra]))


def inspect(d: Daemon, c: Container, size: bool = False) -> dict:
    img_cfg = d.images.config(c.image) or {}
    path, args = _command(c, img_cfg)
    paths = d.paths(c)
    cdir = paths.dir
    etc = (c.network or {}).get("EtcFiles") or {}
    fs = paths.rootfs
    out = {
        "Id": c.id, "Created": c.created, "Path": path, "Args": args, "State": c.state.to_api(),
        "Image": c.image, "ResolvConfPath": etc.get("/etc/resolv.conf", os.path.join(cdir, "resolv.conf")),
        "HostnamePath": etc.get("/etc/hostname", os.path.join(cdir, "hostname")),
        "HostsPath": etc.get("/etc/hosts", os.path.join(cdir, "hosts")), "LogPath": paths.log_path,
        "Name": "/" + c.name, "RestartCount": c.restart_count, "Driver": "overlay2", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": {**c.host_config, "Links": networking.links_view(d, c)},
        "GraphDriver": {"Name": "overlay2", "Data": {
            "LowerDir": ":".join(d.images.lower_dirs(c.image)) if c.image else "",
            "UpperDir": fs.upper, "WorkDir": fs.work, "MergedDir": fs.merged}},
        "Mounts": d.volumes.inspect_mounts(c.id), "Config": c.config, "NetworkSettings": network_settings(d, c),
        "StartTrace": c.start_trace or None,
    }
    out["ExecIDs"] = d.execs.live_ids(c.id) or None
    if size:
        from ..fsutil import dir_size as _dir_size
        out["SizeRw"] = _dir_size(fs.upper)
        out["SizeRootFs"] = out["SizeRw"]
    return out


# id(container) -> (what it was made from, the entry's Command and Created):
# both fixed at create (its Config and image never change), made once per
# container instead of on every listing; dropped with the container object
_fixed: dict[int, tuple[tuple, str, int]] = {}


def _fixed_part(c: Container, lookups: Lookups) -> tuple[str, int]:
    key = (c.id, c.image, c.created)
    hit = _fixed.get(id(c))
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    path, args = _command(c, lookups.image_config(c.image))
    cmd = " ".join([path] + [shlex.quote(a) if (" " in a or not a) else a for a in args])
    created = int(_epoch(c.created) or 0)
    if hit is None:
        weakref.finalize(c, _fixed.pop, id(c), None)
    _fixed[id(c)] = (key, cmd, created)
    return cmd, created


def summary(d: Daemon, c: Container, lookups: Lookups | None = None,
            mounts: dict[str, list[dict]] | None = None) -> dict:
    """One `GET /containers/json` entry. A listing passes its memoized
    lookups and every container's mount points read at once (summaries)."""
    lookups = lookups or Lookups(d)
    cmd, created = _fixed_part(c, lookups)
    mode = c.network_mode
    nets = {} if mode.startswith("container:") else networking.networks_view(d, c, lookups.network)
    return {"Id": c.id, "Names": ["/" + c.name], "Image": c.image_ref, "ImageID": c.image,
            "Command": cmd, "Created": created, "Ports": networking.ports_summary(c), "Labels": c.config.get("Labels") or {},
            "State": c.state.status, "Status": status_text(c),
            "HostConfig": {"NetworkMode": mode},
            "NetworkSettings": {"Networks": nets},
            "Mounts": d.volumes.inspect_mounts(c.id, None if mounts is None else mounts.get(c.id, []))}


def summaries(d: Daemon, found: list[Container], lookups: Lookups | None = None) -> list[dict]:
    """The list's entries: per-container work only, the lookups shared."""
    lookups = lookups or Lookups(d)
    mounts = d.volumes.mounts_of([c.id for c in found]) if len(found) > 1 else None
    return [summary(d, c, lookups, mounts) for c in found]


class _Row:
    """A listing's row of one container, encoded once and reused while
    nothing it shows has changed (encoded_summaries). key: name, state,
    image, the networks' generation (a network made or removed: its name or
    id in the row); an endpoint's change replaces c.network /
    c.networking_config (never changed in place), so those are compared by
    identity, and held here so a new object cannot reuse a freed one's id. A
    volume's mount points are fixed at create. The Status between head and
    tail moves with the clock: its encoding is kept with the state it was
    made from and the span of wall-clock time it stays right for."""
    __slots__ = ("key", "network", "networking_config", "head", "tail", "status_key", "status", "made", "until")

    def __init__(self, key: tuple, c: Container, head: bytes, tail: bytes):
        self.key, self.network, self.networking_config = key, c.network, c.networking_config
        self.head, self.tail = head, tail
        self.status_key: tuple | None = None
        self.status = b""
        self.made = self.until = 0.0

    def status_of(self, c: Container, now: float) -> bytes:
        st = c.state
        key = (st.status, st.started_at, st.finished_at, st.exit_code, st.health and st.health.get("Status"))
        if key != self.status_key or not self.made <= now < self.until:
            self.status = json.dumps(status_text(c)).encode()
            self.status_key, self.made, self.until = key, now, _status_until(c, now)
        return self.status


def _status_until(c: Container, now: float) -> float:
    """Until when status_text(c), as of now, reads the same: its duration
    (HumanDuration's) changes on whole seconds under a minute and on whole
    minutes beyond (hours round at half past, days and more at whole hours)."""
    st = c.state
    since = {"running": st.started_at, "paused": st.started_at, "restarting": st.finished_at,
             "exited": st.finished_at}.get(st.status)
    t = _epoch(since) if since else None
    if t is None:
        return float("inf")        # Created, Dead, Removal In Progress: no clock in it
    age = max(0.0, now - t)
    step = 1 if age < 60 else 60
    return t + step * (int(age // step) + 1)


# id(container) -> its row; dropped with the container object
_rows: dict[int, _Row] = {}
# stands for the Status while a row is encoded: random, so no name, label or
# path a user chose can be mistaken for it
_STATUS_MARK = secrets.token_hex(16)


def encoded_summaries(d: Daemon, found: list[Container], lookups: Lookups | None = None) -> bytes:
    """summaries() as the JSON body of `GET /containers/json`: each row made
    and encoded only when it changed (_Row), its Status only when its text
    can have changed, so a listing of 1000 mostly joins bytes it has."""
    lookups = lookups or Lookups(d)
    gen = d.networks.generation
    rows = []
    stale = []
    for c in found:
        r = _rows.get(id(c))
        if (r is None or r.key != (c.name, c.state.status, c.image, c.image_ref, gen)
                or r.network is not c.network or r.networking_config is not c.networking_config):
            stale.append(c)
        rows.append(r)
    if stale:
        mounts = d.volumes.mounts_of([c.id for c in stale]) if len(stale) > 1 else None
        for c in stale:
            entry = summary(d, c, lookups, mounts)
            entry["Status"] = _STATUS_MARK
            # compact, as dockerd's: ~10 % fewer bytes for the client to read and decode
            head, sep, tail = json.dumps(entry, separators=(",", ":")).encode().partition(f'"{_STATUS_MARK}"'.encode())
            if id(c) not in _rows:
                weakref.finalize(c, _rows.pop, id(c), None)
            _rows[id(c)] = _Row((c.name, c.state.status, c.image, c.image_ref, gen), c, head, tail)
        rows = [_rows[id(c)] for c in found]
    now = time.time()
    # one join over every row's pieces: the body is copied once
    parts = [b"["]
    for r, c in zip(rows, found):
        parts += (r.head, r.status_of(c, now), r.tail, b",")
    parts[-1] = b"]\n" if len(parts) > 1 else b"[]\n"
    return b"".join(parts)


def add_sizes(d: Daemon, found: list[Container], entries: list[dict]) -> None:
    """`size=1` (`ps -s`), the one slow option, as in dockerd: SizeRw, the
    writable layer's bytes (a walk of it), and SizeRootFs, those plus the
    image's. Blocking."""
    from ..fsutil import dir_size
    image_sizes: dict[str, int] = {}
    for c, e in zip(found, entries):
        rw = dir_size(os.path.join(d.config.data_root, "overlay", c.id, "upper"))
        if c.image not in image_sizes:
            try:
                image_sizes[c.image] = int(d.images.inspect(c.image).get("Size") or 0) if c.image else 0
            except Exception:   # an image gone from under the container counts 0
                image_sizes[c.image] = 0
        e["SizeRw"], e["SizeRootFs"] = rw, rw + image_sizes[c.image]

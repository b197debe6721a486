"""Host devices for the OCI spec: `--device` entries and, for
`--privileged`, every device under /dev (moby's oci/devices_linux.go).
Reading /dev is the I/O here; spec generation stays pure and gets the
result. `--device-cgroup-rule` parsing is pure."""
from __future__ import annotations

import os
import re
import stat
from typing import Iterable, Mapping

from ..errors import InvalidParameter

# moby skips these when listing the host's devices for privileged containers
_SKIP_DIRS = ("/dev/pts", "/dev/shm", "/dev/fd", "/dev/mqueue", "/dev/.lxc", "/dev/.udev")
_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def _device(path: str, in_container: str, perms: str) -> tuple[dict, dict] | None:
    st = os.stat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    dev = {"path": in_container, "type": kind, "major": major, "minor": minor,
           "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}
    return dev, rule


def requested(entries: Iterable[Mapping] | None) -> tuple[list[dict], list[dict]]:
    """HostConfig.Devices → (OCI devices, cgroup allow rules). A directory
    adds every device under it, as Docker does."""
    devices, rules = [], []
    for e in entries or ():
        host = e.get("PathOnHost") or ""
        ctr = e.get("PathInContainer") or host
        perms = e.get("CgroupPermissions") or "rwm"
        if not re.fullmatch(r"[rwm]{1,3}", perms):
            raise InvalidParameter(f"invalid device cgroup permissions: {perms}")
        try:
            if os.path.isdir(host):
                for root, _dirs, files in os.walk(host):
                    for f in sorted(files):
                        p = os.path.join(root, f)
                        got = _device(p, os.path.join(ctr, os.path.relpath(p, host)), perms)
                        if got:
                            devices.append(got[0]), rules.append(got[1])
                continue
            got = _device(host, ctr, perms)
        except OSError as err:
            raise InvalidParameter(f'error gathering device information while adding custom device "{host}": '
                                   f"{(err.strerror or str(err)).lower()}") from None
        if got is None:
            raise InvalidParameter(f'error gathering device information while adding custom device "{host}": '
                                   "not a device node")
        devices.append(got[0]), rules.append(got[1])
    return devices, rules


def host_devices() -> list[dict]:
    """Every char/block device under /dev, for --privileged."""
    out = []
    for root, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in _SKIP_DIRS]
        for f in files:
            p = os.path.join(root, f)
            if p == "/dev/console":
                continue
            try:
                if os.path.islink(p):
                    continue
                got = _device(p, p, "rwm")
            except OSError:
                continue
            if got:
                out.append(got[0])
    return out


def cgroup_rules(rules: Iterable[str] | None) -> list[dict]:
    """`--device-cgroup-rule 'c 1:3 rwm'` → OCI device cgroup entries."""
    out = []
    for text in rules or ():
        m = _RULE.match(text.strip())
        if not m:
            raise InvalidParameter(f"invalid device cgroup rule format: '{text}'")
        kind, major, minor, access = m.groups()
        rule: dict = {"allow": True, "type": kind, "access": access}
        if major != "*":
            rule["major"] = int(major)
        if minor != "*":
            rule["minor"] = int(minor)
        out.append(rule)
    return out


def drop_dev_core(pid: int) -> None:
    """crun gives every container a `/dev/core -> /proc/kcore` link; moby's
    spec has none and runc makes none. Called between the runtime's create
    and start (no process of the container has run yet), with the
    container's init `pid`: its /dev is reached through /proc/PID/root, each
    component opened without following a symlink, and only that link goes."""
    try:
        root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        dev = os.open("dev", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root)
    except OSError:
        return
    finally:
        os.close(root)
    try:
        if os.readlink("core", dir_fd=dev) == "/proc/kcore":
            os.unlink("core", dir_fd=dev)
    except OSError:
        pass        # none (runc), or not that link: nothing of ours to remove
    finally:
        os.close(dev)

"""`dockyardd --userns-remap`: containers run in a user namespace whose
root is an unprivileged host uid (Docker's userns-remap).

Ranges come from /etc/subuid and /etc/subgid for the named user (`default`
= `dockremap`, created with a range like Docker does). Image layers are not
copied and chowned: each layer directory gets an idmapped mount (open_tree +
mount_setattr(MOUNT_ATTR_IDMAP)) made once per daemon, and overlayfs stacks
those, so files owned by 0 in the image belong to the remapped root.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import pwd
import subprocess
import time
from dataclasses import dataclass

from .. import linux
from ..errors import InvalidParameter

_libc = ctypes.CDLL(None, use_errno=True)
_SYS = {"x86_64": (428, 429, 442), "aarch64": (428, 429, 442)}   # open_tree, move_mount, mount_setattr
OPEN_TREE_CLONE, AT_RECURSIVE, AT_EMPTY_PATH, MOVE_MOUNT_F_EMPTY_PATH = 1, 0x8000, 0x1000, 4
MOUNT_ATTR_IDMAP = 0x00100000
AT_FDCWD = -100
DEFAULT_USER = "dockremap"
DEFAULT_SIZE = 65536


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


@dataclass(frozen=True)
class IdMap:
    uid: int
    uid_size: int
    gid: int
    gid_size: int

    def spec(self) -> tuple[list[dict], list[dict]]:
        return ([{"containerID": 0, "hostID": self.uid, "size": self.uid_size}],
                [{"containerID": 0, "hostID": self.gid, "size": self.gid_size}])


def _ranges(path: str, name: str, ident: int) -> tuple[int, int] | None:
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (name, str(ident)):
                    return int(parts[1]), int(parts[2])
    except OSError:
        pass
    return None


def _add_default_user() -> None:
    """Docker's `default`: a system user dockremap with 65536 subordinate ids."""
    try:
        pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false", DEFAULT_USER],
                       check=True, capture_output=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        if _ranges(path, DEFAULT_USER, -1):
            continue
        end = 100000
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        end = max(end, int(parts[1]) + int(parts[2]))
        except OSError:
            pass
        with open(path, "a") as f:
            f.write(f"{DEFAULT_USER}:{end}:{DEFAULT_SIZE}\n")


def resolve(setting: str) -> IdMap:
    """`default`, `user`, `user:group`, `uid`, `uid:gid` → the id ranges."""
    user, _, group = setting.partition(":")
    if user == "default":
        _add_default_user()
        user, group = DEFAULT_USER, DEFAULT_USER
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise InvalidParameter(f"--userns-remap: no such user: {user}") from None
    group = group or pw.pw_name
    uids = _ranges("/etc/subuid", pw.pw_name, pw.pw_uid)
    gids = _ranges("/etc/subgid", group, -1) or (_ranges("/etc/subgid", pw.pw_name, pw.pw_uid)
                                                 if group == pw.pw_name else None)
    if not uids or not gids:
        raise InvalidParameter(f"--userns-remap: no subordinate id ranges for {pw.pw_name} in "
                               "/etc/subuid and /etc/subgid")
    return IdMap(uids[0], uids[1], gids[0], gids[1])


def make_userns(idmap: IdMap) -> int:
    """An fd of a user namespace with the mapping (kept by the daemon; the
    process that made it is gone)."""
    proc = subprocess.Popen(["unshare", "--user", "sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        mine = os.readlink("/proc/self/ns/user")
        while os.readlink(f"/proc/{proc.pid}/ns/user") == mine:   # until unshare has run
            if time.monotonic() > deadline or proc.poll() is not None:
                raise OSError("could not create a user namespace")
            time.sleep(0.005)
        with open(f"/proc/{proc.pid}/uid_map", "w") as f:
            f.write(f"0 {idmap.uid} {idmap.uid_size}\n")
        with open(f"/proc/{proc.pid}/gid_map", "w") as f:
            f.write(f"0 {idmap.gid} {idmap.gid_size}\n")
        return os.open(f"/proc/{proc.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        proc.kill()
        proc.wait()


def idmapped_mount(source: str, target: str, userns_fd: int) -> None:
    open_tree, move_mount, mount_setattr = _SYS.get(os.uname().machine, _SYS["x86_64"])
    fd = _check(_libc.syscall(open_tree, AT_FDCWD, source.encode(),
                              OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE), f"open_tree {source}")
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        _check(_libc.syscall(mount_setattr, fd, b"", AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(attr),
                             ctypes.sizeof(attr)), f"mount_setattr {source}")
        _check(_libc.syscall(move_mount, fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
               f"move_mount {target}")
    finally:
        os.close(fd)


class Remap:
    """The daemon's remapping: id ranges, the namespace fd, idmapped layers."""

    def __init__(self, setting: str, data_root: str):
        self.idmap = resolve(setting)
        self.fd = make_userns(self.idmap)
        self.root = os.path.join(data_root, "idmapped")
        os.makedirs(self.root, mode=0o711, exist_ok=True)

    @property
    def owner(self) -> tuple[int, int]:
        return self.idmap.uid, self.idmap.gid

    def layers(self, lower_dirs: list[str]) -> list[str]:
        """Each lower dir as an idmapped mount (made once, shared by containers)."""
        out = []
        for lower in lower_dirs:
            target = os.path.join(self.root, hashlib.sha256(lower.encode()).hexdigest()[:32])
            os.makedirs(target, mode=0o755, exist_ok=True)
            if not linux.is_mountpoint(target):
                idmapped_mount(lower, target, self.fd)
            out.append(target)
        return out

    def release(self) -> None:
        """Unmount the idmapped layers (daemon shutdown; in use ones go lazily)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return
        for name in names:
            linux.umount(os.path.join(self.root, name))


def for_container(remap: Remap | None, host_config: dict) -> Remap | None:
    """The remapping (the daemon's, if any) a container with this HostConfig
    runs under: none with `--userns host`."""
    if remap is None or (host_config.get("UsernsMode") or "") == "host":
        return None
    return remap

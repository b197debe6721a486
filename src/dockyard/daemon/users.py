"""Resolve Config.User ("uid", "uid:gid", "name", "name:group") against the
image's /etc/passwd and /etc/group, as Docker does."""
from __future__ import annotations

from .. import inroot
from ..errors import InvalidParameter


def _entries(rootfs: str, path: str) -> list[list[str]]:
    """The lines of a colon-separated file of the container's, read inside its
    root (a symlink there never leads to the host's file)."""
    try:
        text = inroot.read_file(rootfs, path, limit=16 << 20).decode(errors="replace")
    except OSError:
        return []
    return [l.split(":") for l in text.splitlines() if l.strip() and not l.startswith("#")]


def resolve(user: str, rootfs: str) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary gids) for Config.User, as moby/sys/user's
    GetExecUser reads the container's files: the supplementary groups are
    those whose member list names the matched user (its primary group too,
    if listed there), and only when no group is given (`user:group` has none)."""
    user = (user or "").strip()
    name, _, group = user.partition(":")
    passwd = _entries(rootfs, "etc/passwd")
    uid = gid = 0
    pw_name = None
    for e in passwd:
        if len(e) >= 4 and (_int(e[2]) == int(name or 0) if not name or name.isdigit() else e[0] == name):
            pw_name, uid, gid = e[0], _int(e[2]), _int(e[3])
            break
    else:
        if name and not name.isdigit():
            raise InvalidParameter(f"unable to find user {name}: no matching entries in passwd file")
        uid = int(name or 0)
    if not group and not pw_name:
        return uid, gid, []
    groups = _entries(rootfs, "etc/group")
    if group:
        match = [e for e in groups if len(e) >= 3 and (_int(e[2]) == int(group) if group.isdigit() else e[0] == group)]
        if match:
            gid = _int(match[0][2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise InvalidParameter(f"unable to find group {group}: no matching entries in group file")
        return uid, gid, []
    return uid, gid, [_int(e[2]) for e in groups if len(e) >= 4 and pw_name in e[3].split(",")]


def process_user(user: str, group_add, rootfs: str) -> tuple[int, int, list[int]]:
    """The OCI process user of a container or an exec, as moby's getUser
    makes it: (uid, gid, additional gids) with the additional gids being the
    primary gid, then the supplementary groups, then HostConfig.GroupAdd's
    (`id` as root in busybox: groups=0(root),10(wheel))."""
    uid, gid, sgids = resolve(user, rootfs)
    return uid, gid, [gid, *sgids, *group_ids(group_add, rootfs)]


def _int(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        return 0


def group_ids(groups, rootfs: str) -> list[int]:
    """HostConfig.GroupAdd: gids or group names from the image's /etc/group."""
    table = None
    out: list[int] = []
    for g in groups or ():
        g = str(g).strip()
        if g.isdigit():
            gid = int(g)
        else:
            table = table if table is not None else _entries(rootfs, "etc/group")
            match = [e for e in table if len(e) >= 3 and e[0] == g and e[2].isdigit()]
            if not match:
                raise InvalidParameter(f"Unable to find group {g}: no matching entries in group file")
            gid = int(match[0][2])
        if gid not in out:
            out.append(gid)
    return out

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
    """Return (uid, gid, additional gids)."""
    user = (user or "").strip()
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _entries(rootfs, "etc/passwd")
    groups = _entries(rootfs, "etc/group")
    uid = gid = None
    pw_name = None
    if name.isdigit():
        uid = int(name)
        for e in passwd:
            if len(e) >= 4 and e[2] == name:
                pw_name, gid = e[0], int(e[3]) if e[3].isdigit() else 0
                break
    else:
        for e in passwd:
            if len(e) >= 4 and e[0] == name:
                pw_name, uid, gid = e[0], int(e[2]), int(e[3])
                break
        if uid is None:
            raise InvalidParameter(f"unable to find user {name}: no matching entries in passwd file")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            match = [e for e in groups if len(e) >= 3 and e[0] == group]
            if not match:
                raise InvalidParameter(f"unable to find group {group}: no matching entries in group file")
            gid = int(match[0][2])
    if gid is None:
        gid = 0
    extra: list[int] = []
    if pw_name:
        for e in groups:
            if len(e) >= 4 and pw_name in e[3].split(",") and e[2].isdigit() and int(e[2]) != gid:
                extra.append(int(e[2]))
    return uid, gid, extra


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

"""`--init`: a static init (Debian's tini-static or catatonit) bind-mounted
read-only at /sbin/docker-init and run as PID 1 in front of the command,
as Docker does with its docker-init (tini)."""
from __future__ import annotations

import os

from ..errors import InvalidParameter

INIT_PATH = "/sbin/docker-init"
# static first: the image may have no libc for a dynamic one
CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/libexec/podman/catatonit")

_found: str | None = None


def binary() -> str:
    global _found
    if _found is None:
        _found = next((p for p in CANDIDATES if os.access(p, os.X_OK)), "")
    if not _found:
        raise InvalidParameter("--init needs a static init on the host (Debian packages tini or "
                               "catatonit): none found at " + ", ".join(CANDIDATES))
    return _found


def wrap(args: list[str], mounts: list[dict]) -> tuple[list[str], list[dict]]:
    """The command behind the init, and the mount that brings the init in."""
    mount = {"destination": INIT_PATH, "type": "bind", "source": binary(),
             "options": ["bind", "ro", "nosuid", "nodev"]}
    return [INIT_PATH, "--", *args], [*mounts, mount]

"""Finding a CRIU that works on this host, once.

CRIU is usable only when `criu check` passes AND its version is >= 4.2:
on kernels >= 6.16 CRIU <= 4.1 passes `criu check` but aborts on any
container holding an inet socket (see ../shared/notes/criu.md). Where it
cannot work, `reason` says why and checkpoint requests fail with it (501).

Where we look: `dockyardd --criu-path`, else `criu` on PATH, else the
private prefix scripts/install-criu.sh makes (never installed system-wide).
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
from dataclasses import dataclass

MIN_VERSION = (4, 2)
PRIVATE_PREFIX_CRIU = "/opt/dockyard-criu/bin/criu"


@dataclass
class Criu:
    path: str = ""
    version: str = ""
    reason: str = ""          # why it cannot be used; "" when usable
    config: str = ""          # CRIU_CONFIG_FILE for the runtime's criu (see CONFIG)

    @property
    def usable(self) -> bool:
        return bool(self.path) and not self.reason


def parse_version(text: str) -> tuple[int, ...] | None:
    """`criu --version` prints `Version: 4.2.1` (and maybe a GitID line)."""
    m = re.search(r"^Version:\s*(\d+(?:\.\d+)*)", text, re.M)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def candidates(configured: str | None) -> list[str]:
    if configured:
        return [configured]
    found = shutil.which("criu") or shutil.which("criu", path="/usr/local/sbin:/usr/sbin:/sbin")
    return [p for p in (found, PRIVATE_PREFIX_CRIU) if p]


async def _run(*argv: str, timeout: float = 20) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                cwd="/")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} {argv[1]} timed out"
    return proc.returncode, out.decode(errors="replace").strip()


async def probe(path: str) -> Criu:
    if not os.access(path, os.X_OK):
        return Criu(path, reason=f"{path} is not an executable file")
    rc, out = await _run(path, "--version")
    ver = parse_version(out) if rc == 0 else None
    if ver is None:
        return Criu(path, reason=f"{path} --version failed: {out[-300:] or rc}")
    text = ".".join(map(str, ver))
    if ver < MIN_VERSION:
        return Criu(path, text, f"criu {text} at {path} is too old: checkpoint/restore needs criu >= 4.2 "
                                "on this kernel (install it with scripts/install-criu.sh)")
    rc, out = await _run(path, "check")
    if rc != 0:
        lines = [l for l in out.splitlines() if "Error" in l or "error" in l] or out.splitlines()
        return Criu(path, text, f"`criu check` failed: {'; '.join(lines[-3:]) or rc}")
    return Criu(path, text)


async def discover(configured: str | None) -> Criu:
    paths = candidates(configured)
    if not paths:
        return Criu(reason="criu not found: install it with scripts/install-criu.sh or pass dockyardd --criu-path")
    first = None
    for p in paths:
        c = await probe(p)
        if c.usable:
            return c
        first = first or c
    return first


# Lock the container's network with nftables, not iptables: unlocking after a
# --leave-running dump or a restore costs ~10 ms instead of ~70 ms of
# iptables-restore. runc runs `criu swrk`, which takes no options but reads
# the file named by CRIU_CONFIG_FILE (the runtime passes its env on).
CONFIG = "network-lock nftables\n"


def write_config(directory: str) -> str:
    path = os.path.join(directory, "criu.conf")
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(CONFIG)
    os.replace(tmp, path)
    return path


class CriuProbe:
    """The daemon's one CRIU lookup: run on first use, then cached."""

    def __init__(self, configured: str | None, config_dir: str | None = None):
        self.configured = configured
        self.config_dir = config_dir
        self._task: asyncio.Task | None = None

    async def _discover(self) -> Criu:
        c = await discover(self.configured)
        if c.usable and self.config_dir:
            c.config = write_config(self.config_dir)
        return c

    def start(self) -> None:
        """Begin the lookup now (at daemon set-up), so the first /_ping need not wait for it."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._discover())

    async def settle(self, timeout: float = 10) -> None:
        """Let a lookup in flight finish. A daemon whose set-up fails right
        after start() would otherwise have asyncio.run cancel it while its
        subprocess is being spawned, and Python 3.11's subprocess transport
        can then wait forever (a failed start that never exits)."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except Exception:     # its outcome is not wanted here, only its end
                pass

    async def get(self) -> Criu:
        self.start()
        return await asyncio.shield(self._task)

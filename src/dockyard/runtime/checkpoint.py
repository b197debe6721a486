"""The OCI runtime's checkpoint and restore, driven with a CRIU we chose.

runc takes the CRIU binary with its global `--criu PATH`; crun links
libcriu, which runs `criu` from PATH, so crun gets PATH with our CRIU's
directory first. Restore itself is run by conmon (`conmon --restore`), so
the restored process gets fresh stdio pipes held by conmon and its log
continues in the same file. The verbs are Runtime.checkpoint and
Runtime.restore (runtimes.py); this module says which arguments and
environment they take, and freezes a cgroup by a write.
"""
from __future__ import annotations

import os
import subprocess
import time
from functools import lru_cache
from typing import TYPE_CHECKING

from .criu import Criu

if TYPE_CHECKING:
    from .runtimes import Runtime

# Always on: established TCP connections (a loopback nc<->nc, a client of a
# server inside) and POSIX/flock locks survive; without them CRIU refuses.
CRIU_FLAGS = ("--tcp-established", "--file-locks")


@lru_cache(maxsize=8)
def _crun_has_criu(binary: str) -> bool:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "+CRIU" in out


def unsupported_reason(rt: Runtime) -> str:
    """Why this runtime cannot checkpoint here, or ""."""
    if rt.name == "crun" and not _crun_has_criu(rt.binary):
        return (f"the crun here ({rt.binary}) was built without CRIU support; "
                "create the container with --runtime runc to checkpoint it")
    return ""


def freezer_of(pid: int) -> str | None:
    """The file that freezes the container's cgroup: v1 freezer.state or v2
    cgroup.freeze. Freezing by a write (not `runtime pause`, a subprocess)
    before the dump spares CRIU its ~100 ms wait on the v1 freezer."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if "freezer" in ctrls.split(","):
            return os.path.join("/sys/fs/cgroup/freezer" + path, "freezer.state")
    for line in lines:
        if line.startswith("0::"):
            p = os.path.join("/sys/fs/cgroup" + line[3:], "cgroup.freeze")
            return p if os.path.exists(p) else None
    return None


def _write(path: str, value: str) -> bool:
    try:
        with open(path, "w") as f:
            f.write(value)
        return True
    except OSError:
        return False


def freeze(path: str, timeout: float = 2.0) -> bool:
    v1 = path.endswith("freezer.state")
    if not _write(path, "FROZEN" if v1 else "1"):
        return False
    if v1:     # v1 freezes asynchronously: FREEZING until every task stopped
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(path) as f:
                if f.read().strip() == "FROZEN":
                    return True
            time.sleep(0.001)
        thaw(path)
        return False
    return True


def thaw(path: str) -> None:
    _write(path, "THAWED" if path.endswith("freezer.state") else "0")


def global_args(rt: Runtime, criu: Criu) -> list[str]:
    return ["--criu", criu.path] if rt.name == "runc" else []


def criu_env(criu: Criu, config: str | None = None) -> dict[str, str]:
    """What the runtime (and the criu it runs) needs in its environment;
    config: a CRIU config file instead of criu.config (restore_config's)."""
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env = {"PATH": os.path.dirname(criu.path) + ":" + path}
    if config or criu.config:
        env["CRIU_CONFIG_FILE"] = config or criu.config
    return env


# crun (1.2x) bind-mounts one shared empty directory, <its --root>/.empty-directory,
# over each masked directory (/proc/acpi, /sys/firmware ...) and names it to CRIU
# as an external mount. Its dump names it by the default root's path, its restore
# by the --root's: with our per-daemon --root the restore finds "No mapping for
# ..." and fails. The restore's CRIU config maps the dump's name to our directory.
CRUN_DUMP_EMPTY_DIR = "/run/crun/.empty-directory"


def restore_config(rt: Runtime, criu: Criu) -> str | None:
    """The CRIU config file for a restore by rt: criu.config, plus for crun
    the empty directory's mapping (written next to rt's --root, once)."""
    if rt.name != "crun" or not criu.config:
        return criu.config or None
    empty = os.path.join(rt.root, ".empty-directory")
    if os.path.normpath(empty) == CRUN_DUMP_EMPTY_DIR:
        return criu.config
    path = os.path.join(os.path.dirname(rt.root), "criu-restore-crun.conf")
    with open(criu.config) as f:
        text = f.read()
    text += f"ext-mount-map {CRUN_DUMP_EMPTY_DIR}:{empty}\n"
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    os.makedirs(empty, mode=0o555, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def env_for(criu: Criu) -> dict[str, str]:
    return {**os.environ, **criu_env(criu)}


def restore_opts(work_dir: str) -> list[str]:
    """`runtime restore` options conmon passes on (`--runtime-opt`)."""
    return [*CRIU_FLAGS, "--work-path", work_dir]


def log_tail(work_dir: str, name: str, lines: int = 4) -> str:
    """The last errors CRIU logged, for the error message."""
    try:
        with open(os.path.join(work_dir, name), errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return ""
    errs = [l.strip() for l in text if "Error" in l or "error" in l]
    return "; ".join((errs or text)[-lines:])

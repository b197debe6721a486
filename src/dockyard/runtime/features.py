"""What the kernel and an OCI runtime support for a container's mounts:
recursively read-only binds (the `rro` mount option), as moby's
supportsRecursivelyReadOnly decides it (daemon/daemon_linux.go): the
kernel must have mount_setattr(2) with AT_RECURSIVE (5.12), and the
runtime must list `rro` among the mount options `<runtime> features`
reports. crun before 1.9 has no `features` verb, but has applied `rro`
since 1.4: for it the version stands in for the list. Both answers are
probed once per process (per binary) and cached."""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tempfile

from .. import linux

CRUN_RRO_SINCE = (1, 4)


@functools.lru_cache(maxsize=None)
def kernel_rro_error() -> str | None:
    """None, or why this kernel cannot make a mount tree read-only."""
    try:
        tmp = tempfile.mkdtemp(prefix="dockyard-detect-rro")
    except OSError as e:
        return f"failed to create a temp directory: {e.strerror}"
    try:
        try:
            linux.mount("tmpfs", tmp, "tmpfs")
        except OSError as e:
            return f'failed to mount tmpfs on "{tmp}": {os.strerror(e.errno)}'
        try:
            linux.mount_setattr(tmp, linux.MOUNT_ATTR_RDONLY, recursive=True)
        except OSError as e:
            return f"failed to call mount_setattr: {os.strerror(e.errno).lower()}"
        finally:
            linux.umount(tmp, detach=False)
        return None
    finally:
        os.rmdir(tmp)


@functools.lru_cache(maxsize=None)
def mount_options(binary: str) -> frozenset[str] | None:
    """The mount options `binary features` lists; None without that verb
    (and not a crun known to have `rro`)."""
    try:
        r = subprocess.run([binary, "features"], capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            return frozenset(json.loads(r.stdout).get("mountOptions") or ())
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    m = re.match(r"crun version (\d+)\.(\d+)", r.stdout or "")
    if m and (int(m.group(1)), int(m.group(2))) >= CRUN_RRO_SINCE:
        return frozenset({"rro"})
    return None


def rro_error(runtime_name: str, binary: str) -> str | None:
    """None when `rro` works with this runtime here; else moby's words."""
    kernel = kernel_rro_error()
    if kernel:
        return f"rro is not supported: {kernel} (kernel is older than 5.12?)"
    options = mount_options(binary)
    if options is None:
        return f'rro is not supported by runtime "{runtime_name}": OCI features struct is not available'
    if "rro" not in options:
        return f'rro is not supported by runtime "{runtime_name}"'
    return None

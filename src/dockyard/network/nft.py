"""nftables commands in-process through libnftables (ctypes), `nft` as a fallback.

Port publishing changes a few map elements per container start; loading
libnftables once saves the ~5 ms fork+exec of `nft` on every such start.

libnftables waits for the kernel's answers with select(), and glibc aborts the
whole process ("bit out of range 0 - FD_SETSIZE on fd_set") when the netlink
socket's descriptor is 1024 or above. A daemon holding two DNS sockets per
container on a user network passes 1024 descriptors at 500-700 containers, so a
context made then (run_fresh, for each container's namespace) must get a low
descriptor: a few are kept open on /dev/null from the first use on (when the
daemon has few) and given up for the moment a context is made; should no low
one be free, `nft` does the work instead.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import threading

from dockyard.errors import SystemError_

_lock = threading.Lock()   # a libnftables context is not thread-safe
_ctx = None
_lib = None
FD_SETSIZE = 1024          # select()'s limit: a context's socket must be numbered below it
LOW_FDS = 4                # low descriptors kept for run_fresh's contexts
_fresh = threading.Lock()  # one run_fresh at a time gives up the spares
_spares: list[int] = []


def _low_fd() -> int | None:
    """A descriptor on /dev/null if the lowest free number is well below FD_SETSIZE, else None."""
    fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    if fd < FD_SETSIZE - 64:
        return fd
    os.close(fd)
    return None


def _keep_spares() -> None:
    while len(_spares) < LOW_FDS and (fd := _low_fd()) is not None:
        _spares.append(fd)


def _library():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(name)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = (ctypes.c_uint32,)
        lib.nft_ctx_free.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_buffer_output.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_buffer_error.argtypes = (ctypes.c_void_p,)
        lib.nft_run_cmd_from_buffer.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = (ctypes.c_void_p,)
        _lib = lib
        with _fresh:
            _keep_spares()
    return _lib


def _new_context(lib):
    """A context whose netlink socket (made by nft_ctx_new) has a descriptor select() takes, or None."""
    with _fresh:
        while _spares:   # the socket takes the lowest free number: one of these
            os.close(_spares.pop())
        try:
            probe = _low_fd()
            if probe is None:
                return None
            os.close(probe)
            ctx = lib.nft_ctx_new(0)
        finally:
            _keep_spares()
    lib.nft_ctx_buffer_output(ctx)
    lib.nft_ctx_buffer_error(ctx)
    return ctx


def _run_in(lib, ctx, script: str) -> tuple[bool, str]:
    rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
    out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
    err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
    return rc == 0, (out if rc == 0 else err)


def run(script: str, check: bool = True) -> tuple[bool, str]:
    """Run nft commands (one transaction); (ok, output or error text)."""
    global _ctx
    try:
        lib = _library()
    except OSError:   # no libnftables: the command line tool does the same
        return _run_nft(script, check)
    with _lock:
        if _ctx is None:
            _ctx = _new_context(lib)
        ctx = _ctx
        if ctx is not None:
            ok, text = _run_in(lib, ctx, script)
    if ctx is None:   # no low descriptor free: select() would abort the daemon
        return _run_nft(script, check)
    if check and not ok:
        raise SystemError_(f"nft failed: {text.strip()}")
    return ok, text


def run_fresh(script: str, check: bool = True) -> tuple[bool, str]:
    """Run nft commands with a context of their own, made and freed here: for a thread inside another
    network namespace (the shared context's netlink socket belongs to the host's); (ok, output or error)."""
    try:
        lib = _library()
    except OSError:   # no libnftables: `nft` in this thread's namespace does the same
        return run(script, check)
    ctx = _new_context(lib)
    if ctx is None:   # no low descriptor free: select() would abort the daemon
        return _run_nft(script, check)
    try:
        ok, text = _run_in(lib, ctx, script)
    finally:
        lib.nft_ctx_free(ctx)
    if check and not ok:
        raise SystemError_(f"nft failed: {text.strip()}")
    return ok, text


def _run_nft(script: str, check: bool) -> tuple[bool, str]:
    """`nft -f -` (in the calling thread's network namespace: the child is made from this thread)."""
    try:
        proc = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemError_("nft is not installed; dockyard needs it for container networking") from None
    ok, text = proc.returncode == 0, (proc.stdout if proc.returncode == 0 else proc.stderr)
    if check and not ok:
        raise SystemError_(f"nft failed: {text.strip()}")
    return ok, text


def table_exists(table: str, family: str = "ip") -> bool:
    return run(f"list table {family} {table}", check=False)[0]


def delete_table(table: str, family: str = "ip") -> None:
    if table_exists(table, family):
        run(f"delete table {family} {table}")


def list_tables(family: str = "ip") -> list[str]:
    ok, out = run(f"list tables {family}", check=False)
    return [line.split()[2] for line in out.splitlines() if ok and line.startswith(f"table {family} ")]

"""nftables commands in-process through libnftables (ctypes), `nft` as a fallback.

Port publishing changes a few map elements per container start; loading
libnftables once saves the ~5 ms fork+exec of `nft` on every such start.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import threading

from dockyard.errors import SystemError_

_lock = threading.Lock()   # a libnftables context is not thread-safe
_ctx = None
_lib = None


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
    return _lib


def _context():
    global _ctx
    lib = _library()
    if _ctx is None:
        ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        _ctx = ctx
    return lib, _ctx


def run(script: str, check: bool = True) -> tuple[bool, str]:
    """Run nft commands (one transaction); (ok, output or error text)."""
    try:
        with _lock:
            lib, ctx = _context()
            rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
            out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        ok, text = rc == 0, (out if rc == 0 else err)
    except OSError:   # no libnftables: the command line tool does the same
        try:
            proc = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
        except FileNotFoundError:
            raise SystemError_("nft is not installed; dockyard needs it for container networking") from None
        ok, text = proc.returncode == 0, (proc.stdout if proc.returncode == 0 else proc.stderr)
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
    ctx = lib.nft_ctx_new(0)
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
    finally:
        lib.nft_ctx_free(ctx)
    if check and rc != 0:
        raise SystemError_(f"nft failed: {err.strip()}")
    return rc == 0, (out if rc == 0 else err)


def table_exists(table: str, family: str = "ip") -> bool:
    return run(f"list table {family} {table}", check=False)[0]


def delete_table(table: str, family: str = "ip") -> None:
    if table_exists(table, family):
        run(f"delete table {family} {table}")


def list_tables(family: str = "ip") -> list[str]:
    ok, out = run(f"list tables {family}", check=False)
    return [line.split()[2] for line in out.splitlines() if ok and line.startswith(f"table {family} ")]

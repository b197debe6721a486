"""The OCI `linux.seccomp` section → a raw BPF program, compiled once per profile.

crun compiles the seccomp section with libseccomp on every `create` (~18 ms
for Docker's ~300-syscall profile). crun (>= 0.17) instead takes the program
ready-made from the annotation `run.oci.seccomp_bpf_data` (base64 of the
`struct sock_filter` array): it then skips libcrun_generate_seccomp but still
applies the section's `flags` (default SECCOMP_FILTER_FLAG_SPEC_ALLOW) and its
usual no_new_privs ordering, so the section stays in config.json for readers.

`compile_section` builds the filter exactly as crun 1.8's
libcrun_generate_seccomp does: seccomp_init(default action, errno EPERM unless
defaultErrnoRet), the listed architectures added (native is always there),
rules whose action equals the default skipped, unknown syscall names skipped,
at most 6 args, args naming the same index twice added one rule per arg (an
OR, like runc), no filter attributes changed. Anything it does not handle
(notify/listener, an unknown action or operator, no libseccomp) gives None:
the caller then leaves the annotation out and crun compiles as before.
"""
from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import logging
import os
from typing import Mapping

log = logging.getLogger("dockyard.runtime")

ANNOTATION = "run.oci.seccomp_bpf_data"

_ACTIONS = {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_KILL": 0x00000000,
            "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
            "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_LOG": 0x7FFC0000}
_WITH_ERRNO = {"SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000}
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
EPERM = 1
_NR_SCMP_ERROR = -1


class Unsupported(Exception):
    """A construct this compiler leaves to crun."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


DEFAULT_LIBRARY = "libseccomp.so.2"
_libs: dict[str, ctypes.CDLL] = {}
_cache: dict[tuple[str, str], str | None] = {}   # (library, sha256 of the section's JSON) -> base64 program
_CACHE_MAX = 64


def _libseccomp(library: str = DEFAULT_LIBRARY):
    """libseccomp by name or path: the crun's own (a private crun's prefix
    holds a newer one, which builds a different program), loaded once."""
    lib = _libs.get(library)
    if lib is None:
        lib = ctypes.CDLL(library, use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _libs[library] = lib
    return lib


def syscall_known(name: str, library: str = DEFAULT_LIBRARY) -> bool:
    """Whether this libseccomp knows the syscall name (both compilers skip the others)."""
    return _libseccomp(library).seccomp_syscall_resolve_name(name.encode()) != _NR_SCMP_ERROR


def _action(name: str | None, errno_ret: int) -> int:
    if name in _WITH_ERRNO:
        return _WITH_ERRNO[name] | (errno_ret & 0xFFFF)
    if name in _ACTIONS:
        return _ACTIONS[name]
    raise Unsupported(f"action {name!r}")     # NOTIFY needs crun's listener plumbing


def compile_section(section: Mapping, library: str = DEFAULT_LIBRARY) -> bytes:
    """The BPF program (sock_filter array) crun would build from `section`
    with the libseccomp `library` (the one that crun links).
    Raises Unsupported / OSError when it cannot."""
    if section.get("listenerPath") or section.get("listenerMetadata"):
        raise Unsupported("seccomp notify listener")
    lib = _libseccomp(library)
    default_errno = EPERM
    if section.get("defaultErrnoRet") is not None:
        if section.get("defaultAction") not in _WITH_ERRNO:
            raise Unsupported("defaultErrnoRet without an errno action")
        default_errno = int(section["defaultErrnoRet"])
    default = _action(section.get("defaultAction"), default_errno)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        for arch in section.get("architectures") or ():
            short = arch[len("SCMP_ARCH_"):] if arch.startswith("SCMP_ARCH_") else arch
            token = lib.seccomp_arch_resolve_name(short.lower()[:31].encode())
            if token == 0:
                raise Unsupported(f"architecture {arch!r}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -17:                     # -EEXIST: native is already in
                raise OSError(-rc, f"seccomp_arch_add {arch}")
        for rule in section.get("syscalls") or ():
            _add_rule(lib, ctx, rule, default)
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _add_rule(lib, ctx, rule: Mapping, default: int) -> None:
    errno_ret = EPERM
    if rule.get("errnoRet") is not None:
        if rule.get("action") not in _WITH_ERRNO:
            raise Unsupported("errnoRet without an errno action")
        errno_ret = int(rule["errnoRet"])
    action = _action(rule.get("action"), errno_ret)
    if action == default:
        return
    args = list(rule.get("args") or ())[:6]
    cmps = (_ArgCmp * 6)()
    seen: set[int] = set()
    repeated = False
    for k, a in enumerate(args):
        index = int(a.get("index", 0))
        if index >= 6:
            raise Unsupported(f"argument index {index}")
        repeated = repeated or index in seen
        seen.add(index)
        if a.get("op") not in _OPS:
            raise Unsupported(f"operator {a.get('op')!r}")
        cmps[k] = _ArgCmp(index, _OPS[a["op"]], int(a.get("value") or 0) & (2**64 - 1),
                          int(a.get("valueTwo") or 0) & (2**64 - 1))
    for name in rule.get("names") or ():
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == _NR_SCMP_ERROR:
            continue                                   # crun: "unknown seccomp syscall ignored"
        if not args:
            groups = [(0, cmps)]
        elif not repeated:
            groups = [(len(args), cmps)]
        else:                                          # same index twice: one rule per comparison
            groups = [(1, (_ArgCmp * 1)(cmps[k])) for k in range(len(args))]
        for count, arr in groups:
            rc = lib.seccomp_rule_add_array(ctx, action, nr, count, arr)
            if rc < 0:
                raise OSError(-rc, f"seccomp_rule_add_array {name}")


def _export(lib, ctx) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise OSError(-rc, "seccomp_export_bpf")
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def annotation_for(section: Mapping | None, library: str = DEFAULT_LIBRARY) -> str | None:
    """base64 BPF for crun's annotation, cached per section (a dict lookup
    after the first start with a profile); None when crun should compile.
    library: the libseccomp that crun links."""
    if not section:
        return None
    key = (library, hashlib.sha256(json.dumps(section, sort_keys=True).encode()).hexdigest())
    if key not in _cache:
        if len(_cache) >= _CACHE_MAX:            # many one-off custom profiles: stay bounded
            del _cache[next(iter(_cache))]
        try:
            _cache[key] = base64.b64encode(compile_section(section, library)).decode()
        except (Unsupported, OSError, ValueError, TypeError, AttributeError) as e:
            log.info("seccomp profile left to the runtime to compile: %s", e)
            _cache[key] = None
    return _cache[key]

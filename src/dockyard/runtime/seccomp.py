"""Docker-format seccomp profiles → the OCI spec's `linux.seccomp`.

The default profile is Docker's own: `seccomp_moby.profile()` renders moby's
rules (Docker 28.2 – 28.5, Apache-2.0), so a container gets the errno dockerd's
would, EPERM for what is not allowed. `to_oci` does what moby's
profiles/seccomp.setupSeccomp does: keeps the rules whose `includes` match the
container (its capabilities, the native architecture, the kernel) and whose
`excludes` do not, and maps the architecture to its sub-architectures.
A profile given with `--security-opt seccomp=<file>` goes through the same
selection, as in moby.
"""
from __future__ import annotations

import json
import platform
from typing import Iterable, Mapping

from .. import errors
from . import seccomp_moby

# uname -m → (Go arch name used in includes/excludes, libseccomp arch)
_NATIVE = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"), "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "i686": ("386", "SCMP_ARCH_X86"),
}
# Docker's arch names in profiles ("x86", "x32") → Go's
_ARCH_ALIASES = {"x86": "386", "x32": "amd64"}

_default_cache: dict | None = None


def default_profile() -> dict:
    """Docker's default profile (moby's rules), built once per daemon; callers
    do not change it."""
    global _default_cache
    if _default_cache is None:
        _default_cache = seccomp_moby.profile()
    return _default_cache


def parse(text: str) -> dict:
    """A profile given in `--security-opt seccomp=<json>`; 400 with the parse error."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise errors.InvalidParameter(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise errors.InvalidParameter("Decoding seccomp profile failed: the profile must be a JSON object")
    if "archMap" in profile and "architectures" in profile:
        raise errors.InvalidParameter("use either 'architectures' or 'archMap'")
    return profile


def choice(security_opts: Iterable[str] | None) -> str | None:
    """The `seccomp=` value of SecurityOpt, if any (`seccomp:x` is the old form)."""
    found = None
    for opt in security_opts or ():
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "seccomp":
            found = value
    return found


def to_oci(profile: Mapping, caps: Iterable[str], machine: str | None = None,
           kernel: str | None = None) -> dict:
    """The OCI `linux.seccomp` object for a container with `caps` (bounding set)."""
    machine = machine or platform.machine()
    kernel = kernel or platform.release()
    go_arch, native = _NATIVE.get(machine, (machine, ""))
    caps = set(caps)
    out: dict = {"defaultAction": profile.get("defaultAction") or "SCMP_ACT_ERRNO"}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    arches: list[str] = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or ():
        if entry.get("architecture") == native:
            arches = [native] + list(entry.get("subArchitectures") or [])
    if arches:
        out["architectures"] = arches
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    if profile.get("listenerPath"):
        out["listenerPath"] = profile["listenerPath"]
    syscalls = []
    for rule in profile.get("syscalls") or ():
        if not _applies(rule, caps, go_arch, kernel):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        oci = {"names": names, "action": rule.get("action")}
        if rule.get("errnoRet") is not None:
            oci["errnoRet"] = int(rule["errnoRet"])
        if rule.get("args"):
            oci["args"] = [{"index": a["index"], "value": a.get("value", 0),
                            "valueTwo": a.get("valueTwo", 0), "op": a["op"]} for a in rule["args"]]
        syscalls.append(oci)
    out["syscalls"] = syscalls
    return out


def _applies(rule: Mapping, caps: set[str], go_arch: str, kernel: str) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and go_arch not in {_ARCH_ALIASES.get(a, a) for a in inc["arches"]}:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("minKernel") and _kernel_tuple(kernel) < _kernel_tuple(inc["minKernel"]):
        return False
    if exc.get("arches") and go_arch in {_ARCH_ALIASES.get(a, a) for a in exc["arches"]}:
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    return True


def _kernel_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("-")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def profile_for(security_opts: Iterable[str] | None, privileged: bool) -> dict | None:
    """What a container gets: None (unconfined) for --privileged or
    seccomp=unconfined, the parsed custom profile, else the default."""
    value = choice(security_opts)
    if value == "unconfined" or privileged:      # moby: privileged is never filtered
        return None
    if value in (None, "", "builtin"):
        return default_profile()
    return parse(value)


def exists() -> bool:
    """The default profile is in use: /info's `name=seccomp,profile=builtin`,
    as dockerd's for its built-in (moby's) profile."""
    return bool(default_profile())

"""Docker-format seccomp profiles → the OCI spec's `linux.seccomp`.

The default profile is the one Debian ships in golang-github-containers-common
(/usr/share/containers/seccomp.json, the containers/common copy of Docker's
profile: same format, same default action). That copy is looser than
Docker's where Podman wants nested containers (mount, unshare, setns, the new
mount API, keyctl, clone with namespace flags); `_tighten` takes those back
to Docker's rules (moby profiles/seccomp/default_linux.go): allowed only with
the capability Docker ties them to, clone without namespace flags, clone3
ENOSYS, the keyring calls refused. `to_oci` does what moby's
profiles/seccomp.setupSeccomp does: keeps the rules whose `includes` match the
container (its capabilities, the native architecture, the kernel) and whose
`excludes` do not, and maps the architecture to its sub-architectures.
Reading the file is the only I/O here, done once per daemon.
"""
from __future__ import annotations

import json
import os
import platform
from typing import Iterable, Mapping

from .. import errors

DEFAULT_PROFILE_PATH = "/usr/share/containers/seccomp.json"
# The same file (containers-common 0.50.1, Apache-2.0) shipped with dockyard:
# without the Debian package, containers still get Docker's filter, never none.
BUNDLED_PROFILE_PATH = os.path.join(os.path.dirname(__file__), "seccomp_default.json")

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

DOCKER_COMPAT = "dockyardDockerCompat"     # marks the default profile: tighten it like Docker's
# Docker allows these only with the capability named (any of several)
DOCKER_GATED = {
    ("CAP_SYS_ADMIN",): ("mount", "umount", "umount2", "unshare", "setns", "pivot_root", "fsconfig",
                         "fsmount", "fsopen", "fspick", "mount_setattr", "move_mount", "open_tree",
                         "quotactl", "quotactl_fd", "setdomainname", "sethostname", "bpf",
                         "perf_event_open", "lookup_dcookie", "fanotify_init"),
    ("CAP_SYS_ADMIN", "CAP_SYSLOG"): ("syslog",),
    ("CAP_SYS_BOOT",): ("reboot",),
    ("CAP_SYS_NICE",): ("get_mempolicy", "mbind", "set_mempolicy"),
}
DOCKER_BLOCKED = ("add_key", "keyctl", "request_key")
# CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP: clone without them
CLONE_NAMESPACE_FLAGS = 2114060288
ENOSYS = 38


def default_profile() -> dict | None:
    """The default profile, parsed once: the host's copy (kept current by
    Debian), else the one bundled with dockyard; None only when both are
    unreadable (the daemon then runs containers without seccomp and says so
    in /info)."""
    global _default_cache
    if _default_cache is None:
        _default_cache = {}
        for path in (DEFAULT_PROFILE_PATH, BUNDLED_PROFILE_PATH):
            try:
                with open(path) as f:
                    _default_cache = json.load(f)
            except (OSError, ValueError):
                continue
            _default_cache[DOCKER_COMPAT] = True
            break
    return _default_cache or None


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
    out["syscalls"] = _tighten(syscalls, caps, machine) if profile.get(DOCKER_COMPAT) else syscalls
    return out


def _tighten(syscalls: list[dict], caps: set[str], machine: str) -> list[dict]:
    """The default profile's rules brought to Docker's for these caps."""
    drop = set(DOCKER_BLOCKED)
    for needed, names in DOCKER_GATED.items():
        if not any(c in caps for c in needed):
            drop.update(names)
    extra = []
    if "CAP_SYS_ADMIN" not in caps:
        drop.update(("clone", "clone3"))
        flags_arg = 1 if machine.startswith("s390") else 0     # s390 swaps clone's first two args
        extra = [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": flags_arg, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                            "op": "SCMP_CMP_MASKED_EQ"}]},
                 # glibc falls back to clone when clone3 is "not implemented"
                 {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}]
    out = []
    for rule in syscalls:
        if rule["action"] == "SCMP_ACT_ALLOW":
            names = [n for n in rule["names"] if n not in drop]
            if not names:
                continue
            rule = dict(rule, names=names)
        out.append(rule)
    return out + extra


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
    """A default profile is in use (the host's or the bundled copy): /info's
    `name=seccomp,profile=builtin`."""
    return default_profile() is not None

"""Docker's OCI runtime spec (config.json) for one container, as a pure function.

Defaults follow moby's oci/defaults.go and daemon/oci_linux.go. Everything
host-dependent arrives in `facts` (read once per daemon), so generation
does no I/O and a spec never asks for more than the host can grant: a
capability missing from our bounding set, or an rlimit above our hard
limit, would make the runtime fail at start.
"""

from __future__ import annotations

import posixpath
from typing import Iterable, Mapping, Sequence

from dockyard import errors
from dockyard.runtime import seccomp
from dockyard.runtime.devices import cgroup_rules
from dockyard.runtime.hostfacts import CAPABILITIES, RLIMITS, HostFacts

OCI_VERSION = "1.0.2"

# moby oci/caps/defaults.go, in Docker's order.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# moby's defaultLinuxMaskedPaths (oci/defaults.go, Docker 28.2), in its order;
# the host's thermal_throttle directories follow (HostFacts).
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
    "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
MIN_MEMORY = 6 * 1024 * 1024               # moby's linuxMinMemory
CPU_PERIOD = 100_000                       # what NanoCpus is expressed against
RLIM_INFINITY = 2**64 - 1                  # OCI rlimits are uint64

# Sysctls the kernel namespaces (runc refuses the rest), by namespace.
IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})

# Set by Docker in every private network namespace so unprivileged users can
# ping and bind low ports; an explicit HostConfig.Sysctls value wins.
DEFAULT_NET_SYSCTLS = {
    "net.ipv4.ping_group_range": "0 2147483647",
    "net.ipv4.ip_unprivileged_port_start": "0",
}


def generate(*, container_id: str, config: Mapping, host_config: Mapping,
             image_config: Mapping | None, rootfs: str, hostname: str,
             args: Sequence[str], env: Sequence[str],
             etc_mounts: Mapping[str, str], netns: str | None,
             cgroups_path: str, facts: HostFacts,
             user: tuple[int, int, Sequence[int]] = (0, 0, ()),
             warnings: list[str] | None = None,
             seccomp_profile: Mapping | None = None,
             extra_mounts: Sequence[Mapping] = (),
             devices: Sequence[Mapping] = (),
             device_rules: Sequence[Mapping] = (),
             join: Mapping[str, str] | None = None,
             id_mappings: tuple[list, list] | None = None,
             apparmor_profile: str | None = None,
             ipv6_off: Sequence[str] = ()) -> dict:
    """Return the OCI spec as a JSON-able dict.

    netns: None = a new empty namespace made by the runtime; "host" = the
    host's; a path = join that namespace. Problems the request can fix raise
    errors.InvalidParameter; what we trim to fit the host instead of failing
    (rlimits above ours, capabilities we lack) is reported in `warnings`
    when a list is given.
    `container_id` is not written into the spec: the runtime is given the id
    on its command line.
    """
    config = config or {}
    host_config = host_config or {}
    image_config = image_config or {}
    join = join or {}
    notes: list[str] = []
    privileged = bool(host_config.get("Privileged"))
    ipc_mode = _namespace_mode(host_config.get("IpcMode"), "IPC",
                               private=("", "private", "shareable", "none"))
    uts_mode = _namespace_mode(host_config.get("UTSMode"), "UTS", private=("",))
    pid_mode = _namespace_mode(host_config.get("PidMode"), "PID", private=("",))
    cgroupns_mode = _cgroupns_mode(host_config.get("CgroupnsMode"), facts)
    net_mode = "host" if netns == "host" else "private"

    spec: dict = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": bool(config.get("Tty")),
            "user": _user(user),
            "args": list(args),
            "env": list(env),
            "cwd": _working_dir(config, image_config),
            "capabilities": _capabilities(host_config, facts, privileged, notes),
            "noNewPrivileges": _no_new_privileges(host_config.get("SecurityOpt")),
            "oomScoreAdj": _oom_score_adj(host_config.get("OomScoreAdj")),
        },
        "root": {"path": rootfs, "readonly": bool(host_config.get("ReadonlyRootfs"))},
        "mounts": _mounts(host_config, etc_mounts, privileged, ipc_mode, join),
        "linux": {
            "resources": _resources(host_config, facts, privileged, notes),
            "cgroupsPath": cgroups_path,
            "namespaces": _namespaces(netns, ipc_mode, uts_mode, pid_mode, cgroupns_mode, join),
            # The runtime creates null, zero, tty, ptmx & co; `devices` are
            # the --device ones (or all of the host's for --privileged),
            # read from /dev by the caller (runtime/devices.py).
            "devices": [dict(d) for d in devices],
            "sysctl": _sysctls(host_config.get("Sysctls"), net_mode, ipc_mode,
                               defaults=not id_mappings, ipv6_off=ipv6_off),
        },
    }
    process = spec["process"]
    console = _console_size(config, host_config)
    if console:
        process["consoleSize"] = console
    rlimits = _rlimits(host_config.get("Ulimits"), facts, notes)
    if rlimits:
        process["rlimits"] = rlimits
    if uts_mode == "private":
        spec["hostname"] = hostname
        if config.get("Domainname"):
            spec["domainname"] = config["Domainname"]
    if not privileged and not _systempaths_unconfined(host_config.get("SecurityOpt")):
        # the container's own lists (set at create, as moby's; [] is none), the defaults for one without
        masked, readonly = host_config.get("MaskedPaths"), host_config.get("ReadonlyPaths")
        spec["linux"]["maskedPaths"] = list(masked) if masked is not None else [*MASKED_PATHS, *facts.thermal_throttle]
        spec["linux"]["readonlyPaths"] = list(readonly) if readonly is not None else list(READONLY_PATHS)
    if not privileged:
        spec["linux"]["resources"]["devices"] += [dict(r) for r in device_rules] + \
            cgroup_rules(host_config.get("DeviceCgroupRules"))
    if apparmor_profile:
        process["apparmorProfile"] = apparmor_profile
    if id_mappings:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"], spec["linux"]["gidMappings"] = id_mappings
    if seccomp_profile:
        spec["linux"]["seccomp"] = seccomp.to_oci(seccomp_profile, process["capabilities"]["bounding"])
    if extra_mounts:
        # user mounts (volumes, binds, tmpfs) replace a default at the same place
        taken = {m["destination"] for m in extra_mounts}
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] not in taken] + \
            [dict(m) for m in extra_mounts]
    annotations = host_config.get("Annotations")
    if annotations:
        spec["annotations"] = dict(annotations)

    if warnings is not None:
        warnings.extend(notes)
    return spec


def validate(host_config: Mapping, facts: HostFacts) -> list[str]:
    """Docker's create-time checks of HostConfig (capabilities, resources,
    ulimits, sysctls, namespace modes, seccomp profile): raise what generate()
    would, so a bad request fails at create with nothing made. Returns the
    warnings generate() would give."""
    host_config = host_config or {}
    notes: list[str] = []
    privileged = bool(host_config.get("Privileged"))
    ipc_mode = _namespace_mode(host_config.get("IpcMode"), "IPC",
                               private=("", "private", "shareable", "none"))
    _namespace_mode(host_config.get("UTSMode"), "UTS", private=("",))
    _namespace_mode(host_config.get("PidMode"), "PID", private=("",))
    _cgroupns_mode(host_config.get("CgroupnsMode"), facts)
    _capabilities(host_config, facts, privileged, notes)
    _no_new_privileges(host_config.get("SecurityOpt"))
    _oom_score_adj(host_config.get("OomScoreAdj"))
    _resources(host_config, facts, privileged, notes)
    _rlimits(host_config.get("Ulimits"), facts, notes)
    net_mode = "host" if (host_config.get("NetworkMode") or "") == "host" else "private"
    _sysctls(host_config.get("Sysctls"), net_mode, ipc_mode)
    _check_security_opts(host_config.get("SecurityOpt"))
    if (host_config.get("UsernsMode") or "") not in ("", "host"):
        raise errors.InvalidParameter(f"invalid USER mode: {host_config['UsernsMode']}")
    seccomp.profile_for(host_config.get("SecurityOpt"), privileged)
    cgroup_rules(host_config.get("DeviceCgroupRules"))
    return notes


# moby daemon.parseSecurityOpt's keys; apparmor and label are accepted and
# have no effect here (no AppArmor, no SELinux on the hosts we run on)
_SECURITY_OPT_KEYS = ("seccomp", "apparmor", "label", "no-new-privileges", "systempaths", "writable-cgroups")


def _check_security_opts(opts: Iterable[str] | None) -> None:
    for opt in opts or ():
        if opt == "no-new-privileges":
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")    # the pre-1.12 form
        if not sep or key not in _SECURITY_OPT_KEYS:
            raise errors.InvalidParameter(f'invalid --security-opt 2: "{opt}"')
        if key == "systempaths" and value != "unconfined":
            raise errors.InvalidParameter(f'invalid --security-opt 2: "{opt}"')
        if key in ("no-new-privileges", "writable-cgroups") and value not in ("true", "false"):
            raise errors.InvalidParameter(f'invalid --security-opt 2: "{opt}"')


# --- process -----------------------------------------------------------------

def _user(user: tuple[int, int, Sequence[int]]) -> dict:
    uid, gid, additional = user
    spec_user = {"uid": int(uid), "gid": int(gid)}
    if additional:
        spec_user["additionalGids"] = [int(g) for g in additional]
    return spec_user


def _working_dir(config: Mapping, image_config: Mapping) -> str:
    cwd = config.get("WorkingDir") or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise errors.InvalidParameter(
            f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    return posixpath.normpath(cwd)


def _no_new_privileges(security_opts: Iterable[str] | None) -> bool:
    enabled = False
    for opt in security_opts or ():
        name, _, value = opt.replace("=", ":", 1).partition(":")
        if name == "no-new-privileges":
            enabled = value in ("", "true")
    return enabled


def _systempaths_unconfined(security_opts: Iterable[str] | None) -> bool:
    return any(opt.replace(":", "=", 1) == "systempaths=unconfined" for opt in security_opts or ())


def _oom_score_adj(value: int | None) -> int:
    value = int(value or 0)
    if not -1000 <= value <= 1000:
        raise errors.InvalidParameter(
            f"Invalid value {value}, range for oom score adj is [-1000, 1000]")
    return value


def _console_size(config: Mapping, host_config: Mapping) -> dict | None:
    size = host_config.get("ConsoleSize") or (0, 0)
    if not config.get("Tty") or not any(size):
        return None
    height, width = size
    return {"height": int(height), "width": int(width)}


# --- capabilities --------------------------------------------------------------

def _capabilities(host_config: Mapping, facts: HostFacts, privileged: bool,
                  notes: list[str]) -> dict:
    caps = _tweak_capabilities(host_config.get("CapAdd"), host_config.get("CapDrop"), privileged)
    granted = [c for c in caps if c in facts.bounding]
    missing = [c for c in _normalize_caps(host_config.get("CapAdd")) if c not in facts.bounding and c != "ALL"]
    if missing:
        notes.append(f"capabilities not available on this host were not added: {', '.join(missing)}")
    return {"bounding": granted, "effective": list(granted), "permitted": list(granted),
            "inheritable": [], "ambient": []}


def _tweak_capabilities(add: Iterable[str] | None, drop: Iterable[str] | None,
                        privileged: bool) -> list[str]:
    # moby oci/caps.TweakCapabilities: ALL in add wins over drops of
    # individual caps; ALL in drop means "only what is added".
    adds, drops = _normalize_caps(add), _normalize_caps(drop)
    if privileged:
        return list(CAPABILITIES)
    if "ALL" in adds:
        return [c for c in CAPABILITIES if c not in drops]
    if "ALL" in drops:
        return [c for c in adds]
    caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
    return caps + [c for c in adds if c not in caps]


def _normalize_caps(names: Iterable[str] | None) -> list[str]:
    known = set(CAPABILITIES)
    result: list[str] = []
    for name in names or ():
        cap = name.strip().upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap != "ALL" and cap not in known:
            raise errors.InvalidParameter(f"invalid capability: {name}")
        if cap not in result:
            result.append(cap)
    return result


# --- rlimits -------------------------------------------------------------------

def _rlimits(ulimits: Iterable[Mapping] | None, facts: HostFacts, notes: list[str]) -> list[dict]:
    by_name: dict[str, dict] = {}   # a later entry for the same name wins
    for ulimit in ulimits or ():
        name = ulimit.get("Name") or ""
        if name not in RLIMITS:
            raise errors.InvalidParameter(f"invalid ulimit type: {name}")
        soft, hard = _rlimit_value(ulimit.get("Soft")), _rlimit_value(ulimit.get("Hard"))
        if soft > hard:
            raise errors.InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        # Raising a hard limit needs CAP_SYS_RESOURCE, which the daemon may
        # not have: never ask the runtime for more than we hold ourselves.
        ceiling = facts.hard_rlimits.get(name)
        if ceiling is not None and hard > ceiling:
            notes.append(f"ulimit {name}: hard limit {_show(hard)} exceeds the host's "
                         f"hard limit {ceiling}; using {ceiling}")
            hard, soft = ceiling, min(soft, ceiling)
        by_name[name] = {"type": "RLIMIT_" + name.upper(), "hard": hard, "soft": soft}
    return list(by_name.values())


def _rlimit_value(value: int | None) -> int:
    value = int(value or 0)
    return RLIM_INFINITY if value < 0 else value


def _show(value: int) -> str:
    return "unlimited" if value == RLIM_INFINITY else str(value)


# --- mounts --------------------------------------------------------------------

def _mounts(host_config: Mapping, etc_mounts: Mapping[str, str], privileged: bool,
            ipc_mode: str, join: Mapping[str, str]) -> list[dict]:
    # HostConfig.Binds / Mounts / Tmpfs are not handled here yet.
    sys_ro = [] if privileged else ["ro"]
    mounts = [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev"] + sys_ro),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", sys_ro + ["nosuid", "noexec", "nodev"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
    ]
    if ipc_mode == "host":
        mounts.append(_mount("/dev/shm", "bind", "/dev/shm", ["rbind", "rprivate"]))
    elif ipc_mode == "container" and join.get("shm"):    # the donor's /dev/shm, when kept on the host
        mounts.append(_mount("/dev/shm", "bind", join["shm"], ["rbind", "rprivate"]))
    elif (host_config.get("IpcMode") or "") != "none":
        shm_size = int(host_config.get("ShmSize") or DEFAULT_SHM_SIZE)
        mounts.append(_mount("/dev/shm", "tmpfs", "shm",
                             ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]))
    for destination in sorted(etc_mounts):
        mounts.append(_mount(destination, "bind", etc_mounts[destination], ["rbind", "rprivate"]))
    return mounts


def _mount(destination: str, type_: str, source: str, options: list[str]) -> dict:
    return {"destination": destination, "type": type_, "source": source, "options": options}


# --- namespaces ----------------------------------------------------------------

def _namespace_mode(value: str | None, what: str, private: tuple[str, ...]) -> str:
    value = value or ""
    if value in private:
        return "private"
    if value == "host":
        return "host"
    if value.startswith("container:") and what in ("IPC", "PID") and len(value) > len("container:"):
        return "container"    # joined by path: `join` names the namespace files
    raise errors.InvalidParameter(f"invalid {what} mode: {value}")


def _cgroupns_mode(value: str | None, facts: HostFacts) -> str:
    # Docker's default: private on cgroup v2, host on v1.
    if not value:
        return "private" if facts.cgroup_version == "v2" else "host"
    if value in ("private", "host"):
        return value
    raise errors.InvalidParameter(f"invalid cgroup namespace mode: {value}")


def _namespaces(netns: str | None, ipc: str, uts: str, pid: str, cgroupns: str,
                join: Mapping[str, str]) -> list[dict]:
    namespaces = [{"type": "mount"}]
    if netns is None:
        namespaces.append({"type": "network"})
    elif netns != "host":
        namespaces.append({"type": "network", "path": netns})
    for kind, mode in (("uts", uts), ("pid", pid), ("ipc", ipc), ("cgroup", cgroupns)):
        if mode == "private":
            namespaces.append({"type": kind})
        elif mode == "container":
            if kind not in join:
                raise errors.InvalidParameter(f"no {kind} namespace given to join")
            namespaces.append({"type": kind, "path": join[kind]})
    return namespaces


# --- sysctls -------------------------------------------------------------------

def _sysctls(requested: Mapping[str, str] | None, net_mode: str, ipc_mode: str,
             defaults: bool = True, ipv6_off: Sequence[str] = ()) -> dict:
    # defaults=False in a user namespace: the engine's netns is not owned by
    # it, so the runtime could not write net.* there.
    # ipv6_off: interfaces on networks without IPv6, as dockerd leaves them;
    # first, so that a requested net.ipv6.conf.all.disable_ipv6=0 (written
    # after) turns it back on
    sysctls = {}
    if net_mode == "private" and defaults:
        sysctls = {**{f"net.ipv6.conf.{i}.disable_ipv6": "1" for i in ipv6_off}, **DEFAULT_NET_SYSCTLS}
    for key, value in (requested or {}).items():
        if key.startswith("net."):
            if net_mode == "host":
                raise errors.InvalidParameter(
                    f"sysctl '{key}' is not allowed in host network namespace")
        elif key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if ipc_mode == "host":
                raise errors.InvalidParameter(
                    f"sysctl '{key}' is not allowed in host IPC namespace")
        else:
            raise errors.InvalidParameter(
                f"sysctl '{key}' is not allowed: only namespaced sysctls "
                "(net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) can be set")
        sysctls[key] = str(value)
    return sysctls


# --- resources -----------------------------------------------------------------

def update_resources(host_config: Mapping, facts: HostFacts, notes: list[str]) -> dict:
    """The OCI `linux.resources` for a live update (Runtime.update), checked
    as at create (raises Docker's 400s); without the device rules, which an
    update leaves alone (cgroup v2 would rebuild its eBPF program)."""
    res = _resources(host_config, facts, bool(host_config.get("Privileged")), notes)
    res.pop("devices", None)
    return res


def _resources(host_config: Mapping, facts: HostFacts, privileged: bool,
               notes: list[str]) -> dict:
    resources: dict = {"devices": _device_rules(privileged)}
    memory = _memory(host_config, facts, notes)
    if memory:
        resources["memory"] = memory
    _check_cpusets(host_config, facts)
    cpu = _cpu(host_config, facts)
    if cpu:
        resources["cpu"] = cpu
    pids_limit = int(host_config.get("PidsLimit") or 0)
    if pids_limit > 0:
        resources["pids"] = {"limit": pids_limit}
    weight = int(host_config.get("BlkioWeight") or 0)
    if weight:
        if not 10 <= weight <= 1000:
            raise errors.InvalidParameter("Range of blkio weight is from 10 to 1000")
        if facts.blkio_weight:
            resources["blockIO"] = {"weight": weight}
        else:
            notes.append("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                         "Weight discarded.")
    return resources


def uint_list(val: str, maximum: int = 0) -> set[int]:
    """moby's sysinfo parseUintList ("0,3-4,7"); ValueError with its words."""
    out: set[int] = set()
    if not val:
        return out
    for r in val.split(","):
        lo, dash, hi = r.partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)
        except ValueError:
            raise ValueError(f"invalid format: {val}") from None
        if last < first:
            raise ValueError(f"invalid format: {val}")
        if maximum and last > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        out.update(range(first, last + 1))
    return out


def _check_cpusets(host_config: Mapping, facts: HostFacts) -> None:
    """moby's verifyPlatformContainerResources: the cpus and memory nodes asked
    for are among the cgroup root's."""
    for key, have, what, words in (("CpusetCpus", facts.cpuset_cpus, "cpus", "CPUs"),
                                   ("CpusetMems", facts.cpuset_mems, "mems", "memory nodes")):
        want = host_config.get(key) or ""
        if not want or not have:
            continue
        try:
            available = uint_list(have)
        except ValueError:
            continue
        try:
            asked = uint_list(want, max([8192, *available]))
        except ValueError as e:
            raise errors.InvalidParameter(f"Invalid value {want} for cpuset {what}: {e}") from None
        if not asked <= available:
            raise errors.InvalidParameter(f"Requested {words} are not available - requested {want}, available: {have}")


def _memory(host_config: Mapping, facts: HostFacts, notes: list[str]) -> dict:
    limit = int(host_config.get("Memory") or 0)
    swap = int(host_config.get("MemorySwap") or 0)
    reservation = int(host_config.get("MemoryReservation") or 0)
    swappiness = host_config.get("MemorySwappiness")
    # Docker's checks (daemon_unix.go verifyPlatformContainerResources).
    if 0 < limit < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum memory limit allowed is 6MB")
    if limit > 0 and swap > 0 and swap < limit:
        raise errors.InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if limit == 0 and swap > 0:
        raise errors.InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage")
    if 0 < reservation < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum memory reservation allowed is 6MB")
    if limit > 0 and reservation > limit:
        raise errors.InvalidParameter(
            "Minimum memory limit can not be less than memory reservation limit, see usage")

    memory: dict = {}
    if limit > 0:
        memory["limit"] = limit
        if not swap:
            swap = 2 * limit          # Docker's default: as much swap as memory
    if reservation > 0:
        memory["reservation"] = reservation
    if swap and limit > 0:
        if facts.swap_limit:
            memory["swap"] = swap
        elif host_config.get("MemorySwap"):
            notes.append("Your kernel does not support swap limit capabilities or the cgroup "
                         "is not mounted. Memory limited without swap.")
    if swappiness is not None and swappiness != -1:
        if not 0 <= int(swappiness) <= 100:
            raise errors.InvalidParameter(
                f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
        if facts.cgroup_version == "v1":      # v2 has no per-cgroup swappiness
            memory["swappiness"] = int(swappiness)
    if host_config.get("OomKillDisable"):
        if facts.cgroup_version == "v2":       # no such knob on v2: Docker drops it too
            notes.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        elif limit > 0:
            memory["disableOOMKiller"] = True
        else:
            notes.append("OOM killer is disabled for the container, but no memory limit is set, "
                         "this can result in the system running out of resources.")
    return memory


def _cpu(host_config: Mapping, facts: HostFacts) -> dict:
    nano = int(host_config.get("NanoCpus") or 0)
    quota = int(host_config.get("CpuQuota") or 0)
    period = int(host_config.get("CpuPeriod") or 0)
    shares = int(host_config.get("CpuShares") or 0)
    if nano and period:
        raise errors.InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and quota:
        raise errors.InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    # 0.01 CPU is the floor: below it the quota drops under the kernel's 1ms.
    if nano and not 10_000_000 <= nano <= facts.ncpus * 1_000_000_000:
        raise errors.InvalidParameter(
            f"Range of CPUs is from 0.01 to {facts.ncpus}.00, as there are only "
            f"{facts.ncpus} CPUs available")
    if period and not 1000 <= period <= 1_000_000:
        raise errors.InvalidParameter(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise errors.InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")

    cpu: dict = {}
    if shares > 0:
        cpu["shares"] = shares
    if nano:
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = nano * CPU_PERIOD // 1_000_000_000
    else:
        if quota:
            cpu["quota"] = quota
        if period:
            cpu["period"] = period
    if host_config.get("CpusetCpus"):
        cpu["cpus"] = host_config["CpusetCpus"]
    if host_config.get("CpusetMems"):
        cpu["mems"] = host_config["CpusetMems"]
    return cpu


def _device_rules(privileged: bool) -> list[dict]:
    if privileged:
        return [{"allow": True, "access": "rwm"}]
    # Deny everything, then moby's defaults in moby's order, then the rules
    # runc adds on its own, so every runtime gets the same list. The fuse deny
    # must come before the mknod wildcards: cgroup v1 cannot punch a hole in
    # a wildcard that is already allowed.
    return [
        {"allow": False, "access": "rwm"},
        _char(1, 5),     # zero
        _char(1, 3),     # null
        _char(1, 9),     # urandom
        _char(1, 8),     # random
        _char(5, 0),     # tty
        _char(5, 1),     # console
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},  # fuse
        {"allow": True, "type": "c", "access": "m"},           # mknod any char dev
        {"allow": True, "type": "b", "access": "m"},           # mknod any block dev
        _char(1, 7),     # full
        _char(5, 2),     # ptmx
        {"allow": True, "type": "c", "major": 136, "access": "rwm"},   # pts/*
    ]


def _char(major: int, minor: int) -> dict:
    return {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}

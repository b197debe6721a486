"""`run`/`create` flags for security, resources and mounts, turned into
HostConfig the way docker's CLI does (opts/mount.go, opts/ulimit.go,
go-units RAMInBytes, parseSecurityOpts reading seccomp profile files)."""
from __future__ import annotations

from .flags import BOOL, INT, LIST, STRING, Flag, UsageError

ISOLATION_FLAGS = [
    Flag("mount", kind=LIST, help="Attach a filesystem mount to the container"),
    Flag("volumes-from", kind=LIST, help="Mount volumes from the specified container(s)"),
    Flag("security-opt", kind=LIST, help="Security Options"),
    Flag("memory", "m", STRING, help="Memory limit"),
    Flag("memory-swap", kind=STRING, help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    Flag("memory-reservation", kind=STRING, help="Memory soft limit"),
    Flag("memory-swappiness", kind=INT, default=-1, help="Tune container memory swappiness (0 to 100)"),
    Flag("oom-kill-disable", kind=BOOL, help="Disable OOM Killer"),
    Flag("oom-score-adj", kind=INT, default=0, help="Tune host's OOM preferences (-1000 to 1000)"),
    Flag("cpus", kind=STRING, help="Number of CPUs"),
    Flag("cpu-shares", "c", INT, default=0, help="CPU shares (relative weight)"),
    Flag("cpu-quota", kind=INT, default=0, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-period", kind=INT, default=0, help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpuset-cpus", kind=STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", kind=STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("pids-limit", kind=INT, default=0, help="Tune container pids limit (set -1 for unlimited)"),
    Flag("blkio-weight", kind=INT, default=0, help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    Flag("ulimit", kind=LIST, help="Ulimit options"),
    Flag("sysctl", kind=LIST, help="Sysctl options"),
    Flag("shm-size", kind=STRING, help="Size of /dev/shm"),
    Flag("ipc", kind=STRING, help="IPC mode to use"),
    Flag("pid", kind=STRING, help="PID namespace to use"),
    Flag("uts", kind=STRING, help="UTS namespace to use"),
    Flag("cgroupns", kind=STRING, help="Cgroup namespace to use (host|private)"),
    Flag("userns", kind=STRING, help="User namespace to use"),
    Flag("group-add", kind=LIST, help="Add additional groups to join"),
    Flag("device", kind=LIST, help="Add a host device to the container"),
    Flag("device-cgroup-rule", kind=LIST, help="Add a rule to the cgroup allowed devices list"),
]

def ram_in_bytes(text: str, flag: str) -> int:
    """go-units RAMInBytes: `32m`, `1.5g`, `512k`, `1024`, `64MiB` (binary units)."""
    from .. import units    # imports re: only for the flags that take a size
    try:
        return units.ram_in_bytes(text)
    except units.SizeError as e:
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: {e}') from None


def parse_cpus(text: str) -> int:
    from fractions import Fraction
    try:
        nano = Fraction(text) * 1_000_000_000
    except (ValueError, ZeroDivisionError):
        raise UsageError(f'invalid argument "{text}" for "--cpus" flag: failed to parse {text} as a '
                         "rational number") from None
    if nano.denominator != 1:
        raise UsageError(f'invalid argument "{text}" for "--cpus" flag: value is too precise')
    return int(nano)


def parse_ulimit(text: str) -> dict:
    """`nofile=1024[:2048]` → {"Name": "nofile", "Soft": 1024, "Hard": 2048}."""
    from ..units import parse_ulimit as parse
    try:
        return parse(text)
    except ValueError as e:
        raise UsageError(f'invalid argument "{text}" for "--ulimit" flag: {e}') from None


def parse_device(text: str) -> dict:
    """`/dev/x[:/dev/y][:rwm]` → a HostConfig.Devices entry."""
    parts = text.split(":")
    perms = "rwm"
    if len(parts) > 1 and parts[-1] and all(c in "rwm" for c in parts[-1]):
        perms = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise UsageError(f'invalid argument "{text}" for "--device" flag: bad format for path: {text}')
    return {"PathOnHost": parts[0], "PathInContainer": parts[1] if len(parts) == 2 else parts[0],
            "CgroupPermissions": perms}


def _bool(value: str, key: str, spec: str) -> bool:
    if value.lower() in ("", "1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise UsageError(f'invalid argument "{spec}" for "--mount" flag: invalid value for {key}: {value}')


def parse_mount(spec: str) -> dict:
    """docker's `--mount` CSV → a HostConfig.Mounts entry."""
    def fail(why: str):
        raise UsageError(f'invalid argument "{spec}" for "--mount" flag: {why}')
    import csv
    fields = next(csv.reader([spec]), [])
    mount: dict = {"Type": "volume"}
    bind, volume, tmpfs = {}, {}, {}
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            fail(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _bool(value, key, spec)
        elif key == "consistency":
            mount["Consistency"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _bool(value, key, spec)
        elif key == "volume-nocopy":
            volume["NoCopy"] = _bool(value, key, spec)
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-label":
            k, _, v = value.partition("=")
            volume.setdefault("Labels", {})[k] = v
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            volume.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v
        elif key == "volume-subpath":
            volume["Subpath"] = value
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = ram_in_bytes(value, "--mount")
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                fail(f"invalid value for {key}: {value}")
        else:
            fail(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        fail("target is required")
    if mount["Type"] not in ("bind", "volume", "tmpfs", "npipe", "cluster", "image"):
        fail(f"invalid value for type: {mount['Type']}")
    for opts, kind, name in ((bind, "bind", "BindOptions"), (volume, "volume", "VolumeOptions"),
                             (tmpfs, "tmpfs", "TmpfsOptions")):
        if opts and mount["Type"] != kind:
            fail(f"cannot mix '{kind}-*' options with mount type '{mount['Type']}'")
        if opts:
            mount[name] = opts
    return mount


def security_opts(items: list[str]) -> list[str]:
    """`seccomp=<file>` is sent as the file's compacted JSON, as docker does."""
    import json
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            key, eq, value = item.partition(":")
        if key == "seccomp" and value not in ("unconfined", "builtin", ""):
            try:
                with open(value, encoding="utf-8") as f:
                    text = f.read()
            except OSError as err:
                raise UsageError(f"opening seccomp profile ({value}) failed: {err.strerror}") from None
            try:
                compact = json.dumps(json.loads(text), separators=(",", ":"))
            except ValueError as err:
                raise UsageError(f"compacting json for seccomp profile ({value}) failed: {err}") from None
            out.append("seccomp=" + compact)
        else:
            out.append(item)
    return out


def apply(opts, config: dict, host: dict) -> None:
    """Fill Config/HostConfig from the flags above (zero values left as docker sends them)."""
    if not hasattr(opts, "security_opt"):     # a command without these flags
        return
    if host.get("Binds"):     # docker's CLI makes `./dir:/x` and `../dir:/x` absolute
        import os
        host["Binds"] = [os.path.abspath(b.split(":", 1)[0]) + ":" + b.split(":", 1)[1]
                         if b.startswith(".") and ":" in b else b for b in host["Binds"]]
    if opts.mount:
        host["Mounts"] = [parse_mount(m) for m in opts.mount]
    if opts.volumes_from:
        host["VolumesFrom"] = list(opts.volumes_from)
    if opts.security_opt:
        host["SecurityOpt"] = security_opts(opts.security_opt)
    if opts.memory:
        host["Memory"] = ram_in_bytes(opts.memory, "-m, --memory")
    if opts.memory_swap:
        host["MemorySwap"] = -1 if opts.memory_swap == "-1" else ram_in_bytes(opts.memory_swap, "--memory-swap")
    if opts.memory_reservation:
        host["MemoryReservation"] = ram_in_bytes(opts.memory_reservation, "--memory-reservation")
    host["MemorySwappiness"] = opts.memory_swappiness
    host["OomKillDisable"] = opts.oom_kill_disable
    host["OomScoreAdj"] = opts.oom_score_adj
    if opts.cpus:
        host["NanoCpus"] = parse_cpus(opts.cpus)
    host["CpuShares"] = opts.cpu_shares
    host["CpuQuota"] = opts.cpu_quota
    host["CpuPeriod"] = opts.cpu_period
    host["CpusetCpus"] = opts.cpuset_cpus or ""
    host["CpusetMems"] = opts.cpuset_mems or ""
    if "pids_limit" in opts.given:
        host["PidsLimit"] = opts.pids_limit
    host["BlkioWeight"] = opts.blkio_weight
    if opts.ulimit:
        host["Ulimits"] = [parse_ulimit(u) for u in opts.ulimit]
    if opts.sysctl:
        host["Sysctls"] = {k: v for k, _, v in (s.partition("=") for s in opts.sysctl)}
    if opts.shm_size:
        host["ShmSize"] = ram_in_bytes(opts.shm_size, "--shm-size")
    host["IpcMode"] = opts.ipc or ""
    host["PidMode"] = opts.pid or ""
    host["UTSMode"] = opts.uts or ""
    host["CgroupnsMode"] = opts.cgroupns or ""
    host["UsernsMode"] = opts.userns or ""
    if opts.group_add:
        host["GroupAdd"] = list(opts.group_add)
    if opts.device:
        host["Devices"] = [parse_device(d) for d in opts.device]
    if opts.device_cgroup_rule:
        host["DeviceCgroupRules"] = list(opts.device_cgroup_rule)

"""Container resource usage in Docker's stats shape, read straight from the
container's cgroup (v1 controllers or the v2 unified tree), /proc/stat and
the container's /proc/<pid>/net/dev; and `top` (host `ps`, filtered to
the container's processes)."""
from __future__ import annotations

import asyncio
import os
import re
import time

from ..errors import Conflict, InvalidParameter, SystemError_

CGROOT = "/sys/fs/cgroup"
_TICKS = os.sysconf("SC_CLK_TCK")
_NS = 1_000_000_000


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


ZERO = "0001-01-01T00:00:00Z"


def cgroup_dirs(pid: int, root: str = CGROOT) -> dict[str, str]:
    """controller → directory of the process's cgroup; "" → the v2 tree."""
    out: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    v2 = os.path.exists(os.path.join(root, "cgroup.controllers"))
    for line in lines:
        _hid, ctrls, path = line.split(":", 2)
        if not ctrls:
            base = root if v2 else os.path.join(root, "unified")
            out[""] = os.path.join(base, path.lstrip("/"))
        else:
            for c in ctrls.split(","):
                out[c] = os.path.join(root, c, path.lstrip("/"))
    return out


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _int(path: str) -> int | None:
    v = _read(path)
    if v is None or v == "max":
        return None
    try:
        return int(v)
    except ValueError:
        return None


def _kv(path: str) -> dict[str, int]:
    out = {}
    for line in (_read(path) or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def system_cpu_usage() -> int:
    """Host CPU time in ns, as Docker computes it (first 7 fields of /proc/stat)."""
    line = (_read("/proc/stat") or "cpu 0").splitlines()[0].split()
    return sum(int(x) for x in line[1:8]) * _NS // _TICKS


def online_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def host_memory() -> int:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


# The memory.stat keys dockerd reports (moby's statsV1/statsV2 over
# containerd's cgroup metrics), each always present (0 when the kernel has
# no such key); the others the kernel lists are left out, as dockerd does.
MEMORY_STATS_V1 = tuple(p + k for p in ("", "total_") for k in (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault",
    "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")) + (
    "hierarchical_memory_limit", "hierarchical_memsw_limit")
MEMORY_STATS_V2 = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
    "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
    "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate",
    "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc")


def _omit_zero(mem: dict) -> dict:
    """moby's MemoryStats fields are all omitempty: a 0 (failcnt, mostly) is left out."""
    return {k: v for k, v in mem.items() if v}


def _v2(d: str) -> tuple[dict, dict, dict, dict]:
    cs = _kv(os.path.join(d, "cpu.stat"))
    cpu = {"cpu_usage": {"total_usage": cs.get("usage_usec", 0) * 1000,
                         "usage_in_kernelmode": cs.get("system_usec", 0) * 1000,
                         "usage_in_usermode": cs.get("user_usec", 0) * 1000},
           "throttling_data": {"periods": cs.get("nr_periods", 0), "throttled_periods": cs.get("nr_throttled", 0),
                               "throttled_time": cs.get("throttled_usec", 0) * 1000}}
    raw = _kv(os.path.join(d, "memory.stat"))
    mem = _omit_zero({"usage": _int(os.path.join(d, "memory.current")) or 0,
                      "stats": {k: raw.get(k, 0) for k in MEMORY_STATS_V2},
                      "failcnt": _kv(os.path.join(d, "memory.events")).get("oom", 0),
                      "limit": min(_int(os.path.join(d, "memory.max")) or host_memory(), host_memory() or 1 << 62)})
    pids = {"current": _int(os.path.join(d, "pids.current")) or 0}
    lim = _int(os.path.join(d, "pids.max"))
    if lim:
        pids["limit"] = lim
    io = []
    for line in (_read(os.path.join(d, "io.stat")) or "").splitlines():
        dev, *fields = line.split()
        major, _, minor = dev.partition(":")
        kv = dict(f.split("=", 1) for f in fields if "=" in f)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            io.append({"major": int(major), "minor": int(minor), "op": op, "value": int(kv.get(key, 0))})
    return cpu, mem, pids, {"io_service_bytes_recursive": io or None}


def _v1(dirs: dict[str, str]) -> tuple[dict, dict, dict, dict]:
    acct = dirs.get("cpuacct", "")
    st = _kv(os.path.join(acct, "cpuacct.stat"))
    percpu = [int(x) for x in (_read(os.path.join(acct, "cpuacct.usage_percpu")) or "").split()]
    thr = _kv(os.path.join(dirs.get("cpu", ""), "cpu.stat"))
    cpu = {"cpu_usage": {"total_usage": _int(os.path.join(acct, "cpuacct.usage")) or 0,
                         "percpu_usage": percpu or None,
                         "usage_in_kernelmode": st.get("system", 0) * _NS // _TICKS,
                         "usage_in_usermode": st.get("user", 0) * _NS // _TICKS},
           "throttling_data": {"periods": thr.get("nr_periods", 0), "throttled_periods": thr.get("nr_throttled", 0),
                               "throttled_time": thr.get("throttled_time", 0)}}
    m = dirs.get("memory", "")
    host = host_memory() or 1 << 62
    raw = _kv(os.path.join(m, "memory.stat"))
    mem = _omit_zero({"usage": _int(os.path.join(m, "memory.usage_in_bytes")) or 0,
                      "max_usage": _int(os.path.join(m, "memory.max_usage_in_bytes")) or 0,
                      "stats": {k: raw.get(k, 0) for k in MEMORY_STATS_V1},
                      "failcnt": _int(os.path.join(m, "memory.failcnt")) or 0,
                      "limit": min(_int(os.path.join(m, "memory.limit_in_bytes")) or host, host)})
    p = dirs.get("pids", "")
    pids = {"current": _int(os.path.join(p, "pids.current")) or 0}
    lim = _int(os.path.join(p, "pids.max"))
    if lim:
        pids["limit"] = lim
    io = []
    for line in (_read(os.path.join(dirs.get("blkio", ""), "blkio.throttle.io_service_bytes_recursive")) or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _, minor = parts[0].partition(":")
            io.append({"major": int(major), "minor": int(minor), "op": parts[1].lower(), "value": int(parts[2])})
    return cpu, mem, pids, {"io_service_bytes_recursive": io or None}


def read_cgroup(dirs: dict[str, str]) -> tuple[dict, dict, dict, dict] | None:
    """(cpu, memory, pids, blkio) stats of a cgroup given as cgroup_dirs()
    returns them (v1 controllers, else the v2 tree); None for neither."""
    if "memory" in dirs or "cpuacct" in dirs:
        return _v1(dirs)
    if "" in dirs:
        return _v2(dirs[""])
    return None


def networks(pid: int) -> dict | None:
    """Per-interface counters from the container's netns view of /proc/net/dev."""
    text = _read(f"/proc/{pid}/net/dev")
    if text is None:
        return None
    out = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        f = rest.split()
        if name == "lo" or len(f) < 16:
            continue
        v = [int(x) for x in f]
        out[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                     "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}
    return out or None


def _empty_cpu() -> dict:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def sample(c) -> dict:
    """One reading; for a stopped container, Docker's all-zero shape."""
    base = {"name": "/" + c.name, "id": c.id, "read": now_rfc3339(), "preread": ZERO,
            "num_procs": 0, "storage_stats": {}, "pids_stats": {},
            "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                            "io_queue_recursive": None, "io_service_time_recursive": None,
                            "io_wait_time_recursive": None, "io_merged_recursive": None,
                            "io_time_recursive": None, "sectors_recursive": None},
            "cpu_stats": _empty_cpu(), "precpu_stats": _empty_cpu(), "memory_stats": {}}
    pid = c.state.pid if c.state.running else 0
    if not pid:
        base["read"] = ZERO
        return base
    reading = read_cgroup(cgroup_dirs(pid))
    if reading is None:
        return base
    cpu, mem, pids, blkio = reading
    cpu["system_cpu_usage"] = system_cpu_usage()
    cpu["online_cpus"] = online_cpus()
    base.update(cpu_stats=cpu, memory_stats=mem, pids_stats=pids)
    base["blkio_stats"].update(blkio)
    nets = networks(pid)
    if nets:
        base["networks"] = nets
    return base


def with_previous(cur: dict, prev: dict | None) -> dict:
    if prev is not None:
        cur["precpu_stats"] = prev["cpu_stats"]
        cur["preread"] = prev["read"]
    return cur


async def stream(c, *, interval: float = 1.0, first_interval: float = 0.5, one_shot: bool = False,
                 count: int | None = None):
    """Readings every interval seconds with precpu from the one before; with
    count=1 (stream=false) the first reading already has a precpu taken
    first_interval earlier (one_shot: none), so CPU % can be computed."""
    prev = None
    if not one_shot and c.state.running:
        prev = await asyncio.to_thread(sample, c)
        await asyncio.sleep(first_interval)
    n = 0
    while True:
        cur = with_previous(await asyncio.to_thread(sample, c), prev)
        yield cur
        n += 1
        if (count is not None and n >= count) or not c.state.running:
            return
        prev = cur
        await asyncio.sleep(interval)


# ------------------------------------------------------------------ top

def container_pids(c) -> set[int]:
    if not c.state.running or not c.state.pid:
        return set()
    dirs = cgroup_dirs(c.state.pid)
    for key in ("pids", "memory", "cpu", ""):
        d = dirs.get(key)
        if d:
            text = _read(os.path.join(d, "cgroup.procs"))
            if text is not None:
                return {int(x) for x in text.split()}
    return {c.state.pid}


_PS_SPACE = re.compile(r"[ \t\n\f\r]+")


def _ps_fields(line: str) -> list[str]:
    """moby's fieldsASCII: split on ASCII blanks only (a command's non-ASCII
    space stays inside its field)."""
    return [f for f in _PS_SPACE.split(line) if f]


def parse_ps(output: str, pids: set[int]) -> dict:
    """`ps` output → Docker's {"Titles", "Processes"}, only the given PIDs, as
    moby's parsePSOutput: a line's fields past the last title are the last
    column, joined by single spaces (no trailing blank), and the thread lines
    `ps -m` prints under a process (PID `-`) follow theirs."""
    lines = output.split("\n")
    titles = _ps_fields(lines[0])
    if not titles:
        raise SystemError_("Error running ps: no output")
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise SystemError_("Couldn't find PID field in ps output") from None
    procs = []
    ours = False
    for line in lines[1:]:
        fields = _ps_fields(line)
        if not fields:
            continue
        if len(fields) <= pid_col:
            raise SystemError_("Unexpected pid '': not a number")
        if fields[pid_col] == "-":
            if ours:
                procs.append(_ps_row(fields, len(titles)))
            continue
        try:
            pid = int(fields[pid_col])
        except ValueError:
            raise SystemError_(f"Unexpected pid '{fields[pid_col]}'") from None
        ours = pid in pids
        if ours:
            procs.append(_ps_row(fields, len(titles)))
    return {"Titles": titles, "Processes": procs}


def _ps_row(fields: list[str], n: int) -> list[str]:
    return fields[:n - 1] + [" ".join(fields[n - 1:])]


async def top(c, ps_args: str) -> dict:
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.status == "restarting":
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
    args = ps_args.split() if ps_args else ["-ef"]
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    out, err = await proc.communicate()
    if proc.returncode != 0:        # with the client's ps_args, the client's mistake (a 400); else the host's
        error = InvalidParameter if ps_args else SystemError_
        raise error(f"Error running ps: exit status {proc.returncode}: {err.decode(errors='replace').strip()}")
    return parse_ps(out.decode(errors="replace"), container_pids(c))


async def processes(d, c, ps_args: str) -> dict:
    """GET /containers/{id}/top: the listing, then moby's `top` event (only once it worked)."""
    res = await top(c, ps_args)
    d.event(c, "top")
    return res

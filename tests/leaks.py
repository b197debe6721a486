"""Leak checker for the integration tests: what a test daemon left on the host.

A container engine touches global state: mounts, network namespaces, links,
nftables/iptables rules, cgroups, runtime state dirs, processes that outlive
their parent. The `daemon` fixture takes a `snapshot()` before it starts a
dockyardd and `check()`s after it has stopped and cleaned up; whatever is new
and belongs to that daemon (its roots, its bridge) is a leak. Comparing with
the snapshot means objects that were there before (a production dockyardd, a
docker0) never count.

Each kind has a collector returning a set of plain tuples, so a snapshot is
`{kind: frozenset(tuples)}` and a leak is a set difference. `reap()` removes
what `check()` found, so one leaky module does not poison the next; the
module still fails.

The parsers (`parse_mountinfo`, `parse_nft_ruleset`, `parse_iptables_save`,
...) take text and are unit-tested in tests/unit/test_leaks.py.
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Iterable

CGROUP_ROOT = "/sys/fs/cgroup"
NETNS_DIR = "/run/netns"
RUNTIME_ROOTS = {"crun": "/run/crun", "runc": "/run/runc"}
# Tables iptables-nft owns: their rules are reported (and removed) as
# iptables rules, not twice.
IPTABLES_NFT_TABLES = {"filter", "nat", "mangle", "raw", "security"}


@dataclass(frozen=True)
class Scope:
    """What belongs to one test daemon.

    roots:  directories only that daemon uses (its temp base, data/exec roots).
    bridge: its bridge name, unique per daemon (e.g. dyt1a2b3c).
    link_prefixes: names of links its network code creates (veths).
    """
    roots: tuple[str, ...]
    bridge: str
    link_prefixes: tuple[str, ...] = ("dy",)

    @property
    def needles(self) -> tuple[str, ...]:
        """Strings whose presence in a command line or mount marks ours."""
        return tuple(r.rstrip("/") for r in self.roots)


Snapshot = dict[str, frozenset]


# ------------------------------------------------------------------ parsers

def unescape_mount_path(s: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 4].isdigit() and len(s[i + 1:i + 4]) == 3:
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Mount:
    mount_id: int
    root: str          # path inside the mounted filesystem
    mountpoint: str
    fstype: str
    source: str
    super_options: str


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse /proc/PID/mountinfo (proc(5)): fields before ' - ' then fstype,
    source, super options."""
    mounts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        f = pre.split()
        p = post.split()
        if len(f) < 5 or len(p) < 2:
            continue
        mounts.append(Mount(
            mount_id=int(f[0]),
            root=unescape_mount_path(f[3]),
            mountpoint=unescape_mount_path(f[4]),
            fstype=p[0],
            source=unescape_mount_path(p[1]),
            super_options=p[2] if len(p) > 2 else "",
        ))
    return mounts


def is_under(path: str, roots: Iterable[str]) -> bool:
    """path is one of roots or inside one (by path components)."""
    path = path.rstrip("/") or "/"
    for r in roots:
        r = r.rstrip("/") or "/"
        if path == r or path.startswith(r + "/") or r == "/":
            return True
    return False


def parse_nft_ruleset(text: str) -> list[tuple]:
    """Parse `nft -a list ruleset` into flat items:

    ("table", family, table, handle)
    ("chain", family, table, chain, handle)
    ("rule",  family, table, chain, handle, rule_text)

    Sets, maps and flowtables are skipped (with their nested braces)."""
    items: list[tuple] = []
    stack: list[tuple[str, str]] = []   # (what, name) per open brace
    family = table = chain = ""

    def handle_of(line: str) -> tuple[str, str]:
        body, _, h = line.partition("# handle ")
        return body.strip(), h.strip()

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        body, handle = handle_of(line)
        opens = body.count("{")
        closes = body.count("}")
        words = body.split()
        depth = len(stack)
        if depth == 0 and words[:1] == ["table"] and body.endswith("{"):
            family, table = words[1], words[2]
            items.append(("table", family, table, handle))
            stack.append(("table", table))
            continue
        if depth == 1 and stack[0][0] == "table" and words[:1] == ["chain"] and body.endswith("{"):
            chain = words[1]
            items.append(("chain", family, table, chain, handle))
            stack.append(("chain", chain))
            continue
        if (depth == 2 and stack[-1][0] == "chain" and opens == closes
                and not (words[:1] == ["type"] and "hook" in words) and not words[:1] == ["policy"]):
            items.append(("rule", family, table, chain, handle, body))
            continue
        # Anything else: keep brace depth right (sets, maps, elements = { ... }).
        for _ in range(opens):
            stack.append(("other", ""))
        for _ in range(closes):
            if stack:
                stack.pop()
    return items


def nft_leaks(items: Iterable[tuple], scope: Scope) -> set[tuple]:
    """From parsed nft items, those that are the daemon's: tables named
    dockyard*/after the bridge, chains named after the bridge, rules that
    mention the bridge (outside iptables-nft's own tables)."""
    found = set()
    for it in items:
        kind, family, table = it[0], it[1], it[2]
        if kind == "table":
            if table.startswith("dockyard-dyt") and scope.bridge not in table:
                continue   # another test daemon's table, running beside this one
            if "dockyard" in table or scope.bridge in table:
                found.add(("table", family, table))
            continue
        if family in ("ip", "ip6") and table in IPTABLES_NFT_TABLES:
            continue
        if kind == "chain" and scope.bridge in it[3]:
            found.add(("chain", family, table, it[3]))
        elif kind == "rule" and scope.bridge in it[5]:
            found.add(("rule", family, table, it[3], it[4], it[5]))
    return found


def parse_iptables_save(text: str) -> list[tuple[str, str]]:
    """`iptables-save` output as (table, line) for chain (':X ...') and rule
    ('-A X ...') lines."""
    out, table = [], ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith((":", "-A ")) and table:
            out.append((table, line))
    return out


def iptables_delete_args(table: str, line: str) -> list[str]:
    """The arguments that delete the rule or chain an iptables-save line
    describes: '-A FORWARD -i br0 -j ACCEPT' -> -t filter -D FORWARD ..."""
    if line.startswith(":"):
        return ["-t", table, "-X", line[1:].split()[0]]
    args = shlex.split(line)
    assert args[0] == "-A", line
    return ["-t", table, "-D", *args[1:]]


def cmdline_text(raw: bytes) -> str:
    """/proc/PID/cmdline: NUL-separated argv -> one line."""
    return " ".join(a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0"))


def proc_state(stat_text: str) -> str:
    """The state letter from /proc/PID/stat (the comm may hold spaces and ')')."""
    return stat_text[stat_text.rindex(")") + 2:].split()[0]


def mentions(text: str, needles: Iterable[str]) -> bool:
    """text names one of the paths in needles (as a path, not a prefix of a
    longer name: /tmp/dyt1 does not match /tmp/dyt12)."""
    for n in needles:
        start = 0
        while (i := text.find(n, start)) >= 0:
            end = i + len(n)
            if end == len(text) or text[end] in "/ \t,:=\"')":
                return True
            start = i + 1
    return False


# --------------------------------------------------------------- collectors

def _read(path: str, mode: str = "r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def _run(*cmd: str) -> str:
    if not shutil.which(cmd[0]):
        return ""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def find_processes(needles: Iterable[str], exclude: Iterable[int] = ()) -> set[tuple[int, str, str]]:
    """Live processes whose command line names one of the needles, or whose
    root mount (seen from inside their own mount namespace) does: the
    latter finds container processes, whose rootfs lives under the roots.
    Returns (pid, comm, cmdline); zombies are skipped (nothing to clean)."""
    needles = tuple(needles)
    skip = {os.getpid(), *exclude}
    my_mnt = _ns_inode("self")
    found = set()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in skip:
            continue
        pid = int(d)
        raw = _read(f"/proc/{pid}/cmdline", "rb")
        stat = _read(f"/proc/{pid}/stat")
        if raw is None or stat is None or proc_state(stat) in ("Z", "X"):
            continue
        cmd = cmdline_text(raw)
        hit = mentions(cmd, needles)
        if not hit and (mnt := _ns_inode(str(pid))) is not None and mnt != my_mnt:
            hit = _root_mount_mentions(pid, needles)
        if hit:
            comm = (_read(f"/proc/{pid}/comm") or "?").strip()
            found.add((pid, comm, cmd[:300]))
    return found


def _ns_inode(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def _root_mount_mentions(pid: int, needles: tuple[str, ...]) -> bool:
    text = _read(f"/proc/{pid}/mountinfo")
    if not text:
        return False
    for m in parse_mountinfo(text):
        if m.mountpoint == "/":
            if mentions(" ".join((m.root, m.source, m.super_options)), needles):
                return True
    return False


def collect_processes(scope: Scope) -> set:
    return find_processes(scope.needles)


def mounts_under(roots: Iterable[str], text: str | None = None) -> list[Mount]:
    text = text if text is not None else (_read("/proc/self/mountinfo") or "")
    roots = tuple(roots)
    return [m for m in parse_mountinfo(text) if is_under(m.mountpoint, roots)]


def collect_mounts(scope: Scope) -> set:
    return {(m.mountpoint, m.fstype, m.source) for m in mounts_under(scope.roots)}


def other_test_roots(path: str, scope: Scope) -> bool:
    """path lies in another test daemon's temp base (a dyt* sibling of ours,
    or a private reference dockerd's rdXXXXXX, tests/refdockerd.py), i.e.
    belongs to a run going on beside this one."""
    for r in scope.roots:
        parent, mine = os.path.split(r.rstrip("/"))
        rel = os.path.relpath(path, parent)
        first = rel.split("/", 1)[0]
        if not rel.startswith("..") and first != mine and (
                first.startswith("dyt") or re.fullmatch(r"rd[0-9a-f]{6}", first)):
            return True
    return False


def collect_nsfs(scope: Scope) -> set:
    text = _read("/proc/self/mountinfo") or ""
    return {(m.mountpoint,) for m in parse_mountinfo(text)
            if m.fstype == "nsfs" and not other_test_roots(m.mountpoint, scope)}


def collect_netns(scope: Scope) -> set:
    try:
        return {(n,) for n in os.listdir(NETNS_DIR)}
    except OSError:
        return set()


def link_is_ours(name: str, scope: Scope, is_bridge: bool, master: str | None) -> bool:
    """Our bridge; a veth-like dy* link or one enslaved to our bridge; a
    dockyard* bridge. Another test run's dyt* bridge, or a link enslaved to
    it, is not ours."""
    if name == scope.bridge or master == scope.bridge:
        return True
    if master is not None:
        return False
    if name.startswith("dockyard"):
        return True
    return not is_bridge and name.startswith(scope.link_prefixes)


def parse_ip_link_json(text: str) -> list[tuple[str, bool, str | None]]:
    """`ip -d -j link show` -> (name, is_bridge, master). Netlink, not
    /sys/class/net: sysfs shows the links of the netns that mounted it."""
    try:
        links = json.loads(text or "[]")
    except ValueError:
        return []
    return [(l["ifname"], (l.get("linkinfo") or {}).get("info_kind") == "bridge", l.get("master"))
            for l in links if "ifname" in l]


def user_network_bridges(text: str, scope: Scope) -> set[str]:
    """Bridges of the daemon's user-defined networks (br-*): they carry the
    alias `dockyard-net:<its bridge>` (network/hostsetup.py)."""
    try:
        links = json.loads(text or "[]")
    except ValueError:
        return set()
    return {l["ifname"] for l in links if l.get("ifalias") == f"dockyard-net:{scope.bridge}"}


def collect_links(scope: Scope) -> set:
    text = _run("ip", "-d", "-j", "link", "show")
    user_bridges = user_network_bridges(text, scope)
    return {(name,) for name, is_bridge, master in parse_ip_link_json(text)
            if link_is_ours(name, scope, is_bridge, master) or name in user_bridges or master in user_bridges}


def collect_nft(scope: Scope) -> set:
    return nft_leaks(parse_nft_ruleset(_run("nft", "-a", "list", "ruleset")), scope)


def collect_iptables(scope: Scope) -> set:
    found = set()
    for cmd in ("iptables", "ip6tables"):
        for table, line in parse_iptables_save(_run(cmd + "-save")):
            if scope.bridge in line:
                found.add((cmd, table, line))
    return found


def cgroup_dirs(base: str = CGROUP_ROOT) -> set[str]:
    """dockyard* cgroups at the top of the hierarchy, one level down
    (v1 controllers, hybrid unified/, or a v2 slice), two levels down (a
    slice in a v1 controller), and every cgroup below those."""
    tops = set()
    for pat in ("dockyard*", "*/dockyard*", "*/*/dockyard*"):
        tops.update(p for p in glob.glob(os.path.join(base, pat)) if os.path.isdir(p))
    out = set()
    for t in tops:
        for dirpath, _dirs, _files in os.walk(t):
            out.add(dirpath)
    return out


def cgroup_of_other_run(path: str, scope: Scope) -> bool:
    """/dockyard/<id> of a container another test daemon beside ours holds
    (its data root, a dyt* sibling of ours, has that container)."""
    cid = os.path.basename(path.rstrip("/"))
    for r in scope.roots:
        parent, mine = os.path.split(r.rstrip("/"))
        try:
            siblings = [n for n in os.listdir(parent) if n.startswith("dyt") and n != mine]
        except OSError:
            continue
        if any(os.path.exists(os.path.join(parent, n, "data", "containers", cid)) for n in siblings):
            return True
    return False


def cgroup_of_other_parent(path: str, scope: Scope) -> bool:
    """Under another test daemon's --cgroup-parent (dockyard-dyt*, not ours)."""
    return any(part.startswith("dockyard-dyt") and part != f"dockyard-{scope.bridge}"
               for part in path.split("/"))


def collect_cgroups(scope: Scope) -> set:
    return {(p,) for p in cgroup_dirs()
            if not cgroup_of_other_parent(p, scope) and not cgroup_of_other_run(p, scope)}


def state_cgroup_paths(text: str) -> list[str]:
    """The cgroups a runtime state file names: crun's `status` has
    "cgroup-path" (relative to each hierarchy), runc's `state.json` has
    "cgroup_paths" (absolute, per controller)."""
    try:
        st = json.loads(text)
    except ValueError:
        return []
    if not isinstance(st, dict):
        return []
    out = [st["cgroup-path"]] if isinstance(st.get("cgroup-path"), str) and st["cgroup-path"] else []
    paths = st.get("cgroup_paths")
    if isinstance(paths, dict):
        out += [v for v in paths.values() if isinstance(v, str) and v]
    return out


def cgroup_mountpoints(text: str | None = None) -> list[str]:
    text = text if text is not None else (_read("/proc/self/mountinfo") or "")
    return [m.mountpoint for m in parse_mountinfo(text) if m.fstype in ("cgroup", "cgroup2")]


def cgroup_dirs_of(path: str, mountpoints: Iterable[str]) -> list[str]:
    """A state file's cgroup path as directories: an absolute path under a
    cgroup mount as is, a relative one ("/dockyard/ID") in every hierarchy."""
    mountpoints = list(mountpoints)
    if any(is_under(path, [m]) for m in mountpoints):
        return [path]
    return [m.rstrip("/") + "/" + path.lstrip("/") for m in mountpoints]


def find_state_files(dirs: Iterable[str], max_depth: int = 4) -> list[str]:
    """Runtime state files (crun `status`, runc `state.json`) at most
    max_depth levels below dirs."""
    found = []
    for top in dirs:
        top = top.rstrip("/")
        for dirpath, subdirs, files in os.walk(top):
            depth = dirpath[len(top):].count("/")
            if depth >= max_depth:
                subdirs[:] = []
            found += [os.path.join(dirpath, f) for f in files if f in ("status", "state.json")]
    return found


def container_cgroups(state_files: Iterable[str]) -> set[str]:
    """The existing cgroup directories that runtime state files name."""
    mps = cgroup_mountpoints()
    dirs: set[str] = set()
    for f in state_files:
        for p in state_cgroup_paths(_read(f) or ""):
            dirs.update(d for d in cgroup_dirs_of(p, mps) if os.path.isdir(d))
    return dirs


def remove_cgroups(dirs: Iterable[str], wait: float = 3.0) -> list[str]:
    """rmdir these cgroups (their processes must be gone), children first,
    then their parent when it is an empty dockyard* cgroup."""
    dirs = set(dirs)
    problems: list[str] = []
    for d in dirs:
        tree = sorted((dp for dp, _, _ in os.walk(d)), key=len, reverse=True)
        for sub in tree:
            deadline = time.monotonic() + wait
            while True:
                try:
                    os.rmdir(sub)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:   # EBUSY while the last task exits
                    if time.monotonic() > deadline:
                        problems.append(f"rmdir {sub}: {e}")
                        break
                    time.sleep(0.05)
    for parent in {os.path.dirname(d) for d in dirs}:
        if os.path.basename(parent).startswith("dockyard"):
            try:
                os.rmdir(parent)
            except OSError:
                pass   # still used (another daemon's containers): leave it
    return problems


def find_runtime_state(needles: Iterable[str]) -> set[tuple[str, str, str]]:
    """crun/runc state dirs in their default roots whose state files (crun's
    `status`, runc's `state.json`) name one of the needles (the bundle or
    rootfs path): (runtime, root, container id)."""
    needles = tuple(needles)
    found = set()
    for runtime, root in RUNTIME_ROOTS.items():
        try:
            entries = os.listdir(root)
        except OSError:
            continue
        for cid in entries:
            d = os.path.join(root, cid)
            for name in ("status", "state.json"):
                text = _read(os.path.join(d, name))
                if text and mentions(text, needles):
                    found.add((runtime, root, cid))
                    break
    return found


def collect_runtime_state(scope: Scope) -> set:
    return find_runtime_state(scope.needles)


COLLECTORS: dict[str, Callable[[Scope], set]] = {
    "processes": collect_processes,
    "mounts": collect_mounts,
    "nsfs": collect_nsfs,
    "netns": collect_netns,
    "links": collect_links,
    "nft": collect_nft,
    "iptables": collect_iptables,
    "cgroups": collect_cgroups,
    "runtime_state": collect_runtime_state,
}


# --------------------------------------------------------- snapshot / check

def snapshot(scope: Scope, kinds: Iterable[str] | None = None) -> Snapshot:
    return {k: frozenset(COLLECTORS[k](scope)) for k in (kinds or COLLECTORS)}


def diff(before: Snapshot, after: Snapshot) -> dict[str, list]:
    """What is in after and not before, per kind; empty kinds left out. Rules
    and chains of a leaked nft table are folded into the table."""
    out = {}
    for kind, items in after.items():
        new = set(items) - set(before.get(kind, ()))
        if kind == "nft":
            tables = {(it[1], it[2]) for it in new if it[0] == "table"}
            new = {it for it in new if it[0] == "table" or (it[1], it[2]) not in tables}
        if new:
            out[kind] = sorted(new, key=lambda t: tuple(str(x) for x in t))
    return out


def cgroup_populated(path: str) -> bool:
    """Some process is in this cgroup or below it."""
    for dirpath, _dirs, _files in os.walk(path):
        if (_read(os.path.join(dirpath, "cgroup.procs")) or "").strip():
            return True
    return False


def check(before: Snapshot, scope: Scope, kinds: Iterable[str] | None = None) -> dict[str, list]:
    """What is new since `before` and ours. New cgroups that still hold
    processes are left out: once the daemon is stopped and its processes
    killed, a populated one belongs to someone else (our own live processes
    show up under `processes`)."""
    kinds = list(kinds or before.keys())
    found = diff({k: before.get(k, frozenset()) for k in kinds}, snapshot(scope, kinds))
    if "cgroups" in found:
        found["cgroups"] = [c for c in found["cgroups"] if not cgroup_populated(c[0])]
        if not found["cgroups"]:
            del found["cgroups"]
    if "links" in found:
        # An unattached dy* veth is also what another test daemon on this
        # host holds for a moment while it plumbs a container: only one
        # that is still there a moment later is a leak (and only then is
        # it reaped, so a parallel run's link is never taken from it).
        time.sleep(1.0)
        still = COLLECTORS["links"](scope)
        found["links"] = [item for item in found["links"] if item in still]
        if not found["links"]:
            del found["links"]
    return found


def describe(kind: str, item: tuple) -> str:
    if kind == "processes":
        pid, comm, cmd = item
        return f"pid {pid} ({comm}): {cmd}"
    if kind == "mounts":
        mp, fstype, source = item
        return f"{mp} ({fstype} from {source})"
    if kind in ("nsfs", "netns", "links", "cgroups"):
        return item[0]
    if kind == "nft":
        if item[0] == "table":
            return f"table {item[1]} {item[2]}"
        if item[0] == "chain":
            return f"chain {item[1]} {item[2]} {item[3]}"
        return f"rule in {item[1]} {item[2]} {item[3]}: {item[5]}"
    if kind == "iptables":
        cmd, table, line = item
        return f"{cmd} -t {table}: {line}"
    if kind == "runtime_state":
        runtime, root, cid = item
        return f"{runtime} state {root}/{cid}"
    return repr(item)


def format_leaks(found: dict[str, list], scope: Scope) -> str:
    lines = [f"dockyardd left these behind (roots {', '.join(scope.roots)}, bridge {scope.bridge}):"]
    for kind, items in found.items():
        lines.append(f"  {kind}:")
        lines.extend(f"    - {describe(kind, it)}" for it in items)
    return "\n".join(lines)


# ----------------------------------------------------------------- cleanup

MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def unmount(path: str) -> str | None:
    """Lazily unmount path; an error text, or None when done."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err == 22:    # EINVAL: not a mount point (any more)
            return None
        return f"umount {path}: {os.strerror(err)}"
    return None


def unmount_under(roots: Iterable[str]) -> list[str]:
    """Unmount everything mounted under roots, deepest first, until nothing
    is left (a mount can hide another one on the same point)."""
    problems: list[str] = []
    for _ in range(10):
        mounts = mounts_under(roots)
        if not mounts:
            return []
        problems = [p for m in sorted(mounts, key=lambda m: -m.mount_id) if (p := unmount(m.mountpoint))]
    return problems or [f"still mounted: {m.mountpoint}" for m in mounts_under(roots)]


def kill_processes(procs: Iterable[tuple[int, str, str]], wait: float = 5.0) -> list[str]:
    """SIGKILL exactly these processes (re-checking each pid still runs the
    same command line, so a reused pid is left alone), then wait for them."""
    pids = []
    for pid, _comm, cmd in procs:
        raw = _read(f"/proc/{pid}/cmdline", "rb")
        if raw is None or cmdline_text(raw)[:300] != cmd:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            pids.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if (st := _read(f"/proc/{p}/stat")) and proc_state(st) not in ("Z", "X")]
        if pids:
            time.sleep(0.05)
    return [f"pid {p} survived SIGKILL" for p in pids]


def _cmd(*args: str) -> str | None:
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{shlex.join(args)}: {e}"
    return None if r.returncode == 0 else f"{shlex.join(args)}: {r.stderr.strip()}"


def reap(found: dict[str, list], scope: Scope) -> list[str]:
    """Remove what check() found, best effort, in dependency order; returns
    what could not be removed."""
    problems: list[str] = []
    add = problems.append
    if "processes" in found:
        problems += kill_processes(found["processes"])
    for runtime, root, cid in found.get("runtime_state", ()):
        if not shutil.which(runtime) or _cmd(runtime, "--root", root, "delete", "--force", cid):
            shutil.rmtree(os.path.join(root, cid), ignore_errors=True)
    problems += unmount_under(scope.roots)
    for (mp,) in found.get("nsfs", ()):
        if p := unmount(mp):
            add(p)
    for (name,) in found.get("netns", ()):
        path = os.path.join(NETNS_DIR, name)
        unmount(path)
        try:
            os.unlink(path)
        except OSError as e:
            add(f"rm {path}: {e}")
    for cmd, table, line in found.get("iptables", ()):
        if line.startswith("-A ") and (p := _cmd(cmd, *iptables_delete_args(table, line))):
            add(p)
    for cmd, table, line in found.get("iptables", ()):
        if line.startswith(":") and (p := _cmd(cmd, *iptables_delete_args(table, line))):
            add(p)
    nft = found.get("nft", ())
    for it in nft:
        if it[0] == "rule" and (p := _cmd("nft", "delete", "rule", it[1], it[2], it[3], "handle", it[4])):
            add(p)
    for it in nft:
        if it[0] == "chain" and (p := _cmd("nft", "delete", "chain", it[1], it[2], it[3])):
            add(p)
    for it in nft:
        if it[0] == "table" and (p := _cmd("nft", "delete", "table", it[1], it[2])):
            add(p)
    for (name,) in found.get("links", ()):
        if (p := _cmd("ip", "link", "delete", name)) and "Cannot find device" not in p:
            add(p)
    for (path,) in sorted(found.get("cgroups", ()), key=lambda t: -len(t[0])):
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            add(f"rmdir {path}: {e}")
    return problems


def remove_tree(top: str) -> list[str]:
    """rm -rf top without ever crossing into another filesystem: if a mount
    is still there, what it shows (perhaps the host's /) is left alone."""
    problems: list[str] = []
    try:
        dev = os.lstat(top).st_dev
    except FileNotFoundError:
        return problems

    def rm(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if st.st_dev != dev:
            problems.append(f"not removed (another filesystem is mounted there): {path}")
            return
        if os.path.isdir(path) and not os.path.islink(path):
            with os.scandir(path) as it:
                for e in it:
                    rm(e.path)
            try:
                os.rmdir(path)
            except OSError as e:
                problems.append(f"rmdir {path}: {e}")
        else:
            try:
                os.unlink(path)
            except OSError as e:
                problems.append(f"rm {path}: {e}")

    rm(top)
    return problems


__all__ = [
    "Scope", "Snapshot", "snapshot", "check", "diff", "format_leaks", "reap",
    "find_processes", "kill_processes", "mounts_under", "unmount_under", "remove_tree",
    "find_state_files", "container_cgroups", "remove_cgroups",
    "parse_mountinfo", "parse_nft_ruleset", "parse_iptables_save",
]

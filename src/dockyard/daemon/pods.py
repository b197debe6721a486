"""Kubernetes pod sandboxes (the CRI's RunPodSandbox & co), the engine side.

A pod is not a container: no pause process. Its network, IPC and UTS
namespaces are made and pinned as files by the daemon (nsfiles.py) under
<exec-root>/cri/pods/<id>/ns/, and the pod's containers join them by path
(a shared PID namespace, which dies with its PID 1, is held by a
pause-mode init: nsfiles.spawn_pid_holder); its cgroup_parent's
directories that the daemon makes go with the pod;
a hostNetwork pod uses the host's network and UTS namespaces, a hostIPC pod
the host's IPC. The pod's /etc/hostname, /etc/hosts and /etc/resolv.conf
(from its DNSConfig, else the host's) are written under
<data-root>/cri/pods/<id>/ and bind-mounted into its containers.

Pods live in their own table (`cri_pods`): the Docker API never sees them,
as containerd keeps Kubernetes' objects in its `k8s.io` namespace.

Networking beyond loopback is CNI's (`PodNetwork`, `CniPodNetwork` over
network/cni.py: setup when the pod is made, teardown when it stops or is
removed, from CNI's result cache after a daemon restart); with no valid
config in the conf dir the runtime reports NetworkReady false and
pods get loopback only (the kubelet runs no such pod but hostNetwork ones).
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

from .. import nsfiles
from ..errors import Conflict, InvalidParameter, NotFound
from ..linux import is_mountpoint, mount, umount
from ..runtime import cgroups

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
SHM_SIZE = 64 << 20       # Docker's and containerd's default /dev/shm
from ..store.db import Database, dumps, loads
from . import ids

log = logging.getLogger("dockyard.pods")

READY, NOTREADY = "ready", "notready"
POD_EVENTS_NAMESPACE = "k8s.io"      # the CRI's objects' namespace (podcontainers.NAMESPACE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS cri_pods (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    rec  TEXT NOT NULL
);
"""


class NameReserved(Conflict):
    """The pod's metadata (name, namespace, uid, attempt) is another pod's."""


class NoSuchPod(NotFound):
    def __init__(self, ref: str):
        super().__init__(f"an error occurred when try to find sandbox {ref!r}: not found")


@dataclass
class Pod:
    id: str
    name: str
    uid: str
    namespace: str
    attempt: int = 0
    created_ns: int = 0
    state: str = READY
    hostname: str = ""
    host_network: bool = False
    host_ipc: bool = False
    pid_mode: str = "pod"            # pod | container | node | target (the pod's NamespaceOption.pid)
    pid_ns: str = ""                 # pid_mode "pod": the pod's PID namespace, pinned ...
    pid_holder: int = 0              # ... and its PID 1 (nsfiles.spawn_pid_holder), as the host sees it
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    log_directory: str = ""
    runtime_handler: str = ""
    cgroup_parent: str = ""
    cgroups_made: list = field(default_factory=list)   # the pod's cgroup directories dockyard made (to remove)
    dns_servers: list = field(default_factory=list)
    dns_searches: list = field(default_factory=list)
    dns_options: list = field(default_factory=list)
    port_mappings: list = field(default_factory=list)
    sysctls: dict = field(default_factory=dict)     # the pod's namespaced sysctls, set in each container
    ip: str = ""
    additional_ips: list = field(default_factory=list)
    net_attached: bool = False                      # its CNI network is set up (until a teardown succeeds)
    ns: dict = field(default_factory=dict)          # {"net"|"ipc"|"uts": pinned file} of the pod's own
    shm: str = ""                                   # the pod's /dev/shm (a tmpfs of its own; the host's for hostIPC)
    etc_files: dict = field(default_factory=dict)   # {path in container: host file}
    config: dict = field(default_factory=dict)      # the whole PodSandboxConfig, as the CRI sent it (JSON)

    @property
    def reserved_name(self) -> str:
        """containerd's sandbox name: one pod per metadata."""
        return "_".join((self.name, self.namespace, self.uid, str(self.attempt)))

    def to_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict) -> "Pod":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in rec.items() if k in known})


class PodNetwork(Protocol):
    """Where CNI plugs in (network/cni.py's CNI(...).setup/teardown): set up
    the pod's network in its namespace and return its IPs; undo it."""
    def status(self) -> tuple[bool, str, str]: ...      # (NetworkReady, reason, message)
    def setup(self, pod: Pod, netns: str) -> list[str]: ...
    def teardown(self, pod: Pod, netns: str) -> None: ...


class LoopbackOnly:
    """No CNI network: the pod's namespace has loopback and nothing else."""
    ready = False
    reason = "NetworkPluginNotReady: no CNI network is configured; pods get loopback only"

    def status(self) -> tuple[bool, str, str]:
        reason, _, message = self.reason.partition(": ")
        return False, reason, message

    def setup(self, pod: Pod, netns: str) -> list[str]:
        return []

    def teardown(self, pod: Pod, netns: str) -> None:
        pass


def _port_mappings(pod: Pod) -> list:
    """The pod's hostPorts as portmap takes them (containerd passes only
    mappings with a host port; the CRI's protocol enum is TCP, UDP, SCTP)."""
    from ..network.cni import PortMapping
    out = []
    for m in pod.port_mappings:
        host_port = int(m.get("host_port") or 0)
        if host_port <= 0:
            continue
        out.append(PortMapping(host_port, int(m.get("container_port") or 0), str(m.get("protocol") or "TCP").lower(),
                               str(m.get("host_ip") or "")))
    return out


def _pod_ips(ips: list[str]) -> list[str]:
    """containerd's selectPodIPs: an IPv4 address is the pod's IP when it has
    one, the rest are its additional IPs, in the plugin's order."""
    v4 = [ip for ip in ips if ":" not in ip]
    return [v4[0], *[ip for ip in ips if ip != v4[0]]] if v4 else list(ips)


class CniPodNetwork:
    """PodNetwork over network/cni.py's CNI client (`setup(container_id,
    netns_path, ifname, args, port_mappings=, dns=) -> Result`, `teardown(...)`,
    `status()`): what dockyardd wires in (--cni-bin-dir, --cni-conf-dir, the
    result cache under the data root). The pod's IPs are its result's on
    `ifname`; hostPorts reach portmap through its `portMappings` capability,
    the pod's DNS config through `dns`. Teardown passes the same (the cache
    has what ADD used, so a restarted daemon tears down what it set up)."""

    def __init__(self, cni, ifname: str = "eth0"):
        self.cni = cni
        self.ifname = ifname

    def status(self) -> tuple[bool, str, str]:
        st = self.cni.status()
        return bool(st.ready), st.reason, st.message

    @property
    def ready(self) -> bool:
        return self.status()[0]

    @staticmethod
    def args(pod: Pod) -> dict:
        """CNI_ARGS as the kubelet's runtimes pass them."""
        return {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": pod.namespace, "K8S_POD_NAME": pod.name,
                "K8S_POD_INFRA_CONTAINER_ID": pod.id, "K8S_POD_UID": pod.uid}

    @staticmethod
    def _extras(pod: Pod) -> dict:
        from ..network.cni import DNSConfig
        extras: dict = {"port_mappings": _port_mappings(pod)}
        if pod.dns_servers or pod.dns_searches or pod.dns_options:
            extras["dns"] = DNSConfig(tuple(pod.dns_servers), tuple(pod.dns_searches), tuple(pod.dns_options))
        return extras

    def setup(self, pod: Pod, netns: str) -> list[str]:
        result = self.cni.setup(pod.id, netns, self.ifname, self.args(pod), **self._extras(pod))
        ips = result.ips_of(self.ifname) if hasattr(result, "ips_of") else \
            [ip for ip in (result.get("ips") or [])]
        out = []
        for ip in ips:
            addr = ip.get("address") if isinstance(ip, dict) else getattr(ip, "address", "")
            if addr:
                out.append(str(addr).split("/", 1)[0])
        return _pod_ips(out)

    def teardown(self, pod: Pod, netns: str) -> None:
        self.cni.teardown(pod.id, netns, self.ifname, self.args(pod), **self._extras(pod))


# ---------------------------------------------------------------- the pod's cgroup

def cgroup_path(parent: str) -> str:
    """The pod's cgroup_parent as a path under each hierarchy's root ("":
    none). A cgroupfs path (/kubepods/burstable/pod<uid>, what the kubelet
    passes with the cgroupfs driver dockyard reports) is taken as it is; a
    systemd slice name (kubepods-burstable-pod<uid>.slice, the systemd
    driver's) goes where systemd would put that slice
    (kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice),
    dockyard driving cgroupfs either way."""
    parent = parent.strip()
    parts = [x for x in parent.split("/") if x]
    if "\0" in parent or any(x in (".", "..") for x in parts):
        raise InvalidParameter(f"invalid cgroup parent {parent!r}")
    if parts == ["-.slice"]:          # systemd's root slice
        return ""
    if len(parts) == 1 and parts[0].endswith(".slice"):
        bits = parts[0][:-len(".slice")].split("-")
        if not all(bits):
            raise InvalidParameter(f"invalid slice name {parent!r}")
        parts = ["-".join(bits[:i + 1]) + ".slice" for i in range(len(bits))]
    return "/".join(parts)


def _inherit_cpuset(parent: str, child: str) -> None:
    """A new cgroup v1 cpuset starts empty (no task may join it): the parent's CPUs and memory nodes."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        try:
            with open(os.path.join(child, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(parent, name)) as f:
                value = f.read().strip()
            with open(os.path.join(child, name), "w") as f:
                f.write(value)
        except OSError:
            pass


def make_cgroup(rel: str, base: str = cgroups.BASE) -> list[str]:
    """The pod's cgroup `rel` in every hierarchy (as the kubelet makes a
    pod's before its sandbox runs); the directories this made, in order,
    for remove_cgroups. Nothing is left made on failure."""
    made: list[str] = []
    if not rel:
        return made
    v2 = os.path.exists(os.path.join(base, "cgroup.controllers"))
    try:
        for h in [base] if v2 else cgroups.hierarchies(base):
            if not os.path.exists(os.path.join(h, "cgroup.procs")):
                continue            # not a cgroup hierarchy (v1's tmpfs at the base)
            cpuset = "cpuset" in os.path.basename(h).split(",")
            cur = h
            for part in rel.split("/"):
                up, cur = cur, os.path.join(cur, part)
                if os.path.isdir(cur):
                    continue
                os.mkdir(cur, 0o755)
                made.append(cur)
                if cpuset:
                    _inherit_cpuset(up, cur)
    except BaseException:
        remove_cgroups(rel, made)
        raise
    return made


def remove_cgroups(rel: str, made: list[str]) -> list[str]:
    """Remove what make_cgroup made, deepest first, and before that the
    cgroups containers left in the pod's (a runtime could not rmdir them while
    zombies held them); rmdir alone: a cgroup in use stays. What is left."""
    left = []
    for path in reversed(made):
        if not os.path.isdir(path):
            continue
        if rel and path.endswith("/" + rel):
            try:
                children = [e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False) and len(e.name) == 64]
            except OSError:
                children = []
            for cid in children:
                cgroups.remove_container(rel, cid)
        try:
            os.rmdir(path)
        except OSError:
            left.append(path)
    return left


def cgroup_dirs(rel: str, base: str = cgroups.BASE) -> dict[str, str]:
    """The pod's cgroup as stats.cgroup_dirs gives a process's: controller →
    directory (v1), "" → the v2 tree; {} when it has none."""
    if not rel:
        return {}
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        d = os.path.join(base, rel)
        return {"": d} if os.path.isdir(d) else {}
    out = {}
    for h in cgroups.hierarchies(base):
        d = os.path.join(h, rel)
        name = os.path.basename(h)
        if name != os.path.basename(base) and os.path.isdir(d):
            for ctrl in name.split(","):
                out[ctrl] = d
    return out


def write_limits(dirs: dict[str, str], limits: dict) -> None:
    """Pod-level resources into the pod's cgroup (cgroup_dirs' shape):
    limits {cpu_period, cpu_quota, cpu_shares, memory, cpuset_cpus,
    cpuset_mems}, 0/"" left as they are; v2 files, else v1's."""
    def put(d: str | None, name: str, value) -> None:
        if d:
            with open(os.path.join(d, name), "w") as f:
                f.write(str(value))
    period, quota, shares = limits.get("cpu_period") or 0, limits.get("cpu_quota") or 0, limits.get("cpu_shares") or 0
    if "" in dirs:
        d = dirs[""]
        if quota:
            put(d, "cpu.max", f"{quota if quota > 0 else 'max'} {period or 100000}")
        if shares:      # runc's and the kubelet's shares -> weight
            put(d, "cpu.weight", 1 + ((max(shares, 2) - 2) * 9999) // 262142)
        if limits.get("memory"):
            put(d, "memory.max", limits["memory"])
        cpuset = d
    else:
        cpu, mem = dirs.get("cpu"), dirs.get("memory")
        if period:
            put(cpu, "cpu.cfs_period_us", period)
        if quota:
            put(cpu, "cpu.cfs_quota_us", quota)
        if shares:
            put(cpu, "cpu.shares", shares)
        if limits.get("memory"):
            put(mem, "memory.limit_in_bytes", limits["memory"])
        cpuset = dirs.get("cpuset")
    if limits.get("cpuset_cpus"):
        put(cpuset, "cpuset.cpus", limits["cpuset_cpus"])
    if limits.get("cpuset_mems"):
        put(cpuset, "cpuset.mems", limits["cpuset_mems"])


def _loopback_up() -> None:
    from ..network.plumbing import plumb_inside
    plumb_inside(None, None)


class PodService:
    def __init__(self, db: Database, data_root: str, exec_root: str, network: PodNetwork | None = None,
                 emit: Callable[..., object] | None = None):
        self.db = db
        self._emit = emit        # the event bus's emit: pod transitions for the CRI's GetContainerEvents
        db.ensure_schema(SCHEMA)
        self.files_root = os.path.join(data_root, "cri", "pods")
        self.ns_root = os.path.join(exec_root, "cri", "pods")
        self.network: PodNetwork = network or LoopbackOnly()
        self._pods: dict[str, Pod] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        for row in db.query("SELECT rec FROM cri_pods"):
            p = Pod.from_record(loads(row["rec"]))
            self._pods[p.id] = p
            own_shm = [p.shm] if p.shm and p.shm != "/dev/shm" else []
            if p.state == READY and not all(is_mountpoint(path) for path in [*p.ns.values(), *own_shm]):
                # its namespaces went with a reboot (the exec root is a tmpfs): not ready any more
                log.warning("pod %s lost its namespaces; it is not ready", p.id[:12])
                p.state = NOTREADY
                self._save(p)
            elif p.state == READY and not self.pid_ns_alive(p):
                # as containerd's sandbox whose pause process died
                log.warning("pod %s lost the holder of its PID namespace; it is not ready", p.id[:12])
                p.state = NOTREADY
                self._save(p)

    # ------------------------------------------------------------ lookups
    def get(self, ref: str) -> Pod:
        """By full id or a unique id prefix (as containerd's index)."""
        if not ref:
            raise InvalidParameter("pod sandbox id must not be empty")
        p = self._pods.get(ref)
        if p is not None:
            return p
        matches = [p for i, p in self._pods.items() if i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple sandboxes found with prefix {ref!r}")
        raise NoSuchPod(ref)

    def list(self) -> list[Pod]:
        return sorted(self._pods.values(), key=lambda p: p.created_ns)

    def _lock(self, pid: str) -> asyncio.Lock:
        return self._locks.setdefault(pid, asyncio.Lock())

    def _event(self, p: Pod, action: str) -> None:
        """create | start | stop | destroy of the pod, in the CRI's namespace
        (never Docker's /events), as containerd reports sandboxes: by their id."""
        if self._emit is not None:
            self._emit("pod", action, p.id, {"sandbox": p.id}, namespace=POD_EVENTS_NAMESPACE)

    def _save(self, p: Pod) -> None:
        self.db.execute("UPDATE cri_pods SET rec = ? WHERE id = ?", (dumps(p.to_record()), p.id))

    # ------------------------------------------------------------ verbs
    async def run(self, p: Pod) -> Pod:
        """Make the pod: reserve its name, pin its namespaces, write its /etc
        files, set up its network; on any failure nothing is left."""
        if not p.name or not p.uid or not p.namespace:
            raise InvalidParameter("sandbox config must include metadata with name, uid and namespace")
        if len(p.hostname.encode()) > 64 or "\0" in p.hostname:
            raise InvalidParameter(f"invalid hostname {p.hostname!r}: at most 64 bytes")
        cgroup_path(p.cgroup_parent)        # a malformed one fails here, before anything is made
        p.id = ids.new_id()
        p.created_ns = time.time_ns()
        p.state = NOTREADY
        try:
            self.db.execute("INSERT INTO cri_pods (id, name, rec) VALUES (?, ?, ?)",
                            (p.id, p.reserved_name, dumps(p.to_record())))
        except sqlite3.IntegrityError:
            other = self.db.one("SELECT id FROM cri_pods WHERE name = ?", (p.reserved_name,))
            raise NameReserved(f"failed to reserve sandbox name {p.reserved_name!r}: name {p.reserved_name!r} "
                               f"is reserved for {other['id'] if other else '?'!r}") from None
        self._pods[p.id] = p
        try:
            await asyncio.to_thread(self._make, p)
        except BaseException:
            await asyncio.to_thread(self._unmake, p)
            self._forget(p)
            raise
        p.state = READY
        self._save(p)
        self._event(p, "create")
        self._event(p, "start")
        return p

    def _make(self, p: Pod) -> None:
        nsdir = os.path.join(self.ns_root, p.id, "ns")
        own = {}
        if not p.host_network:
            own["net"] = os.path.join(nsdir, "net")
            own["uts"] = os.path.join(nsdir, "uts")
        if not p.host_ipc:
            own["ipc"] = os.path.join(nsdir, "ipc")
        p.ns = own
        os.makedirs(nsdir, mode=0o700, exist_ok=True)
        p.cgroups_made = make_cgroup(cgroup_path(p.cgroup_parent))
        hostname = p.hostname or os.uname().nodename      # containerd: the node's when the pod names none
        nsfiles.pin(own, hostname=hostname, then=_loopback_up if "net" in own else None)
        if p.pid_mode == "pod" and not nsfiles.holder_binary():
            log.warning("pod %s: no pause-mode init (catatonit) on the host: its containers get a PID "
                        "namespace each", p.id[:12])
        elif p.pid_mode == "pod":
            # one PID namespace for the pod's containers, held by a pause-mode
            # init (catatonit -P) as containerd's by its pause container: not
            # the first container's, which ends when that container exits or
            # restarts, and whose PID 1 would be the application (critest
            # PodPID: no container of the pod is PID 1)
            p.pid_ns = os.path.join(nsdir, "pid")
            p.pid_holder = nsfiles.spawn_pid_holder(p.pid_ns)
        if p.host_ipc:
            p.shm = "/dev/shm"
        else:        # one /dev/shm for the pod, as its IPC namespace is one (containerd's sandbox shm)
            shm = os.path.join(self.ns_root, p.id, "shm")
            os.makedirs(shm, mode=0o700, exist_ok=True)
            mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={SHM_SIZE}")
            p.shm = shm
        from ..network.etcfiles import write_etc_files
        files = os.path.join(self.files_root, p.id)
        os.makedirs(files, mode=0o700, exist_ok=True)
        # CNI's setup comes first when it is wired in: the hosts file names the pod's IP
        if "net" in own and self.network.status()[0]:
            p.net_attached = True       # from here a failure is undone by a teardown (CNI's DEL is safe to repeat)
            ips = self.network.setup(p, own["net"])
            p.ip, p.additional_ips = (ips[0] if ips else ""), list(ips[1:])
        elif "net" in own:      # no valid CNI config: loopback only (NetworkReady false tells the kubelet)
            log.info("pod %s: no CNI network is ready; it has loopback only", p.id[:12])
        p.etc_files = write_etc_files(files, hostname, "", p.ip or None, dns=p.dns_servers,
                                      dns_search=p.dns_searches, dns_options=p.dns_options)

    def _release_network(self, p: Pod) -> None:
        """The network and the namespaces: what a stopped pod gives back
        (containerd removes the netns at StopPodSandbox too)."""
        net = p.ns.get("net")
        if net and p.net_attached:
            # even when its namespace is gone (a reboot): the IPAM lease, the
            # host's veth end and the hostPort rules are the host's
            try:
                self.network.teardown(p, net)
            except Exception:
                log.exception("pod %s: network teardown failed", p.id[:12])
                raise
            p.net_attached = False
        if p.pid_ns:
            nsfiles.stop_pid_holder(p.pid_holder, p.pid_ns)
            p.pid_holder = 0
        for path in p.ns.values():
            nsfiles.unpin(path)
        if p.shm and p.shm != "/dev/shm":
            umount(p.shm)
        p.ip, p.additional_ips = "", []

    def _unmake(self, p: Pod) -> None:
        self._release_network(p)
        # what a daemon killed in the middle of _make pinned but never recorded
        nsdir = os.path.join(self.ns_root, p.id, "ns")
        pid_pin = os.path.join(nsdir, "pid")
        if os.path.exists(pid_pin):
            nsfiles.stop_pid_holder(p.pid_holder, pid_pin)
        for kind in nsfiles.FLAGS:
            if os.path.exists(os.path.join(nsdir, kind)):
                nsfiles.unpin(os.path.join(nsdir, kind))
        if p.cgroups_made:
            left = remove_cgroups(cgroup_path(p.cgroup_parent), p.cgroups_made)
            if left:
                log.warning("pod %s: cgroups still in use, left: %s", p.id[:12], ", ".join(left))
            p.cgroups_made = []
        shutil.rmtree(os.path.join(self.ns_root, p.id), ignore_errors=True)
        shutil.rmtree(os.path.join(self.files_root, p.id), ignore_errors=True)

    def _forget(self, p: Pod) -> None:
        self.db.execute("DELETE FROM cri_pods WHERE id = ?", (p.id,))
        self._pods.pop(p.id, None)
        self._locks.pop(p.id, None)

    async def stop(self, ref: str) -> Pod:
        """Idempotent: the pod's containers stopped (the CRI container
        service's part), its network torn down, its namespaces released."""
        p = self.get(ref)
        async with self._lock(p.id):
            if p.state == NOTREADY and not p.net_attached and not any(os.path.exists(x) for x in p.ns.values()) and \
                    not (p.shm and p.shm != "/dev/shm" and is_mountpoint(p.shm)) and \
                    not (p.pid_ns and os.path.exists(p.pid_ns)):
                return p
            was = p.state
            await asyncio.to_thread(self._release_network, p)
            p.state = NOTREADY
            self._save(p)
            if was == READY:
                self._event(p, "stop")
        return p

    async def remove(self, ref: str) -> None:
        """Stop (forcibly) and forget the pod; an unknown pod is no error
        (kubelet retries removals)."""
        try:
            p = self.get(ref)
        except NoSuchPod:
            return
        async with self._lock(p.id):
            if p.id not in self._pods:
                return
            await asyncio.to_thread(self._unmake, p)
            self._forget(p)
            self._event(p, "destroy")

    def pid_ns_alive(self, p: Pod) -> bool:
        """Whether the pod's own PID namespace (if it has one) still has its
        holder: without it no process can join."""
        return not p.pid_ns or nsfiles.holds(p.pid_holder, p.pid_ns)

    def cgroup_dirs(self, p: Pod) -> dict:
        """The pod's cgroup (its cgroup_parent), as stats reads a container's."""
        return cgroup_dirs(cgroup_path(p.cgroup_parent)) if p.cgroup_parent else {}

    def namespace_paths(self, p: Pod) -> dict:
        """{kind: path} a container of the pod joins (kinds the pod shares with the host are absent)."""
        return dict(p.ns)

    def close(self) -> None:
        """Pods outlive the daemon: their namespaces stay pinned."""

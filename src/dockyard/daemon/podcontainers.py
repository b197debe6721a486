"""Containers of Kubernetes pods (the CRI's CreateContainer & co), on the
engine's own create and start path.

A CRI container is an engine container in the store's "k8s.io" namespace
(lookup.py: `docker ps` never lists it), made from the Docker-shaped
Config/HostConfig the CRI layer translates its ContainerConfig into, plus
`Container.cri`: its pod, CRI metadata, labels, annotations and the
kubelet's log path. The start path asks three things of this module:
the pod's network namespace and /etc files (`pod_network`), the pod's IPC
and UTS namespaces joined by path (`join_pod_namespaces`), and conmon's
log at the kubelet's path (`log_path`, in the CRI format conmon writes).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from typing import TYPE_CHECKING, Protocol

from ..errors import Conflict, DockyardError, InvalidParameter, NotFound
from ..fsutil import disk_usage
from . import ids
from .container import CREATED, EXITED, PAUSED, RUNNING, Container, now_rfc3339

if TYPE_CHECKING:
    from ..images.service import ImageService
    from ..runtime.hostfacts import HostFacts
    from ..runtime.runtimes import Runtimes
    from ..volumes.service import VolumeService
    from .daemon import DaemonConfig
    from .exec import ExecManager
    from .lifecycle import Lifecycle
    from .lookup import ContainerStore
    from .paths import Layout
    from .pods import Pod, PodService

NAMESPACE = "k8s.io"     # containerd's namespace for Kubernetes


class NoSuchCriContainer(NotFound):
    def __init__(self, ref: str):
        super().__init__(f"an error occurred when try to find container {ref!r}: not found")


class _Daemon(Protocol):
    config: DaemonConfig
    containers: ContainerStore
    images: ImageService
    facts: HostFacts
    runtimes: Runtimes
    volumes: VolumeService
    layout: Layout
    lifecycle: Lifecycle
    execs: ExecManager
    pods: PodService
    def runtime_for(self, c: Container): ...
    def save(self, c: Container) -> None: ...
    def event(self, c: Container, action: str, **extra) -> None: ...


# ---------------------------------------------------------------- the start path's questions

def pod_network(c: Container) -> tuple[str, dict, dict]:
    """(netns for the spec: a path or "host", {path in container: host file},
    the container's network record) of a CRI container's pod."""
    netns = c.cri.get("netns") or "host"
    etc = dict(c.cri.get("etc_files") or {})
    return netns, etc, {"Mode": "pod", "SandboxKey": "" if netns == "host" else netns, "EtcFiles": etc,
                        "Hostname": c.cri.get("hostname", ""), "Pod": c.cri.get("pod", "")}


def join_pod_namespaces(spec: dict, c: Container) -> None:
    """The pod's IPC and UTS namespaces joined by path (the host's when the
    pod shares the host's) and its /dev/shm; the PID namespace per the
    container's option (else the pod's): the host's for NODE, the pod's for
    POD (pinned, held by its pause-mode init: pods.py), TARGET's container's
    (as it runs at the start), the container's own otherwise. The CRI's mounts as containerd makes them (cri_mount_options)."""
    ns = c.cri.get("ns") or {}
    linux = spec.setdefault("linux", {})
    out = []
    for entry in linux.get("namespaces") or []:
        kind = entry.get("type")
        if kind in ("ipc", "uts"):
            if kind in ns:
                out.append({"type": kind, "path": ns[kind]})
            continue                              # the host's
        if kind == "pid" and c.cri.get("pid_mode") == "node":
            continue
        if kind == "pid" and c.cri.get("pid_mode") == "pod" and c.cri.get("pid_ns"):
            out.append({"type": "pid", "path": c.cri["pid_ns"]})
            continue
        if kind == "pid" and c.cri.get("pid_mode") == "target" and c.cri.get("pid_path"):
            out.append({"type": "pid", "path": c.cri["pid_path"]})
            continue
        out.append(entry)
    linux["namespaces"] = out
    cri_mount_options(spec, c.cri.get("mounts") or [])
    if c.cri.get("shm"):                          # the pod's /dev/shm, shared as its IPC namespace is
        spec["mounts"] = [m for m in spec.get("mounts") or [] if m.get("destination") != "/dev/shm"]
        spec["mounts"].append({"destination": "/dev/shm", "type": "bind", "source": c.cri["shm"],
                               "options": ["rbind", "rprivate"]})
    spec.pop("hostname", None)                    # the pod's UTS namespace has it
    spec.pop("domainname", None)


def cri_mount_options(spec: dict, mounts: list[dict]) -> None:
    """A CRI mount's read-only is containerd's plain `ro` (the bind itself;
    a submount stays writable) unless it asks for recursive_read_only: the
    engine's binds are recursively read-only (`rro`) as Docker 25's."""
    wanted = {os.path.normpath(m["container_path"]): m for m in mounts if m.get("readonly")}
    for m in spec.get("mounts") or []:
        want = wanted.get(os.path.normpath(m.get("destination") or "/"))
        if want is None or m.get("type") != "bind":
            continue
        opts = [o for o in m.get("options") or [] if o not in ("ro", "rro")]
        if want.get("recursive_read_only") and "rro" not in (m.get("options") or []):
            raise InvalidParameter(f"recursive read-only mount of {want['container_path']!r} is not supported "
                                   "by the kernel or the runtime")
        m["options"] = opts + ["rro" if want.get("recursive_read_only") else "ro"]


def cgroups_path(c: Container, default_parent: str) -> str:
    """The container's cgroup: under its pod's cgroup_parent when the pod
    has one (containerd's <parent>/<id> with cgroupfs), else the daemon's."""
    parent = (c.cri or {}).get("cgroup_parent") or default_parent
    return f"/{parent.strip('/')}/{c.id}"


def log_path(c: Container) -> str:
    """The kubelet's log path (pod log directory + the container's), or ""."""
    return c.cri.get("log_path") or ""


# ---------------------------------------------------------------- the service

def restrict_oom_score_adj(value: int, own: int | None = None) -> int:
    """No lower than the daemon's own (containerd's restrict_oom_score_adj):
    lowering it needs CAP_SYS_RESOURCE, which a host may not grant."""
    if own is None:
        try:
            with open("/proc/self/oom_score_adj") as f:
                own = int(f.read().strip() or 0)
        except (OSError, ValueError):
            own = 0
    return max(value, own)


def _state_ns(text: str) -> int:
    from ..timestamps import parse_ns
    try:
        return parse_ns(text) if text and not text.startswith("0001-") else 0
    except ValueError:
        return 0


class PodContainers:
    def __init__(self, d: _Daemon):
        self.d = d

    def list(self) -> list[Container]:
        return sorted(self.d.containers.in_namespace(NAMESPACE), key=lambda c: c.cri.get("created_ns", 0))

    def get(self, ref: str) -> Container:
        """By full id or a unique id prefix, among the CRI's containers."""
        if not ref:
            raise InvalidParameter("container id must not be empty")
        found = [c for c in self.d.containers.in_namespace(NAMESPACE) if c.id == ref]
        if not found:
            found = [c for c in self.d.containers.in_namespace(NAMESPACE) if c.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidParameter(f"multiple containers found with prefix {ref!r}")
        raise NoSuchCriContainer(ref)

    def of_pod(self, pod_id: str) -> list[Container]:
        return [c for c in self.list() if c.cri.get("pod") == pod_id]

    def create(self, pod: Pod, name: str, attempt: int, image_ref: str, config: dict, host_config: dict,
               labels: dict, annotations: dict, log_file: str, mounts: list | None = None,
               pid_mode: str = "", pid_target: str = "") -> Container:
        """The container in the store, its rootfs made; nothing else on failure.
        `config`/`host_config` are Docker-shaped (the CRI layer's translation);
        `mounts` the CRI's mounts as recorded for its status, `pid_mode` the
        container's own NamespaceOption.pid ("": the pod's), `pid_target`
        TARGET's container (running, in the same pod, as containerd checks)."""
        from .create import fill_daemon_defaults
        from .pods import READY, NameReserved, cgroup_path
        d = self.d
        if pod.state != READY:
            raise Conflict(f"sandbox {pod.id} is not ready: cannot create a container in it")
        if not name:
            raise InvalidParameter("container config must include metadata with a name")
        if pid_mode == "target":
            pid_target = self._running_target(pod.id, pid_target).id
        img = d.images.resolve(image_ref)
        image_cfg = d.images.config(img.id) or {}
        from ..runtime.spec import validate as validate_host_config
        hc = dict(host_config)
        hc["OomScoreAdj"] = restrict_oom_score_adj(int(hc.get("OomScoreAdj") or 0))
        if pod.sysctls:
            hc["Sysctls"] = {**pod.sysctls, **(hc.get("Sysctls") or {})}
            if pod.host_network:       # the host's network: its net.* are not the pod's to set
                hc["Sysctls"] = {k: v for k, v in hc["Sysctls"].items() if not k.startswith("net.")}
        hc["NetworkMode"] = "host" if pod.host_network else "none"   # the pod's namespace is joined at start
        hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
        hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
        validate_host_config(hc, d.facts)
        fill_daemon_defaults(hc, d.facts)
        hc["IpcMode"] = "private"         # the pod's namespace is joined at start (join_pod_namespaces)
        cfg = dict(config)
        cfg.setdefault("Env", None)
        cfg.setdefault("Labels", {})
        cfg["Image"] = image_ref
        cfg["Hostname"] = pod.hostname or pod.name
        runtime = pod.runtime_handler if pod.runtime_handler in ("crun", "runc") else d.runtimes.default
        reserved = "_".join((name, pod.name, pod.namespace, pod.uid, str(attempt)))
        cid = ids.new_id()
        c = Container(id=cid, name=reserved, created=now_rfc3339(), image=img.id, image_ref=image_ref,
                      config=cfg, host_config=hc, runtime=runtime, namespace=NAMESPACE)
        c.cri = {"pod": pod.id, "name": name, "attempt": attempt, "labels": dict(labels),
                 "annotations": dict(annotations), "created_ns": time.time_ns(),
                 "log_path": os.path.join(pod.log_directory, log_file) if pod.log_directory and log_file else "",
                 "netns": pod.ns.get("net", ""), "ns": {k: v for k, v in pod.ns.items() if k != "net"},
                 "etc_files": dict(pod.etc_files), "hostname": cfg["Hostname"],
                 "pid_mode": pid_mode or pod.pid_mode, "pid_ns": pod.pid_ns, "pid_target": pid_target,
                 "cgroup_parent": cgroup_path(pod.cgroup_parent), "mounts": list(mounts or []),
                 "shm": pod.shm,
                 "image": image_ref}
        mounts = d.volumes.plan(hc, cfg, image_cfg, d.containers)
        try:
            d.containers.add(c)
        except NameReserved:
            raise
        except Conflict as e:
            raise NameReserved(e.message) from None
        paths = d.layout.container(c.id)
        try:
            os.makedirs(paths.dir, mode=0o700, exist_ok=True)
            paths.rootfs.create()
            d.volumes.attach(c.id, mounts)
        except BaseException:
            d.containers.remove(c)
            shutil.rmtree(paths.dir, ignore_errors=True)
            paths.rootfs.remove()
            raise
        d.event(c, "create")         # the CRI's namespace only (daemon.event)
        return c

    async def start(self, c: Container) -> None:
        from .pods import READY
        pod = self.d.pods.get(c.cri.get("pod", ""))
        if pod.state != READY:
            raise Conflict(f"sandbox {pod.id} is not ready: cannot start container {c.id}")
        if c.cri.get("pid_mode") == "pod" and c.cri.get("pid_ns") and not self.d.pods.pid_ns_alive(pod):
            raise Conflict(f"sandbox {pod.id} lost the holder of its PID namespace: cannot start container {c.id}")
        if c.state.status != CREATED:
            raise Conflict(f"container {c.id} is in {c.state.status} state: only a created container starts")
        if c.cri.get("pid_mode") == "target":       # the target's namespace as it runs now
            target = self._running_target(pod.id, c.cri.get("pid_target", ""))
            c.cri["pid_path"] = f"/proc/{target.state.pid}/ns/pid"
        await self.d.lifecycle.start(c)

    def _running_target(self, pod_id: str, ref: str) -> Container:
        """NamespaceOption TARGET's container: of the same pod, running."""
        if not ref:
            raise InvalidParameter("target_id must be set for NamespaceMode TARGET")
        t = self.get(ref)
        if t.cri.get("pod") != pod_id:
            raise InvalidParameter(f"container {t.id} (sandbox {t.cri.get('pod')}) does not belong to sandbox {pod_id}")
        if not t.state.running or not t.state.pid:
            raise Conflict(f"container {t.id} is not running - in state {cri_state(t)}")
        return t

    async def stop(self, c: Container, timeout: int) -> None:
        """Stop with the container's stop signal, SIGKILL after `timeout`
        seconds (0: at once); a container not running is no error."""
        from ..errors import NotModified
        try:
            if timeout <= 0:
                await self.d.lifecycle.kill(c, str(int(signal.SIGKILL)), c.id)
            else:
                await self.d.lifecycle.stop(c, timeout)
        except NotModified:
            pass
        except Conflict:
            if c.state.running:
                raise

    async def remove(self, c: Container) -> None:
        await self.d.lifecycle.remove(c, force=True, volumes=True)

    async def exec_sync(self, c: Container, argv: list[str], timeout: int,
                        max_output: int) -> tuple[int, bytes, bytes]:
        """Run argv in the running container on the engine's exec path (its
        own conmon, as the streaming Exec) and wait (timeout seconds, 0: no
        limit): (exit code, stdout, stderr), each cut at max_output. Past the
        timeout the process is killed before ExecTimedOut is raised (critest
        checks it is gone). A command that cannot start is its exit code
        (126/127) with the runtime's message on stderr, as `crun exec` says."""
        from .attach import CONMON_STDERR, CONMON_STDOUT
        from .exec import StartFailed
        if not c.state.running:
            raise Conflict(f"container {c.id} is not running")
        ex = self.d.execs.create(c, {"Cmd": argv, "AttachStdout": True, "AttachStderr": True})
        try:
            sock = await self.d.execs.start(ex, c, attach=True)
        except StartFailed as e:
            return e.exit_code, b"", (str(e) + "\n").encode()[:max_output]
        loop = asyncio.get_running_loop()
        out, err = bytearray(), bytearray()

        async def read() -> None:
            while pkt := await loop.sock_recv(sock, 65536):
                buf = out if pkt[0] == CONMON_STDOUT else err if pkt[0] == CONMON_STDERR else None
                if buf is not None and len(buf) < max_output:
                    buf.extend(pkt[1:1 + max_output - len(buf)])
            await ex.done.wait()
        try:
            await asyncio.wait_for(read(), timeout if timeout > 0 else None)
        except asyncio.TimeoutError:
            self.d.execs.kill(ex, signal.SIGKILL)
            try:
                await asyncio.wait_for(ex.done.wait(), 10)
            except asyncio.TimeoutError:
                pass
            raise ExecTimedOut(f"command {argv!r} timed out after {timeout}s") from None
        finally:
            sock.close()
        code = ex.exit_code if ex.exit_code is not None else -1
        return (code if code >= 0 else 255), bytes(out), bytes(err)

    async def usage(self, c: Container) -> dict:
        """What the CRI's ContainerStats reports, from the container's cgroup
        (daemon/stats.py) and its writable layer: {timestamp, cpu_ns,
        memory_usage, working_set, rss, page_faults, major_page_faults,
        layer_bytes, layer_inodes, layer_dir}; cpu and memory absent when it
        does not run."""
        from . import stats

        def read() -> dict:
            out: dict = {"timestamp": time.time_ns()}
            if c.state.running:
                s = stats.sample(c)
                mem = s.get("memory_stats") or {}
                raw = mem.get("stats") or {}
                usage = int(mem.get("usage") or 0)
                inactive = raw.get("inactive_file", raw.get("total_inactive_file", 0))
                out.update(cpu_ns=int(s["cpu_stats"]["cpu_usage"]["total_usage"]), memory_usage=usage,
                           working_set=max(usage - inactive, 0), rss=raw.get("anon", raw.get("rss", 0)),
                           page_faults=raw.get("pgfault", 0), major_page_faults=raw.get("pgmajfault", 0))
            upper = self.d.layout.container(c.id).rootfs.upper
            used, inodes = disk_usage(upper)
            out.update(layer_bytes=used, layer_inodes=inodes, layer_dir=upper)
            return out
        return await asyncio.to_thread(read)

    async def reopen_log(self, c: Container) -> None:
        """ReopenContainerLog: conmon reopens the kubelet's log path (after the
        kubelet renamed the file away); answered once the new file is there."""
        from .logrotate import request_reopen
        if not c.state.running:
            raise Conflict(f"container {c.id} is not running")
        path = log_path(c)
        if not path:
            return
        if not request_reopen(self.d.layout.container(c.id).bundle):
            raise DockyardError(f"failed to ask conmon of container {c.id} to reopen its log")
        deadline = time.monotonic() + 5
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise DockyardError(f"conmon did not reopen the log of container {c.id} ({path})")
            await asyncio.sleep(0.02)

    async def update_resources(self, c: Container, body: dict) -> None:
        """UpdateContainerResources: `docker update`'s path (live through the
        runtime when it runs, recorded for the next start either way)."""
        from .update import update
        await update(self.d, c, body)

    async def stop_sandbox(self, ref: str) -> None:
        """StopPodSandbox: every container of the pod killed, then the pod's
        network and namespaces released (idempotent)."""
        pod = self.d.pods.get(ref)
        for c in self.of_pod(pod.id):
            if c.state.running:
                await self.stop(c, 0)
        await self.d.pods.stop(pod.id)

    async def remove_sandbox(self, ref: str) -> None:
        """RemovePodSandbox: the pod's containers removed (forcibly), then the
        pod; an unknown pod is no error."""
        from .pods import NoSuchPod
        try:
            pod = self.d.pods.get(ref)
        except NoSuchPod:
            return
        for c in self.of_pod(pod.id):
            await self.remove(c)
        await self.d.pods.remove(pod.id)


def cri_state(c: Container) -> str:
    """created | running | exited | unknown, the CRI's ContainerState."""
    st = c.state.status
    if st == CREATED:
        return "created"
    if st in (RUNNING, PAUSED):
        return "running"
    if st == EXITED:
        return "exited"
    return "unknown"


def times_ns(c: Container) -> tuple[int, int, int]:
    """(created, started, finished) in ns since the epoch; 0 when not yet."""
    return c.cri.get("created_ns", 0), _state_ns(c.state.started_at), _state_ns(c.state.finished_at)


class ExecTimedOut(DockyardError):
    """ExecSync's command outlived its timeout (killed): gRPC DeadlineExceeded, as containerd."""

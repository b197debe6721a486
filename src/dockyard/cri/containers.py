"""The RuntimeService's container calls (a mixin of RuntimeServicer), and
the translation of a CRI ContainerConfig into the engine's Docker-shaped
Config and HostConfig (pure: tests/unit/test_cri_logic.py)."""
from __future__ import annotations

import asyncio
import json
import time

from ..daemon import podcontainers
from ..errors import Conflict, InvalidParameter, NotImplementedYet
from .proto import pb
from .server import batches, rpc, stream_rpc

_STATES = {"created": pb.CONTAINER_CREATED, "running": pb.CONTAINER_RUNNING, "exited": pb.CONTAINER_EXITED,
           "unknown": pb.CONTAINER_UNKNOWN}
_PROPAGATION = {pb.PROPAGATION_PRIVATE: "", pb.PROPAGATION_HOST_TO_CONTAINER: "rslave",
                pb.PROPAGATION_BIDIRECTIONAL: "rshared"}
MAX_EXEC_OUTPUT = 16 << 20       # the CRI's message limit for ExecSync output
_STATE_NAMES = {k: pb.ContainerState.Name(v) for k, v in _STATES.items()}


def _seccomp_opt(sc: pb.LinuxContainerSecurityContext) -> list[str]:
    """The CRI's seccomp choice as Docker's SecurityOpt. Unset is
    Unconfined (the CRI's default, as containerd's)."""
    if sc.HasField("seccomp"):
        kind, ref = sc.seccomp.profile_type, sc.seccomp.localhost_ref
    else:       # the deprecated string form
        path = sc.seccomp_profile_path
        kind = {"runtime/default": pb.SecurityProfile.RuntimeDefault,
                "docker/default": pb.SecurityProfile.RuntimeDefault}.get(path, pb.SecurityProfile.Unconfined)
        ref = ""
        if path.startswith("localhost/"):
            kind, ref = pb.SecurityProfile.Localhost, path[len("localhost/"):]
    if kind == pb.SecurityProfile.RuntimeDefault:
        return []
    if kind == pb.SecurityProfile.Localhost:
        try:
            with open(ref) as f:
                return ["seccomp=" + f.read()]
        except OSError as e:
            raise InvalidParameter(f"failed to load seccomp profile {ref!r}: {e.strerror}") from None
    return ["seccomp=unconfined"]


def _text(value: bytes | str) -> str:
    """An env value (bytes in the current api.proto, a string before)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def docker_shapes(cfg: pb.ContainerConfig) -> tuple[dict, dict]:
    """(Config, HostConfig) of the engine for a CRI ContainerConfig."""
    config: dict = {"Tty": cfg.tty, "OpenStdin": cfg.stdin, "StdinOnce": cfg.stdin_once,
                    "Env": [f"{e.key}={_text(e.value)}" for e in cfg.envs] or None}
    if cfg.command:
        config["Entrypoint"] = list(cfg.command)      # the image's Cmd goes with it, as in containerd
    if cfg.args:
        config["Cmd"] = list(cfg.args)
    if cfg.working_dir:
        config["WorkingDir"] = cfg.working_dir
    linux = cfg.linux
    sc = linux.security_context
    user = sc.run_as_username or (str(sc.run_as_user.value) if sc.HasField("run_as_user") else "")
    if sc.HasField("run_as_group") and not user:      # containerd refuses it too
        raise InvalidParameter(f"user group {sc.run_as_group.value} is specified without user")
    if sc.HasField("run_as_group"):
        user = f"{user or '0'}:{sc.run_as_group.value}"
    if user:
        config["User"] = user
    res = linux.resources
    hc: dict = {"Privileged": sc.privileged, "ReadonlyRootfs": sc.readonly_rootfs,
                "CapAdd": list(sc.capabilities.add_capabilities) or None,
                "CapDrop": list(sc.capabilities.drop_capabilities) or None,
                "GroupAdd": [str(g) for g in sc.supplemental_groups] or None,
                "SecurityOpt": (["no-new-privileges"] if sc.no_new_privs else []) + _seccomp_opt(sc),
                "CpuPeriod": res.cpu_period, "CpuQuota": res.cpu_quota, "CpuShares": res.cpu_shares,
                "Memory": res.memory_limit_in_bytes, "MemorySwap": swap_limit(res),
                "CpusetCpus": res.cpuset_cpus, "CpusetMems": res.cpuset_mems,
                "OomScoreAdj": res.oom_score_adj}
    if sc.masked_paths:
        hc["MaskedPaths"] = list(sc.masked_paths)
    if sc.readonly_paths:
        hc["ReadonlyPaths"] = list(sc.readonly_paths)
    binds = []
    for m in cfg.mounts:
        if m.HasField("image") and m.image.image:       # KEP-4639's image volumes: not here
            raise NotImplementedYet("image volume mounts are not supported by dockyard")
        if not m.container_path or not m.host_path:
            raise InvalidParameter("a mount needs both a host path and a container path")
        opts = [o for o in ("ro" if m.readonly else "", _PROPAGATION.get(m.propagation, "")) if o]
        binds.append(f"{m.host_path}:{m.container_path}" + (":" + ",".join(opts) if opts else ""))
    hc["Binds"] = binds or None
    devices = [{"PathOnHost": d.host_path, "PathInContainer": d.container_path or d.host_path,
                "CgroupPermissions": d.permissions or "rwm"} for d in cfg.devices]
    hc["Devices"] = devices or None
    return config, hc


def cri_mounts(cfg: pb.ContainerConfig) -> list[dict]:
    """The CRI's mounts as the container records them (its status reports
    them; the start path's cri_mount_options makes `readonly` containerd's
    plain `ro`). A recursive read-only mount must be read-only and private
    (as containerd 2 and CRI-O refuse it otherwise)."""
    out = []
    for m in cfg.mounts:
        if m.recursive_read_only and not m.readonly:
            raise InvalidParameter(f"recursive read-only mount of {m.container_path!r} must be read-only")
        if m.recursive_read_only and m.propagation != pb.PROPAGATION_PRIVATE:
            raise InvalidParameter(f"recursive read-only mount of {m.container_path!r} needs private propagation, "
                                   f"not {pb.MountPropagation.Name(m.propagation)}")
        out.append({"host_path": m.host_path, "container_path": m.container_path, "readonly": m.readonly,
                    "recursive_read_only": m.recursive_read_only, "selinux_relabel": m.selinux_relabel,
                    "propagation": pb.MountPropagation.Name(m.propagation)})
    return out


def _pid_mode(cfg: pb.ContainerConfig) -> tuple[str, str]:
    """The container's own NamespaceOption.pid ("": none given, the pod's)
    and, for TARGET, the container whose PID namespace it joins."""
    sc = cfg.linux.security_context
    if not (cfg.linux.HasField("security_context") and sc.HasField("namespace_options")):
        return "", ""
    opts = sc.namespace_options
    return pb.NamespaceMode.Name(opts.pid).lower(), opts.target_id if opts.pid == pb.TARGET else ""


def _metadata(c) -> pb.ContainerMetadata:
    return pb.ContainerMetadata(name=c.cri.get("name", ""), attempt=c.cri.get("attempt", 0))


def container_summary(c) -> pb.Container:
    return pb.Container(id=c.id, pod_sandbox_id=c.cri.get("pod", ""), metadata=_metadata(c),
                        image=pb.ImageSpec(image=c.cri.get("image", c.image_ref)), image_ref=c.image,
                        image_id=c.image, state=_STATES[podcontainers.cri_state(c)],
                        created_at=c.cri.get("created_ns", 0), labels=c.cri.get("labels") or {},
                        annotations=c.cri.get("annotations") or {})


def container_status(c) -> pb.ContainerStatus:
    created, started, finished = podcontainers.times_ns(c)
    state = podcontainers.cri_state(c)
    reason = ""
    if state == "exited":
        reason = "OOMKilled" if c.state.oom_killed else "Completed" if c.state.exit_code == 0 else "Error"
    mounts = []
    if "mounts" in c.cri:
        for m in c.cri["mounts"]:
            mounts.append(pb.Mount(host_path=m["host_path"], container_path=m["container_path"],
                                   readonly=m["readonly"], recursive_read_only=m.get("recursive_read_only", False),
                                   selinux_relabel=m.get("selinux_relabel", False),
                                   propagation=pb.MountPropagation.Value(m.get("propagation") or "PROPAGATION_PRIVATE")))
    for b in [] if "mounts" in c.cri else c.host_config.get("Binds") or []:     # recorded before the CRI's own
        host, _, rest = b.partition(":")
        path, _, opts = rest.partition(":")
        mounts.append(pb.Mount(host_path=host, container_path=path, readonly="ro" in opts.split(",")))
    return pb.ContainerStatus(
        id=c.id, metadata=_metadata(c), state=_STATES[state], created_at=created, started_at=started,
        finished_at=finished, exit_code=c.state.exit_code if state == "exited" else 0,
        image=pb.ImageSpec(image=c.cri.get("image", c.image_ref)), image_ref=c.image, image_id=c.image,
        reason=reason, message=c.state.error, labels=c.cri.get("labels") or {},
        annotations=c.cri.get("annotations") or {}, mounts=mounts, log_path=c.cri.get("log_path", ""))


def container_matches(c, f: pb.ContainerFilter | None) -> bool:
    if f is None:
        return True
    if f.id and not c.id.startswith(f.id):
        return False
    if f.pod_sandbox_id and not c.cri.get("pod", "").startswith(f.pod_sandbox_id):
        return False
    if f.HasField("state") and f.state.state != _STATES[podcontainers.cri_state(c)]:
        return False
    labels = c.cri.get("labels") or {}
    return all(labels.get(k) == v for k, v in f.label_selector.items())


class ContainerRpcs:
    """RuntimeService's container calls (self.d: the daemon)."""

    @rpc
    async def CreateContainer(self, request, context):
        if not request.HasField("config"):
            raise InvalidParameter("container config must not be empty")
        cfg = request.config
        pod = self.d.pods.get(request.pod_sandbox_id)
        if not cfg.image.image:
            raise InvalidParameter("container config must include an image")
        config, host_config = docker_shapes(cfg)
        mounts = cri_mounts(cfg)
        pid_mode, pid_target = _pid_mode(cfg)
        if any(m["recursive_read_only"] for m in mounts):      # refused now, not weakened to ro at start
            from ..runtime import features
            rt = self.d.runtimes.get(pod.runtime_handler if pod.runtime_handler in ("crun", "runc") else None)
            err = await asyncio.to_thread(features.rro_error, rt.name, rt.binary)
            if err:
                raise InvalidParameter(f"recursive read-only mounts: {err}")
        c = self.d.pod_containers.create(pod, cfg.metadata.name, cfg.metadata.attempt, cfg.image.image, config,
                                         host_config, dict(cfg.labels), dict(cfg.annotations), cfg.log_path,
                                         mounts=mounts, pid_mode=pid_mode, pid_target=pid_target)
        return pb.CreateContainerResponse(container_id=c.id)

    @rpc
    async def StartContainer(self, request, context):
        await self.d.pod_containers.start(self.d.pod_containers.get(request.container_id))
        return pb.StartContainerResponse()

    @rpc
    async def StopContainer(self, request, context):
        """Idempotent: an unknown container is no error (the CRI's contract,
        containerd 2's and critest's; kubelet retries)."""
        try:
            c = self.d.pod_containers.get(request.container_id)
        except podcontainers.NoSuchCriContainer:
            return pb.StopContainerResponse()
        await self.d.pod_containers.stop(c, int(request.timeout))
        return pb.StopContainerResponse()

    @rpc
    async def RemoveContainer(self, request, context):
        """An unknown container is no error (as containerd: kubelet retries)."""
        try:
            c = self.d.pod_containers.get(request.container_id)
        except podcontainers.NoSuchCriContainer:
            return pb.RemoveContainerResponse()
        await self.d.pod_containers.remove(c)
        getattr(self, "cpu_samples", {}).pop(c.id, None)
        return pb.RemoveContainerResponse()

    def _containers(self, request) -> list[pb.Container]:
        """ListContainers' and StreamContainers' items."""
        f = request.filter if request.HasField("filter") else None
        return [container_summary(c) for c in self.d.pod_containers.list() if container_matches(c, f)]

    @rpc
    async def ListContainers(self, request, context):
        return pb.ListContainersResponse(containers=self._containers(request))

    @stream_rpc
    async def StreamContainers(self, request, context):
        for chunk in batches(self._containers(request)):
            yield pb.StreamContainersResponse(containers=chunk)

    @rpc
    async def ContainerStatus(self, request, context):
        c = self.d.pod_containers.get(request.container_id)
        info = {}
        if request.verbose:
            info["info"] = json.dumps({"pid": c.state.pid, "sandboxID": c.cri.get("pod", ""),
                                       "config": c.config, "hostConfig": c.host_config,
                                       "runtime": c.runtime, "network": c.network})
        return pb.ContainerStatusResponse(status=container_status(c), info=info)

    @rpc
    async def ExecSync(self, request, context):
        if not request.cmd:
            raise InvalidParameter("exec command must not be empty")
        c = self.d.pod_containers.get(request.container_id)
        code, out, err = await self.d.pod_containers.exec_sync(c, list(request.cmd), int(request.timeout),
                                                               MAX_EXEC_OUTPUT)
        return pb.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    @rpc
    async def CheckpointContainer(self, request, context):
        """CRIU through `docker checkpoint create --leave-running`'s path, as a
        tar archive at `location` (daemon/podcheckpoint.py); the container keeps
        running. Unknown: NotFound; not running: FailedPrecondition; no usable
        CRIU or a runtime without it: Unimplemented, saying why."""
        from google.protobuf.json_format import MessageToJson

        from ..daemon.podcheckpoint import check_location, checkpoint_to_archive
        c = self.d.pod_containers.get(request.container_id)
        check_location(request.location)
        if podcontainers.cri_state(c) != "running":
            raise Conflict(f"container {c.id!r} is in {_STATE_NAMES[podcontainers.cri_state(c)]} state. "
                                     "only CONTAINER_RUNNING containers can be checkpointed")
        status = MessageToJson(container_status(c), preserving_proto_field_name=False).encode()
        await checkpoint_to_archive(self.d, c, request.location, int(request.timeout), status)
        return pb.CheckpointContainerResponse()


def _u64(v: int) -> pb.UInt64Value:
    return pb.UInt64Value(value=max(int(v), 0))


def resources_body(res: pb.LinuxContainerResources) -> dict:
    """UpdateContainerResources' resources as `docker update`'s body (0: unchanged)."""
    body = {"CpuPeriod": res.cpu_period, "CpuQuota": res.cpu_quota, "CpuShares": res.cpu_shares,
            "Memory": res.memory_limit_in_bytes, "MemorySwap": swap_limit(res),
            "CpusetCpus": res.cpuset_cpus, "CpusetMems": res.cpuset_mems}
    return {k: v for k, v in body.items() if v}


def swap_limit(res: pb.LinuxContainerResources) -> int:
    """memory+swap as containerd sets it: the swap limit given, else the
    memory limit (no swap); 0 when there is no memory limit."""
    if not res.memory_limit_in_bytes:
        return 0
    return res.memory_swap_limit_in_bytes or res.memory_limit_in_bytes


class StatsRpcs:
    """ContainerStats, ListContainerStats, UpdateContainerResources (self.d:
    the daemon; self.cpu_samples: {id: (ns, cpu ns)}, the last cpu sample per
    container, for usage_nano_cores as containerd computes it)."""
    cpu_samples: dict

    async def _stats(self, c) -> pb.ContainerStats:
        u = await self.d.pod_containers.usage(c)
        ts = u["timestamp"]
        attrs = pb.ContainerAttributes(id=c.id, metadata=_metadata(c), labels=c.cri.get("labels") or {},
                                       annotations=c.cri.get("annotations") or {})
        out = pb.ContainerStats(attributes=attrs, writable_layer=pb.FilesystemUsage(
            timestamp=ts, fs_id=pb.FilesystemIdentifier(mountpoint=u["layer_dir"]),
            used_bytes=_u64(u["layer_bytes"]), inodes_used=_u64(u["layer_inodes"])))
        if "cpu_ns" in u:
            prev = self.cpu_samples.get(c.id)
            self.cpu_samples[c.id] = (ts, u["cpu_ns"])
            out.cpu.timestamp = ts
            out.cpu.usage_core_nano_seconds.value = u["cpu_ns"]
            if prev and ts > prev[0]:
                out.cpu.usage_nano_cores.value = max(u["cpu_ns"] - prev[1], 0) * 1_000_000_000 // (ts - prev[0])
            out.memory.timestamp = ts
            out.memory.working_set_bytes.value = u["working_set"]
            out.memory.usage_bytes.value = u["memory_usage"]
            out.memory.rss_bytes.value = u["rss"]
            out.memory.page_faults.value = u["page_faults"]
            out.memory.major_page_faults.value = u["major_page_faults"]
        return out

    @rpc
    async def ContainerStats(self, request, context):
        c = self.d.pod_containers.get(request.container_id)
        return pb.ContainerStatsResponse(stats=await self._stats(c))

    async def _container_stats(self, request) -> list[pb.ContainerStats]:
        """ListContainerStats' and StreamContainerStats' items."""
        f = request.filter if request.HasField("filter") else None
        out = []
        for c in self.d.pod_containers.list():
            if f is not None and ((f.id and not c.id.startswith(f.id)) or
                                  (f.pod_sandbox_id and not c.cri.get("pod", "").startswith(f.pod_sandbox_id)) or
                                  not all((c.cri.get("labels") or {}).get(k) == v
                                          for k, v in f.label_selector.items())):
                continue
            if podcontainers.cri_state(c) == "running":   # as containerd: the running ones
                out.append(await self._stats(c))
        return out

    @rpc
    async def ListContainerStats(self, request, context):
        return pb.ListContainerStatsResponse(stats=await self._container_stats(request))

    @stream_rpc
    async def StreamContainerStats(self, request, context):
        for chunk in batches(await self._container_stats(request)):
            yield pb.StreamContainerStatsResponse(container_stats=chunk)

    @rpc
    async def UpdateContainerResources(self, request, context):
        c = self.d.pod_containers.get(request.container_id)
        if request.HasField("linux"):
            await self.d.pod_containers.update_resources(c, resources_body(request.linux))
        return pb.UpdateContainerResourcesResponse()

    @rpc
    async def ReopenContainerLog(self, request, context):
        await self.d.pod_containers.reopen_log(self.d.pod_containers.get(request.container_id))
        return pb.ReopenContainerLogResponse()

    def _pod_cgroup(self, p) -> tuple[int, int, int] | None:
        """(cpu ns, memory usage, working set) of the pod's cgroup, or None
        when it has none of its own."""
        from ..daemon import stats as engine_stats
        reading = engine_stats.read_cgroup(self.d.pods.cgroup_dirs(p))
        if reading is None:
            return None
        cpu, mem = reading[0], reading[1]
        usage = int(mem.get("usage") or 0)
        raw = mem.get("stats") or {}
        inactive = raw.get("total_inactive_file", raw.get("inactive_file", 0))
        return int(cpu["cpu_usage"]["total_usage"]), usage, max(usage - inactive, 0)

    async def _pod_stats(self, p) -> pb.PodSandboxStats:
        """The pod's containers' stats, their cpu and memory summed, the
        network counters of the pod's namespace (its interfaces but lo)."""
        from ..daemon import stats as engine_stats
        attrs = pb.PodSandboxAttributes(id=p.id, metadata=pb.PodSandboxMetadata(
            name=p.name, uid=p.uid, namespace=p.namespace, attempt=p.attempt), labels=p.labels,
            annotations=p.annotations)
        out = pb.PodSandboxStats(attributes=attrs)
        running = [c for c in self.d.pod_containers.of_pod(p.id) if podcontainers.cri_state(c) == "running"]
        cpu = mem = ws = procs = 0
        ts = 0
        for c in running:
            cs = await self._stats(c)
            out.linux.containers.append(cs)
            ts = max(ts, cs.cpu.timestamp)
            cpu += cs.cpu.usage_core_nano_seconds.value
            mem += cs.memory.usage_bytes.value
            ws += cs.memory.working_set_bytes.value
            procs += len(engine_stats.container_pids(c))
        reading = await asyncio.to_thread(self._pod_cgroup, p)
        if reading is not None:          # the pod's own cgroup (its cgroup_parent): all its containers' use
            ts, cpu, mem, ws = time.time_ns(), *reading
        if running or reading is not None:
            out.linux.cpu.timestamp = out.linux.memory.timestamp = out.linux.process.timestamp = ts
            out.linux.cpu.usage_core_nano_seconds.value = cpu
            out.linux.memory.usage_bytes.value = mem
            out.linux.memory.working_set_bytes.value = ws
            out.linux.process.process_count.value = procs
            nets = engine_stats.networks(running[0].state.pid) or {}
            if nets:
                out.linux.network.timestamp = ts
                for name, n in sorted(nets.items()):
                    iface = pb.NetworkInterfaceUsage(name=name, rx_bytes=_u64(n["rx_bytes"]),
                                                     rx_errors=_u64(n["rx_errors"]), tx_bytes=_u64(n["tx_bytes"]),
                                                     tx_errors=_u64(n["tx_errors"]))
                    out.linux.network.interfaces.append(iface)
                    if name == "eth0" or not out.linux.network.HasField("default_interface"):
                        out.linux.network.default_interface.CopyFrom(iface)
        return out

    @rpc
    async def PodSandboxStats(self, request, context):
        return pb.PodSandboxStatsResponse(stats=await self._pod_stats(self.d.pods.get(request.pod_sandbox_id)))

    async def _pod_stats_list(self, request) -> list[pb.PodSandboxStats]:
        """ListPodSandboxStats' and StreamPodSandboxStats' items."""
        f = request.filter if request.HasField("filter") else None
        out = []
        for p in self.d.pods.list():
            if f is not None and ((f.id and not p.id.startswith(f.id)) or
                                  not all(p.labels.get(k) == v for k, v in f.label_selector.items())):
                continue
            out.append(await self._pod_stats(p))
        return out

    @rpc
    async def ListPodSandboxStats(self, request, context):
        return pb.ListPodSandboxStatsResponse(stats=await self._pod_stats_list(request))

    @stream_rpc
    async def StreamPodSandboxStats(self, request, context):
        for chunk in batches(await self._pod_stats_list(request)):
            yield pb.StreamPodSandboxStatsResponse(pod_sandbox_stats=chunk)

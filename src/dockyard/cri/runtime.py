"""runtime.v1.RuntimeService: thin handlers over the daemon's services
(daemon/pods.py for sandboxes). What is not here answers UNIMPLEMENTED
(server.unimplemented): CheckpointPod and RestorePod only, see below."""
from __future__ import annotations

import asyncio
import json
import logging

from google.protobuf.json_format import MessageToDict

from .. import __version__
from ..daemon.pods import READY, Pod
from .containers import ContainerRpcs, StatsRpcs
from .events import ContainerEvents
from .metrics import MetricsRpcs
from .proto import grpc_pb, pb
from .server import batches, rpc, stream_rpc, unimplemented

log = logging.getLogger("dockyard.cri")

RUNTIME_NAME = "dockyard"
RUNTIME_API_VERSION = "v1"
KUBE_API_VERSION = "0.1.0"     # the CRI's VersionResponse.version: "version of the kubelet runtime API"


def pod_from_config(cfg: pb.PodSandboxConfig, runtime_handler: str = "") -> Pod:
    md = cfg.metadata
    linux = cfg.linux
    opts = linux.security_context.namespace_options
    return Pod(id="", name=md.name, uid=md.uid, namespace=md.namespace, attempt=md.attempt,
               hostname=cfg.hostname, host_network=opts.network == pb.NODE, host_ipc=opts.ipc == pb.NODE,
               pid_mode=pb.NamespaceMode.Name(opts.pid).lower(),
               labels=dict(cfg.labels), annotations=dict(cfg.annotations), log_directory=cfg.log_directory,
               runtime_handler=runtime_handler, cgroup_parent=linux.cgroup_parent,
               dns_servers=list(cfg.dns_config.servers), dns_searches=list(cfg.dns_config.searches),
               dns_options=list(cfg.dns_config.options),
               port_mappings=[MessageToDict(m, preserving_proto_field_name=True) for m in cfg.port_mappings],
               sysctls=dict(linux.sysctls),
               config=MessageToDict(cfg, preserving_proto_field_name=True))


def _metadata(p: Pod) -> pb.PodSandboxMetadata:
    return pb.PodSandboxMetadata(name=p.name, uid=p.uid, namespace=p.namespace, attempt=p.attempt)


def _state(p: Pod) -> int:
    return pb.SANDBOX_READY if p.state == READY else pb.SANDBOX_NOTREADY


def pod_status(p: Pod) -> pb.PodSandboxStatus:
    mode = pb.NamespaceMode
    return pb.PodSandboxStatus(
        id=p.id, metadata=_metadata(p), state=_state(p), created_at=p.created_ns,
        network=pb.PodSandboxNetworkStatus(ip=p.ip, additional_ips=[pb.PodIP(ip=i) for i in p.additional_ips]),
        linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=pb.NamespaceOption(
            network=pb.NODE if p.host_network else pb.POD, ipc=pb.NODE if p.host_ipc else pb.POD,
            pid=mode.Value(p.pid_mode.upper()) if p.pid_mode.upper() in mode.keys() else pb.POD))),
        labels=p.labels, annotations=p.annotations, runtime_handler=p.runtime_handler)


def pod_limits(res: pb.LinuxContainerResources, overhead: pb.LinuxContainerResources) -> dict:
    """UpdatePodSandboxResources' limits for the pod's cgroup: the
    containers' sum plus the overhead where the sum sets a limit (0: left
    as it is), as the kubelet sizes a pod's cgroup."""
    return {"cpu_period": res.cpu_period,
            "cpu_quota": res.cpu_quota + max(overhead.cpu_quota, 0) if res.cpu_quota > 0 else 0,
            "cpu_shares": res.cpu_shares + overhead.cpu_shares if res.cpu_shares else 0,
            "memory": res.memory_limit_in_bytes + overhead.memory_limit_in_bytes if res.memory_limit_in_bytes else 0,
            "cpuset_cpus": res.cpuset_cpus, "cpuset_mems": res.cpuset_mems}


def pod_matches(p: Pod, f: pb.PodSandboxFilter | None) -> bool:
    if f is None:
        return True
    if f.id and not p.id.startswith(f.id):
        return False
    if f.HasField("state") and f.state.state != _state(p):
        return False
    return all(p.labels.get(k) == v for k, v in f.label_selector.items())


# Not served (server.unimplemented answers UNIMPLEMENTED): CheckpointPod and
# RestorePod (KEP-5091, alpha). A pod checkpoint is every container's CRIU
# image plus the sandbox's own state (its pinned namespaces, the CNI result
# and IPAM lease, the pod cgroup), restored as a new sandbox with the same
# IPs; dockyard checkpoints single containers (CheckpointContainer) and has
# no sandbox-level CRIU path, so answering anything but UNIMPLEMENTED would
# claim what is not there. containerd does not serve them either.
@unimplemented(grpc_pb.RuntimeServiceServicer)
class RuntimeServicer(ContainerRpcs, StatsRpcs, MetricsRpcs, grpc_pb.RuntimeServiceServicer):
    def __init__(self, daemon, streams=None, cni_conf_template: str = ""):
        self.d = daemon
        self.streams = streams          # streaming.StreamServer: Exec, Attach and PortForward's URLs
        self.cni_conf_template = cni_conf_template     # --cni-conf-template: UpdateRuntimeConfig renders it
        self.pod_cidr = ""              # the kubelet's, from UpdateRuntimeConfig (not kept across restarts)
        self.cpu_samples = {}
        self.events = ContainerEvents(daemon, pod_status)    # GetContainerEvents' streams

    @rpc
    async def Version(self, request, context):
        return pb.VersionResponse(version=KUBE_API_VERSION, runtime_name=RUNTIME_NAME,
                                  runtime_version=__version__, runtime_api_version=RUNTIME_API_VERSION)

    @rpc
    async def Status(self, request, context):
        ready, reason, message = await asyncio.to_thread(self.d.pods.network.status)   # reads the conf dir
        conditions = [pb.RuntimeCondition(type="RuntimeReady", status=True),
                      pb.RuntimeCondition(type="NetworkReady", status=ready,
                                          reason="" if ready else reason,
                                          message="" if ready else message)]
        info = {}
        if request.verbose:
            info["config"] = json.dumps({"runtime": self.d.runtimes.default, "cgroupDriver": "cgroupfs",
                                         "cniConfTemplate": self.cni_conf_template, "podCIDR": self.pod_cidr})
            info["events"] = json.dumps({"streams": self.events.streams})     # GetContainerEvents' clients
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions), info=info,
                                 runtime_handlers=await asyncio.to_thread(self._handlers))

    def _handlers(self) -> list:
        """The default handler ("") and each runtime by name, with what they
        support: recursive read-only mounts where the kernel and the runtime
        do (features.rro_error, asked once per binary)."""
        from ..runtime import features
        out = []
        for name in ["", *sorted(self.d.runtimes.available)]:
            rt = self.d.runtimes.get(name or None)
            rro = features.rro_error(rt.name, rt.binary) is None
            out.append(pb.RuntimeHandler(name=name, features=pb.RuntimeHandlerFeatures(recursive_read_only_mounts=rro)))
        return out

    @rpc
    async def RuntimeConfig(self, request, context):
        return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(cgroup_driver=pb.CGROUPFS))

    @rpc
    async def UpdateRuntimeConfig(self, request, context):
        """The pod CIDR, as containerd's UpdateRuntimeConfig: none given is a
        no-op; a CIDR that does not parse an error (Unknown, as containerd's
        plain error); remembered (Status verbose shows it); with a CNI config
        template and no usable CNI network yet, the template rendered into
        the conf dir (cnitemplate.py). A network already there is left alone."""
        from ..errors import SystemError_
        from . import cnitemplate
        pod_cidr = request.runtime_config.network_config.pod_cidr
        if not pod_cidr:
            return pb.UpdateRuntimeConfigResponse()
        try:
            cnitemplate.template_data(pod_cidr)
        except ValueError as e:
            raise SystemError_(f"get routes: {e}") from None
        self.pod_cidr = pod_cidr
        if not self.cni_conf_template:
            log.info("no CNI config template is specified: waiting for other components to drop the config")
            return pb.UpdateRuntimeConfigResponse()
        ready, _, _ = await asyncio.to_thread(self.d.pods.network.status)
        if ready:
            log.info("network plugin is ready: not generating a CNI config from %s", self.cni_conf_template)
            return pb.UpdateRuntimeConfigResponse()
        conf_dir = self.d.config.cni_conf_dir
        try:
            path = await asyncio.to_thread(cnitemplate.write_conf, self.cni_conf_template, conf_dir, pod_cidr)
        except (OSError, ValueError) as e:
            raise SystemError_(f"failed to generate cni config from template "
                               f"{self.cni_conf_template!r}: {getattr(e, 'strerror', None) or e}") from None
        log.info("CNI config %s generated from %s for pod CIDR %s", path, self.cni_conf_template, pod_cidr)
        return pb.UpdateRuntimeConfigResponse()

    # ------------------------------------------------------------ pod sandboxes
    @rpc
    async def RunPodSandbox(self, request, context):
        if not request.HasField("config"):
            from ..errors import InvalidParameter
            raise InvalidParameter("sandbox config must not be empty")
        p = await self.d.pods.run(pod_from_config(request.config, request.runtime_handler))
        return pb.RunPodSandboxResponse(pod_sandbox_id=p.id)

    @rpc
    async def StopPodSandbox(self, request, context):
        """Idempotent: an unknown pod is no error (the CRI's contract, containerd 2's)."""
        from ..daemon.pods import NoSuchPod
        try:
            await self.d.pod_containers.stop_sandbox(request.pod_sandbox_id)
        except NoSuchPod:
            pass
        return pb.StopPodSandboxResponse()

    @rpc
    async def RemovePodSandbox(self, request, context):
        await self.d.pod_containers.remove_sandbox(request.pod_sandbox_id)
        return pb.RemovePodSandboxResponse()

    @rpc
    async def PodSandboxStatus(self, request, context):
        p = self.d.pods.get(request.pod_sandbox_id)
        info = {}
        if request.verbose:
            info["info"] = json.dumps({"config": p.config, "namespaces": p.ns, "etcFiles": p.etc_files,
                                       "shm": p.shm, "state": p.state, "pidNamespace": p.pid_ns,
                                       "pidHolder": p.pid_holder, "cgroupParent": p.cgroup_parent})
        return pb.PodSandboxStatusResponse(status=pod_status(p), info=info)

    def _pods(self, request) -> list[pb.PodSandbox]:
        """ListPodSandbox's and StreamPodSandboxes' items."""
        f = request.filter if request.HasField("filter") else None
        return [pb.PodSandbox(id=p.id, metadata=_metadata(p), state=_state(p), created_at=p.created_ns,
                              labels=p.labels, annotations=p.annotations, runtime_handler=p.runtime_handler)
                for p in self.d.pods.list() if pod_matches(p, f)]

    @rpc
    async def ListPodSandbox(self, request, context):
        return pb.ListPodSandboxResponse(items=self._pods(request))

    @stream_rpc
    async def StreamPodSandboxes(self, request, context):
        for chunk in batches(self._pods(request)):
            yield pb.StreamPodSandboxesResponse(pod_sandboxes=chunk)

    @rpc
    async def UpdatePodSandboxResources(self, request, context):
        """Pod-level resources (KEP-2837): the kubelet calls this after it
        resized the pod's cgroup itself; containerd's pod sandbox controller
        takes note and changes nothing. dockyard writes them into the pod's
        cgroup (its cgroup_parent, daemon/pods.write_limits: the sum of the
        containers' resources plus the overhead), so a pod whose cgroup the
        kubelet does not manage is resized too. A pod without a cgroup of
        its own has nothing to resize (success, as containerd). Unknown pod:
        NotFound."""
        from ..daemon.pods import write_limits
        from ..errors import SystemError_
        p = self.d.pods.get(request.pod_sandbox_id)
        dirs = self.d.pods.cgroup_dirs(p)
        if not dirs or not request.HasField("resources"):
            return pb.UpdatePodSandboxResourcesResponse()
        try:
            await asyncio.to_thread(write_limits, dirs, pod_limits(request.resources, request.overhead))
        except OSError as e:
            raise SystemError_(f"failed to update pod sandbox {p.id} resources: {e.strerror or e}") from None
        return pb.UpdatePodSandboxResourcesResponse()

    # ------------------------------------------------------------ events
    async def GetContainerEvents(self, request, context):
        """A server stream until the client goes (grpc cancels this: the
        stream's queue is dropped) or falls too far behind (UNAVAILABLE, as
        containerd 2 ends a subscription it closed: subscribe again)."""
        import grpc
        stream = self.events.subscribe()
        try:
            while (msg := await stream.next()) is not None:
                yield msg
        finally:
            stream.close()
        await context.abort(grpc.StatusCode.UNAVAILABLE,
                            "container events subscription closed by server: the client fell behind")

    # ------------------------------------------------------------ streaming
    def _url(self, get_url, request) -> str:
        from ..errors import InvalidParameter, SystemError_, Unavailable
        from .streaming import StreamingError
        if self.streams is None:
            raise Unavailable("the streaming server is not running")
        try:
            return get_url(request)
        except StreamingError as e:
            raise (InvalidParameter if e.code == "InvalidArgument" else SystemError_)(str(e)) from None

    def _running(self, container_id: str):
        """containerd: a container not running is a plain error (gRPC Unknown)."""
        from ..daemon.podcontainers import cri_state
        from ..errors import InvalidParameter, SystemError_
        if not container_id:
            raise InvalidParameter("missing required container_id")
        c = self.d.pod_containers.get(container_id)
        state = cri_state(c)
        if state != "running":
            raise SystemError_(f"container is in CONTAINER_{state.upper()} state")
        return c

    @rpc
    async def Exec(self, request, context):
        self._running(request.container_id)
        return pb.ExecResponse(url=self._url(self.streams.get_exec_url if self.streams else None, request))

    @rpc
    async def Attach(self, request, context):
        self._running(request.container_id)
        return pb.AttachResponse(url=self._url(self.streams.get_attach_url if self.streams else None, request))

    @rpc
    async def PortForward(self, request, context):
        from ..errors import SystemError_
        if request.pod_sandbox_id:
            p = self.d.pods.get(request.pod_sandbox_id)
            if p.state != READY:
                raise SystemError_("sandbox container is not running")
        return pb.PortForwardResponse(url=self._url(self.streams.get_port_forward_url if self.streams else None,
                                                    request))

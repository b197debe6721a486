"""runtime.v1.RuntimeService: thin handlers over the daemon's services
(daemon/pods.py for sandboxes). What is not here yet answers UNIMPLEMENTED
(the generated servicer's default)."""
from __future__ import annotations

import asyncio
import json

from google.protobuf.json_format import MessageToDict

from .. import __version__
from ..daemon.pods import READY, Pod
from .containers import ContainerRpcs, StatsRpcs
from .events import ContainerEvents
from .proto import grpc_pb, pb
from .server import rpc, unimplemented

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


def pod_matches(p: Pod, f: pb.PodSandboxFilter | None) -> bool:
    if f is None:
        return True
    if f.id and not p.id.startswith(f.id):
        return False
    if f.HasField("state") and f.state.state != _state(p):
        return False
    return all(p.labels.get(k) == v for k, v in f.label_selector.items())


@unimplemented(grpc_pb.RuntimeServiceServicer)
class RuntimeServicer(ContainerRpcs, StatsRpcs, grpc_pb.RuntimeServiceServicer):
    def __init__(self, daemon, streams=None):
        self.d = daemon
        self.streams = streams          # streaming.StreamServer: Exec, Attach and PortForward's URLs
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
            info["config"] = json.dumps({"runtime": self.d.runtimes.default, "cgroupDriver": "cgroupfs"})
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

    @rpc
    async def ListPodSandbox(self, request, context):
        f = request.filter if request.HasField("filter") else None
        items = [pb.PodSandbox(id=p.id, metadata=_metadata(p), state=_state(p), created_at=p.created_ns,
                               labels=p.labels, annotations=p.annotations, runtime_handler=p.runtime_handler)
                 for p in self.d.pods.list() if pod_matches(p, f)]
        return pb.ListPodSandboxResponse(items=items)



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

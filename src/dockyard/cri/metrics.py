"""ListMetricDescriptors / ListPodSandboxMetrics / StreamPodSandboxMetrics
(a mixin of RuntimeServicer): the cadvisor-style metrics containerd 2.x
exports through the CRI, as far as dockyard reads them already. The values
come from the pod's PodSandboxStats (containers.StatsRpcs._pod_stats: each
running container's cgroup, the pod's network namespace), so the metrics
and the stats calls cannot disagree.

Names, help texts and label keys are containerd's (internal/cri/server
metric descriptors): every container metric carries pod, namespace,
container, id, image; network metrics add interface; memory failures add
failure_type and scope. Pod-level metrics (the network) have container and
image "" and the sandbox's id, as containerd's. Only what dockyard fills is
described (the CRI: a metric not described is ignored by the kubelet, a
description without values would claim what is not measured)."""
from __future__ import annotations

from .proto import pb
from .server import batches, rpc, stream_rpc

BASE_LABELS = ("pod", "namespace", "container", "id", "image")
NETWORK_LABELS = (*BASE_LABELS, "interface")
FAILURE_LABELS = (*BASE_LABELS, "failure_type", "scope")

# name: (help, label keys, type)
DESCRIPTORS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "container_cpu_usage_seconds_total": ("Cumulative CPU time consumed in seconds.", BASE_LABELS, pb.COUNTER),
    "container_memory_usage_bytes": ("Current memory usage in bytes, including all memory regardless of when it "
                                     "was accessed", BASE_LABELS, pb.GAUGE),
    "container_memory_working_set_bytes": ("Amount of memory that is actively used by the container, excluding "
                                           "cached memory.", BASE_LABELS, pb.GAUGE),
    "container_memory_rss": ("Size of RSS in bytes, total anonymous memory and [swap cache memory used by the "
                             "container.", BASE_LABELS, pb.GAUGE),
    "container_memory_failures_total": ("Cumulative count of container memory allocation failures.",
                                        FAILURE_LABELS, pb.COUNTER),
    "container_network_receive_bytes_total": ("Cumulative count of bytes received", NETWORK_LABELS, pb.COUNTER),
    "container_network_receive_errors_total": ("Cumulative count of errors encountered while receiving",
                                               NETWORK_LABELS, pb.COUNTER),
    "container_network_transmit_bytes_total": ("Cumulative count of bytes transmitted", NETWORK_LABELS, pb.COUNTER),
    "container_network_transmit_errors_total": ("Cumulative count of errors encountered while transmitting",
                                                NETWORK_LABELS, pb.COUNTER),
}


def descriptors() -> list[pb.MetricDescriptor]:
    return [pb.MetricDescriptor(name=name, help=text, label_keys=list(keys))
            for name, (text, keys, _) in DESCRIPTORS.items()]


def _metric(name: str, ts: int, labels: list[str], value: int) -> pb.Metric:
    assert len(labels) == len(DESCRIPTORS[name][1]), name
    return pb.Metric(name=name, timestamp=ts, metric_type=DESCRIPTORS[name][2], label_values=labels,
                     value=pb.UInt64Value(value=max(int(value), 0)))


def pod_metrics(p, stats: pb.PodSandboxStats, images: dict[str, str]) -> pb.PodSandboxMetrics:
    """A pod's metrics from its PodSandboxStats (images: container id ->
    the image as the container's config named it)."""
    out = pb.PodSandboxMetrics(pod_sandbox_id=p.id)
    linux = stats.linux
    pod_labels = [p.name, p.namespace, "", p.id, ""]
    net = linux.network
    # a hostNetwork pod's interfaces are the host's: no pod network metrics (containerd: no netns path)
    for iface in [] if p.host_network else net.interfaces:
        labels = [*pod_labels, iface.name]
        for name, value in (("container_network_receive_bytes_total", iface.rx_bytes.value),
                            ("container_network_receive_errors_total", iface.rx_errors.value),
                            ("container_network_transmit_bytes_total", iface.tx_bytes.value),
                            ("container_network_transmit_errors_total", iface.tx_errors.value)):
            out.metrics.append(_metric(name, net.timestamp, labels, value))
    for cs in linux.containers:
        a = cs.attributes
        labels = [p.name, p.namespace, a.metadata.name, a.id, images.get(a.id, "")]
        cm = pb.ContainerMetrics(container_id=a.id)
        if cs.HasField("cpu"):
            cm.metrics.append(_metric("container_cpu_usage_seconds_total", cs.cpu.timestamp, labels,
                                      cs.cpu.usage_core_nano_seconds.value // 1_000_000_000))
        if cs.HasField("memory"):
            m, ts = cs.memory, cs.memory.timestamp
            cm.metrics.extend([
                _metric("container_memory_usage_bytes", ts, labels, m.usage_bytes.value),
                _metric("container_memory_working_set_bytes", ts, labels, m.working_set_bytes.value),
                _metric("container_memory_rss", ts, labels, m.rss_bytes.value),
                _metric("container_memory_failures_total", ts, [*labels, "pgfault", "container"],
                        m.page_faults.value),
                _metric("container_memory_failures_total", ts, [*labels, "pgmajfault", "container"],
                        m.major_page_faults.value)])
        out.container_metrics.append(cm)
    return out


class MetricsRpcs:
    """RuntimeService's metrics calls (self.d: the daemon; self._pod_stats:
    StatsRpcs')."""

    @rpc
    async def ListMetricDescriptors(self, request, context):
        return pb.ListMetricDescriptorsResponse(descriptors=descriptors())

    async def _pod_metrics_list(self) -> list[pb.PodSandboxMetrics]:
        """The ready pods' metrics, as containerd collects only those."""
        from ..daemon.pods import READY
        out = []
        for p in self.d.pods.list():
            if p.state != READY:
                continue
            images = {c.id: c.cri.get("image", c.image_ref) for c in self.d.pod_containers.of_pod(p.id)}
            out.append(pod_metrics(p, await self._pod_stats(p), images))
        return out

    @rpc
    async def ListPodSandboxMetrics(self, request, context):
        return pb.ListPodSandboxMetricsResponse(pod_metrics=await self._pod_metrics_list())

    @stream_rpc
    async def StreamPodSandboxMetrics(self, request, context):
        for chunk in batches(await self._pod_metrics_list()):
            yield pb.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=chunk)

"""The CRI servicers serve every call of api.proto but the pod checkpoint
pair; the pure parts of the newer calls: Stream* batching, pod-level
resources, metrics from PodSandboxStats."""
from __future__ import annotations

from types import SimpleNamespace

from dockyard.cri import metrics
from dockyard.cri.proto import grpc_pb, pb
from dockyard.cri.server import batches


def _unserved(servicer: type, base: type) -> set[str]:
    return {name for name, member in vars(base).items()
            if not name.startswith("_") and callable(member)
            and getattr(servicer, name).__qualname__.startswith("_unimplemented")}


def test_only_the_pod_checkpoint_pair_is_unimplemented():
    from dockyard.cri.images import ImageServicer
    from dockyard.cri.runtime import RuntimeServicer
    assert _unserved(RuntimeServicer, grpc_pb.RuntimeServiceServicer) == {"CheckpointPod", "RestorePod"}
    assert _unserved(ImageServicer, grpc_pb.ImageServiceServicer) == set()


def test_batches_send_each_item_once_and_no_empty_message():
    assert list(batches([], 3)) == []
    assert list(batches([1, 2, 3, 4, 5, 6, 7], 3)) == [[1, 2, 3], [4, 5, 6], [7]]


def test_pod_limits_add_the_overhead_where_the_sum_sets_a_limit():
    from dockyard.cri.runtime import pod_limits
    res = pb.LinuxContainerResources(memory_limit_in_bytes=100, cpu_quota=50000, cpu_period=100000, cpu_shares=1000,
                                     cpuset_cpus="0")
    over = pb.LinuxContainerResources(memory_limit_in_bytes=10, cpu_quota=5000, cpu_shares=24)
    assert pod_limits(res, over) == {"cpu_period": 100000, "cpu_quota": 55000, "cpu_shares": 1024, "memory": 110,
                                     "cpuset_cpus": "0", "cpuset_mems": ""}
    # no limit in the sum: none made up from the overhead alone
    assert pod_limits(pb.LinuxContainerResources(cpu_quota=-1), over) == {
        "cpu_period": 0, "cpu_quota": 0, "cpu_shares": 0, "memory": 0, "cpuset_cpus": "", "cpuset_mems": ""}


def test_pod_metrics_from_pod_stats():
    p = SimpleNamespace(id="p" * 64, name="web", namespace="ns", host_network=False)
    st = pb.PodSandboxStats()
    st.linux.network.timestamp = 7
    st.linux.network.interfaces.append(pb.NetworkInterfaceUsage(name="eth0", rx_bytes=pb.UInt64Value(value=10),
                                                                tx_bytes=pb.UInt64Value(value=20)))
    cs = st.linux.containers.add()
    cs.attributes.id = "c" * 64
    cs.attributes.metadata.name = "app"
    cs.cpu.timestamp = 5
    cs.cpu.usage_core_nano_seconds.value = 2_500_000_000
    cs.memory.timestamp = 5
    cs.memory.working_set_bytes.value = 300
    cs.memory.usage_bytes.value = 400
    st.linux.containers.add().attributes.id = "d" * 64        # not running: no cpu, no memory
    out = metrics.pod_metrics(p, st, {"c" * 64: "docker.io/library/busybox:latest"})
    assert out.pod_sandbox_id == p.id
    rx = {m.name: m for m in out.metrics}["container_network_receive_bytes_total"]
    assert (list(rx.label_values), rx.value.value, rx.timestamp) == (["web", "ns", "", p.id, "", "eth0"], 10, 7)
    app, idle = out.container_metrics
    by = {(m.name, tuple(m.label_values[5:])): m for m in app.metrics}
    labels = ["web", "ns", "app", "c" * 64, "docker.io/library/busybox:latest"]
    cpu = by[("container_cpu_usage_seconds_total", ())]
    assert (list(cpu.label_values), cpu.value.value, cpu.metric_type) == (labels, 2, pb.COUNTER)
    assert by[("container_memory_working_set_bytes", ())].value.value == 300
    assert by[("container_memory_failures_total", ("pgmajfault", "container"))].metric_type == pb.COUNTER
    assert idle.container_id == "d" * 64 and not idle.metrics
    p.host_network = True          # the host's interfaces are no pod's
    assert not metrics.pod_metrics(p, st, {}).metrics
    described = {d.name: len(d.label_keys) for d in metrics.descriptors()}
    for m in [*out.metrics, *app.metrics]:
        assert len(m.label_values) == described[m.name]

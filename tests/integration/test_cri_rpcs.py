"""The CRI calls beyond the first conformance subset (Python gRPC client, a
real dockyardd): UpdateRuntimeConfig's pod CIDR and CNI config template,
the Stream* variants of the list calls, ListMetricDescriptors /
ListPodSandboxMetrics, UpdatePodSandboxResources."""
from __future__ import annotations

import glob
import json
import os
import secrets
import subprocess
import time

import grpc
import pytest
from conftest import running_daemon
from test_cri import code_of, pod_config

from dockyard.cri.proto import pb

# a template as containerd documents them (Go text/template); the plugin type
# does not exist, so the rendered network never becomes usable (no bridge is
# made by this module's pods)
TEMPLATE = """{{- /* dockyard test template */ -}}
{
  "cniVersion": "0.4.0",
  "name": "k8s-pod-network",
  "plugins": [{
    "type": "dockyard-test-no-such-plugin",
    "ipam": {
      "type": "host-local",
      "ranges": [
        {{- range $i, $range := .PodCIDRRanges}}{{if $i}},{{end}}
        [{"subnet": "{{$range}}"}]
        {{- end}}
      ],
      "routes": [{{range $i, $route := .Routes}}{{if $i}}, {{end}}{"dst": "{{$route}}"}{{end}}]
    },
    "first": "{{.PodCIDR}}"
  }]
}
"""


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    """The module's dockyardd, with a CNI config template."""
    tpl = tmp_path_factory.mktemp("cnitpl") / "10-net.conflist.tmpl"
    tpl.write_text(TEMPLATE)
    yield from running_daemon(request, tmp_path_factory, extra_args=("--cni-conf-template", str(tpl)))


def start(rt, pod: str, name: str, *argv: str) -> str:
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image="bb"),
                             command=list(argv))
    cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg)).container_id
    rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid


# ---------------------------------------------------------------- UpdateRuntimeConfig

def update_cidr(rt, cidr: str):
    return rt.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=cidr))))


def test_update_runtime_config_renders_the_cni_template(daemon, cri):
    rendered = daemon.cni_conf_dir / "10-dockyard-net.conflist"
    usable = daemon.cni_conf_dir / "05-lo.conflist"
    try:
        update_cidr(cri.rt, "")                     # no CIDR: nothing to do
        assert not rendered.exists()
        assert code_of(lambda: update_cidr(cri.rt, "10.244.1.0/33")) == grpc.StatusCode.UNKNOWN
        assert not rendered.exists()

        update_cidr(cri.rt, "10.244.1.0/24, fd00:10:244:1::/64")
        conf = json.loads(rendered.read_text())
        ipam = conf["plugins"][0]["ipam"]
        assert ipam["ranges"] == [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]]
        assert ipam["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
        assert conf["plugins"][0]["first"] == "10.244.1.0/24"
        assert oct(rendered.stat().st_mode & 0o777) == "0o644"
        info = json.loads(cri.rt.Status(pb.StatusRequest(verbose=True)).info["config"])
        assert info["podCIDR"] == "10.244.1.0/24, fd00:10:244:1::/64"

        # the rendered network is not usable (no such plugin): a new CIDR renders again
        update_cidr(cri.rt, "10.245.0.0/16")
        assert json.loads(rendered.read_text())["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.245.0.0/16"}]]
        # a usable network in the conf dir: left alone, as containerd does
        usable.write_text(json.dumps({"cniVersion": "0.3.1", "name": "lo", "plugins": [{"type": "loopback"}]}))
        assert {c.type: c.status for c in cri.rt.Status(pb.StatusRequest()).status.conditions}["NetworkReady"]
        before = rendered.read_text()
        update_cidr(cri.rt, "10.246.0.0/16")
        assert rendered.read_text() == before
    finally:
        for p in (rendered, usable):
            if p.exists():
                p.unlink()


# ---------------------------------------------------------------- Stream* list calls

def streamed(call, request, field: str) -> list:
    out = []
    for msg in call(request):
        items = list(getattr(msg, field))
        assert items                                 # each message has at least one item
        out.extend(items)
    return out


def test_stream_calls_answer_as_the_list_calls(cri, pods, bb_image):  # noqa: F811 (the pods fixture)
    rt = cri.rt
    a = pods(pod_config("sa", labels={"k": "a"}))
    b = pods(pod_config("sb", labels={"k": "b"}))
    ca = start(rt, a, "ca", "sleep", "1000")
    cb = start(rt, b, "cb", "sleep", "1000")

    def same(list_call, list_req, list_field, stream_call, stream_req, stream_field, key):
        listed = sorted(key(x) for x in getattr(list_call(list_req), list_field))
        got = sorted(key(x) for x in streamed(stream_call, stream_req, stream_field))
        assert got == listed
        return got

    by_id = lambda x: x.id     # noqa: E731
    assert {a, b} <= set(same(rt.ListPodSandbox, pb.ListPodSandboxRequest(), "items",
                              rt.StreamPodSandboxes, pb.StreamPodSandboxesRequest(), "pod_sandboxes", by_id))
    f = pb.PodSandboxFilter(label_selector={"k": "a"})
    assert same(rt.ListPodSandbox, pb.ListPodSandboxRequest(filter=f), "items",
                rt.StreamPodSandboxes, pb.StreamPodSandboxesRequest(filter=f), "pod_sandboxes", by_id) == [a]
    assert {ca, cb} <= set(same(rt.ListContainers, pb.ListContainersRequest(), "containers",
                                rt.StreamContainers, pb.StreamContainersRequest(), "containers", by_id))
    cf = pb.ContainerFilter(pod_sandbox_id=b)
    assert same(rt.ListContainers, pb.ListContainersRequest(filter=cf), "containers",
                rt.StreamContainers, pb.StreamContainersRequest(filter=cf), "containers", by_id) == [cb]
    stat_id = lambda s: s.attributes.id     # noqa: E731
    assert {ca, cb} <= set(same(rt.ListContainerStats, pb.ListContainerStatsRequest(), "stats",
                                rt.StreamContainerStats, pb.StreamContainerStatsRequest(), "container_stats",
                                stat_id))
    sf = pb.ContainerStatsFilter(id=ca)
    assert same(rt.ListContainerStats, pb.ListContainerStatsRequest(filter=sf), "stats",
                rt.StreamContainerStats, pb.StreamContainerStatsRequest(filter=sf), "container_stats",
                stat_id) == [ca]
    pf = pb.PodSandboxStatsFilter(label_selector={"k": "b"})
    assert same(rt.ListPodSandboxStats, pb.ListPodSandboxStatsRequest(filter=pf), "stats",
                rt.StreamPodSandboxStats, pb.StreamPodSandboxStatsRequest(filter=pf), "pod_sandbox_stats",
                stat_id) == [b]
    images = same(cri.img.ListImages, pb.ListImagesRequest(), "images",
                  cri.img.StreamImages, pb.StreamImagesRequest(), "images", by_id)
    assert images and len(images) == len(set(images))
    # nothing matches: the stream just ends
    none = pb.PodSandboxFilter(id="0" * 64)
    assert streamed(rt.StreamPodSandboxes, pb.StreamPodSandboxesRequest(filter=none), "pod_sandboxes") == []


# ---------------------------------------------------------------- metrics

def test_metric_descriptors_and_pod_metrics(cri, pods, bb_image):  # noqa: F811 (the pods fixture)
    rt = cri.rt
    desc = {d.name: list(d.label_keys) for d in rt.ListMetricDescriptors(pb.ListMetricDescriptorsRequest()).descriptors}
    base = ["pod", "namespace", "container", "id", "image"]
    assert desc["container_cpu_usage_seconds_total"] == base
    assert desc["container_memory_working_set_bytes"] == base
    assert desc["container_memory_usage_bytes"] == base
    assert desc["container_network_receive_bytes_total"] == [*base, "interface"]
    assert desc["container_network_transmit_bytes_total"] == [*base, "interface"]

    pod = pods(pod_config("met"))
    # a few MB of memory and a bounded burn of more than a cpu second, then idle
    cid = start(rt, pod, "burn", "sh", "-c", "x=$(head -c 3000000 /dev/zero | tr '\\0' a); "
                                             "head -c 400000000 /dev/urandom >/dev/null; exec sleep 1000")
    stopped = pods(pod_config("met-stopped"))
    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=stopped))
    # traffic on interfaces of the pod's own network namespace (a veth pair made in it from the host;
    # it goes with the namespace)
    netns = json.loads(rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True))
                       .info["info"])["namespaces"]["net"]
    ns = ["nsenter", f"--net={netns}"]
    for cmd in ("ip link add dum0 type veth peer name dum1", "ip addr add 10.231.0.1/24 dev dum0",
                "ip link set dum1 up", "ip link set dum0 up"):
        subprocess.run([*ns, *cmd.split()], check=True, timeout=30)
    subprocess.run([*ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.231.0.2"], capture_output=True, timeout=30)
    deadline = time.monotonic() + 30
    while True:       # the burn above: a cpu second
        st = rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
        if st.cpu.usage_core_nano_seconds.value >= 1_000_000_000 or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    got = {m.pod_sandbox_id: m for m in rt.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics}
    assert stopped not in got                  # ready pods only, as containerd
    pm = got[pod]
    for m in [*pm.metrics, *(x for c in pm.container_metrics for x in c.metrics)]:
        assert m.name in desc and len(m.label_values) == len(desc[m.name]), m
    net = {(m.name, m.label_values[-1]): m for m in pm.metrics}
    tx = net[("container_network_transmit_bytes_total", "dum0")]
    assert list(tx.label_values) == ["met", "default", "", pod, "", "dum0"] and tx.metric_type == pb.COUNTER
    assert tx.value.value > 0
    assert ("container_network_receive_bytes_total", "dum0") in net
    assert net[("container_network_receive_bytes_total", "dum1")].value.value > 0     # dum0's ARP requests
    [cm] = pm.container_metrics
    assert cm.container_id == cid
    by_name = {m.name: m for m in cm.metrics}
    ws = by_name["container_memory_working_set_bytes"]
    assert list(ws.label_values) == ["met", "default", "burn", cid, "bb"]
    assert ws.metric_type == pb.GAUGE and ws.value.value > 0
    assert by_name["container_memory_usage_bytes"].value.value >= ws.value.value
    cpu = by_name["container_cpu_usage_seconds_total"]
    assert cpu.metric_type == pb.COUNTER
    assert cpu.value.value >= 1 and cpu.value.value <= (st.cpu.usage_core_nano_seconds.value + 5e9) // 1e9

    streamed_ids = [m.pod_sandbox_id for m in streamed(rt.StreamPodSandboxMetrics,
                                                        pb.StreamPodSandboxMetricsRequest(), "pod_sandbox_metrics")]
    assert sorted(streamed_ids) == sorted(got)


# ---------------------------------------------------------------- UpdatePodSandboxResources

V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def read_cg(where: str, controller: str, v1: str, v2: str) -> str:
    path = f"/sys/fs/cgroup{where}/{v2}" if V2 else f"/sys/fs/cgroup/{controller}{where}/{v1}"
    with open(path) as f:
        return f.read().strip()


def test_update_pod_sandbox_resources(cri, pods, bb_image):  # noqa: F811 (the pods fixture)
    rt = cri.rt
    assert code_of(lambda: rt.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id="0" * 64))) == grpc.StatusCode.NOT_FOUND
    plain = pods(pod_config("res-plain"))        # no cgroup of its own: nothing to resize
    rt.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=plain, resources=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20)))

    tag = secrets.token_hex(3)
    top = f"dytres{tag}"
    where = f"/{top}/pod{tag}"
    try:
        pod = pods(pod_config("res", linux=pb.LinuxPodSandboxConfig(cgroup_parent=where)))
        start(rt, pod, "s", "sleep", "1000")
        rt.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=pod,
            overhead=pb.LinuxContainerResources(memory_limit_in_bytes=1 << 20, cpu_quota=10000, cpu_shares=24),
            resources=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000,
                                                 cpu_quota=50000, cpu_shares=1000)))
        if V2:
            assert read_cg(where, "memory", "", "memory.max") == str(65 << 20)
            assert read_cg(where, "cpu", "", "cpu.max") == "60000 100000"
            assert read_cg(where, "cpu", "", "cpu.weight") == str(1 + (1022 * 9999) // 262142)
        else:
            assert read_cg(where, "memory", "memory.limit_in_bytes", "") == str(65 << 20)
            assert read_cg(where, "cpu", "cpu.cfs_quota_us", "") == "60000"
            assert read_cg(where, "cpu", "cpu.cfs_period_us", "") == "100000"
            assert read_cg(where, "cpu", "cpu.shares", "") == "1024"
        # only what is given changes
        rt.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=pod, resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20)))
        if V2:
            assert read_cg(where, "memory", "", "memory.max") == str(32 << 20)
            assert read_cg(where, "cpu", "", "cpu.max") == "60000 100000"
        else:
            assert read_cg(where, "memory", "memory.limit_in_bytes", "") == str(32 << 20)
            assert read_cg(where, "cpu", "cpu.cfs_quota_us", "") == "60000"
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        assert not glob.glob(f"/sys/fs/cgroup/{top}" if V2 else f"/sys/fs/cgroup/*/{top}")
    finally:
        tops = glob.glob(f"/sys/fs/cgroup/{top}" if V2 else f"/sys/fs/cgroup/*/{top}")
        for path in sorted((p for t in tops for p, _, _ in os.walk(t)), reverse=True):
            os.rmdir(path)

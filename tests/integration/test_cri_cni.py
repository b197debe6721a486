"""CRI pods on a CNI bridge network: dockyardd's --cni-conf-dir wired to
daemon/pods.py's CniPodNetwork, with Debian's real plugins.

The daemon of this module gets a conflist in its own temp base (bridge
`<its bridge>p`, host-local with its dataDir in the base, a free 10.x
subnet, portmap for hostPorts), so runs side by side never collide. The
pod's IP answers from the host (ping, an httpd in a container), its
containers reach each other on localhost, a hostPort answers on the host;
StopPodSandbox tears the network down (veth, IPAM lease, portmap's rules,
the cache entry) and may be repeated; after kill -9 and a restart with the
conf dir gone, stop/remove still tear down from CNI's result cache. The
module removes the CNI bridge and the CNI-HOSTPORT-* chains portmap made
(it never removes them itself) before the daemon's leak check."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest
from conftest import Daemon, cri_connect, free_subnet, remove_pods, running_daemon
from test_cni import CNI_BIN, chains, fetch, free_port, gone, iptables_text, remove_shared_chains

from dockyard.cri.proto import pb

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not all(os.path.exists(f"{CNI_BIN}/{p}") for p in ("bridge", "host-local", "portmap", "loopback")),
                       reason="Debian's containernetworking-plugins are not installed"),
    pytest.mark.skipif(shutil.which("iptables-save") is None, reason="portmap needs iptables"),
]


class CniDaemon(Daemon):
    """A test daemon whose CNI conf dir holds a bridge network of its own."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.cni_bridge = f"{self.bridge}p"
        self.subnet = ipaddress.ip_network(free_subnet())
        self.ipam_dir = self.base / "ipam"
        self.cni_network = f"pods-{self.bridge}"
        self.write_cni_conf()

    def write_cni_conf(self) -> None:
        self.cni_conf_dir.mkdir(exist_ok=True)
        bridge = {"type": "bridge", "bridge": self.cni_bridge, "isGateway": True, "ipMasq": False,
                  "ipam": {"type": "host-local", "ranges": [[{"subnet": str(self.subnet)}]],
                           "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.ipam_dir)}}
        portmap = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
        (self.cni_conf_dir / "10-pods.conflist").write_text(json.dumps(
            {"cniVersion": "1.0.0", "name": self.cni_network, "plugins": [bridge, portmap]}))

    def leases(self) -> list[str]:
        d = self.ipam_dir / self.cni_network
        return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.exists() else []

    def pod_veths(self) -> list[str]:
        links = json.loads(subprocess.run(["ip", "-j", "link", "show", "master", self.cni_bridge],
                                          capture_output=True, text=True).stdout or "[]")
        return [lk["ifname"] for lk in links]

    def cni_cache(self) -> list[str]:
        d = self.data_root / "cri" / "cni" / "results"
        return sorted(os.listdir(d)) if d.exists() else []


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    """This module's dockyardd (bb_image and the rest use it), its CNI
    network's leftovers removed before its leak check."""
    ipt_before = {cmd: chains(iptables_text(cmd)) for cmd in ("iptables", "ip6tables")}
    gen = running_daemon(request, tmp_path_factory, make=CniDaemon, label="dockyardd-cni")
    d = next(gen)
    try:
        yield d
    finally:
        subprocess.run(["ip", "link", "del", d.cni_bridge], capture_output=True)
        remove_shared_chains(ipt_before)
        next(gen, None)
    for cmd in ("iptables", "ip6tables"):
        new = chains(iptables_text(cmd)) - ipt_before[cmd]
        assert not {c for c in new if c.startswith("CNI-")}, f"{cmd}: portmap chains left: {new}"


def pod_config(name: str, **kw) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
                               **kw)


def container(cri, pid: str, name: str, *argv: str) -> str:
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image="bb"),
                             command=list(argv))
    cid = cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg)).container_id
    cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid


def http_get(url: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


HTTPD = "mkdir -p /www && echo hello-from-the-pod > /www/index.html && exec httpd -f -p 80 -h /www"


def test_network_ready_follows_the_conf_dir(daemon, cri):
    def network_ready():
        conds = {c.type: c for c in cri.rt.Status(pb.StatusRequest()).status.conditions}
        return conds["NetworkReady"]
    assert network_ready().status is True
    conf = daemon.cni_conf_dir / "10-pods.conflist"
    conf.rename(daemon.base / "away.conflist")
    try:
        nr = network_ready()
        assert nr.status is False and nr.reason == "NetworkPluginNotReady"
        assert str(daemon.cni_conf_dir) in nr.message
    finally:
        (daemon.base / "away.conflist").rename(conf)
    assert network_ready().status is True


def test_pod_on_a_cni_bridge(daemon, cri, bb_image):
    host_port = free_port()
    pid = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config(
        "web", port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=host_port)]))).pod_sandbox_id
    try:
        st = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid, verbose=True))
        ip = st.status.network.ip
        assert ip and ipaddress.ip_address(ip) in daemon.subnet, st.status.network
        assert daemon.leases() == [ip]
        assert len(daemon.pod_veths()) == 1
        assert f"{daemon.cni_network}-{pid}-eth0" in daemon.cni_cache()
        hosts = open(json.loads(st.info["info"])["etcFiles"]["/etc/hosts"]).read()
        assert ip in hosts

        web = container(cri, pid, "web", "sh", "-c", HTTPD)
        other = container(cri, pid, "client", "sleep", "1000")
        # the pod's IP answers from the host: ping and the httpd in a container
        r = subprocess.run(["busybox", "ping", "-c", "1", "-W", "3", ip], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert http_get(f"http://{ip}/") == "hello-from-the-pod\n"
        # the pod's containers share its network: one reaches the other on localhost
        r = cri.rt.ExecSync(pb.ExecSyncRequest(container_id=other, timeout=10,
                                               cmd=["wget", "-q", "-O-", "http://127.0.0.1/"]))
        assert (r.exit_code, r.stdout) == (0, b"hello-from-the-pod\n"), r
        r = cri.rt.ExecSync(pb.ExecSyncRequest(container_id=other, cmd=["ip", "-o", "-4", "addr", "show", "eth0"],
                                               timeout=10))
        assert f" {ip}/" in r.stdout.decode()
        # the hostPort (portmap) answers on the host's loopback and on the bridge's gateway
        gateway = str(daemon.subnet.network_address + 1)
        assert http_get(f"http://127.0.0.1:{host_port}/") == "hello-from-the-pod\n"
        assert http_get(f"http://{gateway}:{host_port}/") == "hello-from-the-pod\n"
        ipt = iptables_text()
        assert f'id: \\"{pid}\\"' in ipt
        del web

        cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))
        st = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid)).status
        assert st.state == pb.SANDBOX_NOTREADY and st.network.ip == ""
        assert daemon.leases() == [] and daemon.cni_cache() == []
        assert gone(lambda: daemon.pod_veths() == [])
        assert f'id: \\"{pid}\\"' not in iptables_text()
        with pytest.raises(OSError):
            fetch("127.0.0.1", host_port, timeout=0.5)
        cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))      # idempotent
    finally:
        cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
    assert daemon.leases() == [] and daemon.pod_veths() == [] and daemon.cni_cache() == []


def test_remove_without_stop_tears_down(daemon, cri, bb_image):
    pid = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("gone"))).pod_sandbox_id
    container(cri, pid, "s", "sleep", "1000")
    assert len(daemon.leases()) == 1
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
    assert daemon.leases() == [] and daemon.cni_cache() == []
    assert gone(lambda: daemon.pod_veths() == [])


def test_teardown_after_kill9_from_the_cache(daemon, bb_image):
    """kill -9, and the restarted daemon has no CNI config any more: stop and
    remove tear the pods' networks down from CNI's result cache."""
    ch, rt = cri_connect(daemon)
    made = []
    conf = daemon.cni_conf_dir / "10-pods.conflist"
    try:
        a = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("k9-a"))).pod_sandbox_id
        made.append(a)
        b = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("k9-b"))).pod_sandbox_id
        made.append(b)
        ips = {p: rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=p)).status.network.ip for p in (a, b)}
        assert sorted(ips.values()) == daemon.leases() and len(set(ips.values())) == 2
        ch.close()
        daemon.kill9()
        conf.unlink()
        daemon.start()
        ch, rt = cri_connect(daemon)
        for p in (a, b):     # still ready, with their IPs
            st = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=p)).status
            assert st.state == pb.SANDBOX_READY and st.network.ip == ips[p]
        r = subprocess.run(["busybox", "ping", "-c", "1", "-W", "3", ips[a]], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=a))
        assert daemon.leases() == [ips[b]]
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=a))
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=b))
        assert daemon.leases() == [] and daemon.cni_cache() == []
        assert gone(lambda: daemon.pod_veths() == [])
    finally:
        remove_pods(rt, made)
        ch.close()
        daemon.write_cni_conf()

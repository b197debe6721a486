"""network/cni.py with Debian's real CNI plugins (containernetworking-plugins):
a netns of the test's own, a conflist in a temp conf dir with bridge
(a dyt* bridge, host-local IPAM on a free 10.x subnet with its dataDir in
the test's temp dir, ipMasq off) + portmap (+ loopback, as containerd).

Everything lives in a temp base /tmp/dytXXXXXX, like a test daemon's: the
netns is pinned there (not in /run/netns, whose new entries a test daemon
running beside this one would take for its own leaks), and the leak checks
of tests/leaks.py leave a dyt* sibling's things alone.

ADD gives the pod an IP; the host pings it over the bridge; a hostPort
answers on 127.0.0.1 and on the host's bridge IP from a listener inside the
netns; DEL (by a fresh client with the conf dir gone: a restarted daemon,
from the result cache) removes the veth, the IPAM lease and portmap's
iptables rules for the pod. The test removes the bridge, its netns and the
shared CNI-HOSTPORT-* chains portmap leaves behind when it made them, then
checks the host with tests/leaks.py."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import leaks
from conftest import free_subnet, unique_name
from dockyard.network import cni, netns
from dockyard.network.cni import CNI, PortMapping

CNI_BIN = "/usr/lib/cni"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not all(os.path.exists(f"{CNI_BIN}/{p}") for p in ("bridge", "host-local", "portmap", "loopback")),
                       reason="Debian's containernetworking-plugins are not installed"),
    pytest.mark.skipif(shutil.which("iptables-save") is None, reason="portmap needs iptables"),
]

# portmap's chains shared by every pod on the host: it makes them once and
# never removes them. (table, chain, the rules outside them that jump there)
SHARED_CHAINS = [
    ("nat", "CNI-HOSTPORT-DNAT", [["PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
                                  ["OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]]),
    ("nat", "CNI-HOSTPORT-MASQ", [["POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade",
                                   "-j", "CNI-HOSTPORT-MASQ"]]),
    ("nat", "CNI-HOSTPORT-SETMARK", []),
]

LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(("hello from the pod to %s\\n" % peer[0]).encode())
    c.close()
"""


def iptables_text(cmd: str = "iptables") -> str:
    return subprocess.run([f"{cmd}-save"], capture_output=True, text=True, check=True).stdout


def chains(text: str) -> set[str]:
    return {line[1:].split()[0] for line in text.splitlines() if line.startswith(":")}


def remove_shared_chains(before: dict[str, set[str]]) -> None:
    """The CNI-HOSTPORT-* chains this test's portmap made, once no pod's
    DNAT chain hangs off them (another runtime's pods keep them)."""
    for cmd in ("iptables", "ip6tables"):
        text = iptables_text(cmd)
        if any("-A CNI-HOSTPORT-DNAT " in line for line in text.splitlines()):
            continue
        for table, chain, jumps in SHARED_CHAINS:
            if chain in before[cmd] or chain not in chains(text):
                continue
            for jump in jumps:
                # pods added side by side may each have added the jump (portmap
                # checks, then appends): delete until none is left
                for _ in range(20):
                    if subprocess.run([cmd, "-t", table, "-D", *jump], capture_output=True).returncode:
                        break
            subprocess.run([cmd, "-t", table, "-F", chain], capture_output=True)
            subprocess.run([cmd, "-t", table, "-X", chain], capture_output=True)


def gone(check, timeout: float = 10.0) -> bool:
    """check() turns true within timeout: a netns whose pin is gone is
    destroyed by the kernel asynchronously, and the host's end of its veth
    with it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def in_netns(path: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net={path}", *argv]


def link_exists(name: str, ns_path: str | None = None) -> bool:
    argv = ["ip", "link", "show", name]
    return subprocess.run(in_netns(ns_path, *argv) if ns_path else argv, capture_output=True).returncode == 0


def fetch(host: str, port: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                return s.makefile().readline()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PodNet:
    def __init__(self, tmp: Path):
        self.name = tmp.name               # dyt + 6 hex: the bridge too
        self.netns_path = str(tmp / "netns")
        self.subnet = ipaddress.ip_network(free_subnet())
        self.tmp = tmp
        self.conf_dir = tmp / "net.d"
        self.cache_dir = tmp / "cache"
        self.ipam_dir = tmp / "ipam"
        self.network = f"cnitest-{self.name}"

    def write_conf(self, plugins: list[dict] | None = None, version: str = "1.0.0") -> None:
        self.conf_dir.mkdir(exist_ok=True)
        bridge = {"type": "bridge", "bridge": self.name, "isGateway": True, "ipMasq": False,
                  "ipam": {"type": "host-local", "ranges": [[{"subnet": str(self.subnet)}]],
                           "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.ipam_dir)}}
        portmap = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
        body = {"cniVersion": version, "name": self.network,
                "plugins": [bridge, portmap] if plugins is None else [bridge, *plugins]}
        (self.conf_dir / "10-pod.conflist").write_text(json.dumps(body))

    def client(self) -> CNI:
        return CNI([CNI_BIN], str(self.conf_dir), str(self.cache_dir), timeout=60)

    def leases(self) -> list[str]:
        d = self.ipam_dir / self.network
        return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.exists() else []


@pytest.fixture
def pod():
    base = Path("/tmp") / unique_name()
    base.mkdir()
    p = PodNet(base)
    scope = leaks.Scope(roots=(str(base),), bridge=p.name, link_prefixes=(p.name,))
    # "mounts" (those under the base) covers the netns pin; "nsfs" would
    # count any new netns pin on the host, another test's too
    before = leaks.snapshot(scope, kinds=("links", "nft", "iptables", "mounts"))
    ipt_before = {cmd: chains(iptables_text(cmd)) for cmd in ("iptables", "ip6tables")}
    netns.create(p.netns_path)
    try:
        yield p
    finally:
        try:
            p.client().teardown("pod1", p.netns_path)
        except cni.CNIError:
            pass
        netns.remove(p.netns_path)
        subprocess.run(["ip", "link", "del", p.name], capture_output=True)
        remove_shared_chains(ipt_before)
        gone(lambda: not leaks.check(before, scope))
        left = leaks.check(before, scope)
        shutil.rmtree(base, ignore_errors=True)
    assert not left, leaks.format_leaks(left, scope)
    for cmd in ("iptables", "ip6tables"):
        new = chains(iptables_text(cmd)) - ipt_before[cmd]
        assert not {c for c in new if c.startswith("CNI-")}, f"{cmd}: portmap chains left: {new}"


def test_pod_network_add_reach_hostport_del(pod: PodNet):
    pod.write_conf()
    c = pod.client()
    assert c.status().ready
    host_port, pod_port = free_port(), 8080
    res = c.setup("pod1", pod.netns_path, "eth0", args={"K8S_POD_NAMESPACE": "default", "K8S_POD_NAME": "p1"},
                  port_mappings=[PortMapping(host_port, pod_port, "tcp")])
    ips = res.ips_of("eth0")
    assert len(ips) == 1
    pod_ip, gateway = ipaddress.ip_address(ips[0].ip), ips[0].gateway
    assert pod_ip in pod.subnet and gateway == str(pod.subnet.network_address + 1)
    assert pod.leases() == [str(pod_ip)]
    host_veths = [i.name for i in res.interfaces if not i.sandbox and i.name != pod.name]
    assert len(host_veths) == 1 and link_exists(host_veths[0])
    assert (pod.cache_dir / "results" / f"{pod.network}-pod1-eth0").exists()
    # loopback is up in the pod, as containerd leaves it
    lo = json.loads(subprocess.run(in_netns(pod.netns_path, "ip", "-j", "link", "show", "lo"),
                                   capture_output=True, text=True, check=True).stdout)
    assert "UP" in lo[0]["flags"]

    # the host reaches the pod over the bridge
    r = subprocess.run(["busybox", "ping", "-c", "1", "-W", "3", str(pod_ip)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    # the hostPort answers on loopback and on the host's bridge address
    ipt = iptables_text()
    pod_chains = {ch for ch in chains(ipt) if ch.startswith("CNI-DN-")}
    assert pod_chains and 'id: \\"pod1\\"' in ipt
    listener = subprocess.Popen(in_netns(pod.netns_path, sys.executable, "-c", LISTENER, str(pod_port)),
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready"
        assert fetch(str(pod_ip), pod_port).startswith("hello from the pod")
        assert fetch(gateway, host_port).startswith("hello from the pod")
        assert fetch("127.0.0.1", host_port).startswith("hello from the pod")
    finally:
        listener.kill()
        listener.wait()

    # a restarted daemon with the conf dir gone tears down from the cache
    shutil.rmtree(pod.conf_dir)
    restarted = pod.client()
    assert not restarted.status().ready
    assert restarted.cached_result("pod1").ips_of("eth0") == ips
    restarted.teardown("pod1", pod.netns_path)
    assert not link_exists(host_veths[0])
    assert not link_exists("eth0", pod.netns_path)
    assert pod.leases() == []
    ipt = iptables_text()
    assert not pod_chains & chains(ipt) and 'id: \\"pod1\\"' not in ipt
    assert not list((pod.cache_dir / "results").iterdir())
    # DEL again (kubelet retries; the netns may be gone): no error
    netns.remove(pod.netns_path)
    restarted.teardown("pod1", pod.netns_path)


def test_check_failed_add_and_lost_netns(pod: PodNet):
    # CHECK on bridge + host-local: portmap 1.1.1's CHECK also looks for an
    # IPv6 chain a v4-only pod never gets (containernetworking/plugins#819),
    # so it is left out here
    pod.write_conf(plugins=[])
    c = pod.client()
    c.setup("pod1", pod.netns_path)
    c.check("pod1", pod.netns_path)
    subprocess.run(in_netns(pod.netns_path, "ip", "link", "del", "eth0"), check=True)
    with pytest.raises(cni.PluginError) as ei:
        c.check("pod1", pod.netns_path)
    assert ei.value.message.startswith('plugin type="bridge" failed (check): ')
    c.teardown("pod1", pod.netns_path)
    assert pod.leases() == []

    # a plugin after bridge fails its ADD: the bridge's veth and lease are undone
    pod.write_conf(plugins=[{"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.no_such_knob": "1"}}])
    with pytest.raises(cni.PluginError) as ei:
        c.setup("pod1", pod.netns_path)
    assert ei.value.message.startswith('plugin type="tuning" failed (add): ')
    assert not link_exists("eth0", pod.netns_path)
    assert pod.leases() == []
    assert [n for n in os.listdir(pod.cache_dir / "results")] == []

    # the pod's netns is gone before its DEL (a node reboot, a crash): the
    # lease and the host's veth are released all the same
    pod.write_conf(plugins=[])
    res = c.setup("pod1", pod.netns_path)
    host_veth = next(i.name for i in res.interfaces if not i.sandbox and i.name != pod.name)
    assert len(pod.leases()) == 1
    netns.remove(pod.netns_path)
    pod.client().teardown("pod1", pod.netns_path)
    assert pod.leases() == []
    assert gone(lambda: not link_exists(host_veth))


def ifb_links() -> set[str]:
    links = json.loads(subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout)
    return {lk["ifname"] for lk in links if (lk.get("linkinfo") or {}).get("info_kind") == "ifb"}


def test_bandwidth_capability_shapes_and_del_removes_it(pod: PodNet):
    # the `bandwidth` capability reaches the plugin as runtimeConfig: tbf on
    # the host's veth (ingress) and an ifb device for egress, both gone on DEL
    pod.write_conf(plugins=[{"type": "bandwidth", "capabilities": {"bandwidth": True}}])
    ifbs_before = ifb_links()
    res = pod.client().setup("pod1", pod.netns_path, bandwidth=cni.Bandwidth(
        ingress_rate=8_000_000, ingress_burst=800_000, egress_rate=4_000_000, egress_burst=400_000))
    host_veth = next(i.name for i in res.interfaces if not i.sandbox and i.name != pod.name)
    qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", host_veth], capture_output=True, text=True).stdout
    assert "tbf" in qdiscs, qdiscs
    new_ifbs = ifb_links() - ifbs_before
    assert len(new_ifbs) == 1
    pod.client().teardown("pod1", pod.netns_path)
    assert not new_ifbs & ifb_links()
    assert not link_exists(host_veth) and pod.leases() == []


def test_pods_set_up_and_torn_down_concurrently(pod: PodNet):
    # the CRI server runs RunPodSandbox calls side by side: one client,
    # threads, distinct leases (host-local's lock), nothing left after
    from concurrent.futures import ThreadPoolExecutor

    pod.write_conf()
    c = pod.client()
    ids = [f"pod{i}" for i in range(2, 6)]
    paths = {cid: str(pod.tmp / f"netns-{cid}") for cid in ids}
    for p in paths.values():
        netns.create(p)
    dn_before = {ch for ch in chains(iptables_text()) if ch.startswith("CNI-DN-")}
    try:
        with ThreadPoolExecutor(len(ids)) as ex:
            results = dict(zip(ids, ex.map(lambda cid: c.setup(cid, paths[cid], port_mappings=[
                PortMapping(free_port(), 80)]), ids)))
        addrs = {r.ips_of("eth0")[0].ip for r in results.values()}
        assert len(addrs) == len(ids) and sorted(addrs) == pod.leases()
        assert len({ch for ch in chains(iptables_text()) if ch.startswith("CNI-DN-")} - dn_before) == len(ids)
        with ThreadPoolExecutor(len(ids)) as ex:
            list(ex.map(lambda cid: c.teardown(cid, paths[cid]), ids))
        assert pod.leases() == []
        dn_during = {ch for ch in chains(iptables_text()) if ch.startswith("CNI-DN-")}
        assert not dn_during - dn_before
    finally:
        for cid, p in paths.items():
            try:
                c.teardown(cid, p)
            except cni.CNIError:
                pass
            netns.remove(p)

"""NetworkManager against the real kernel, without a daemon.

Every test gets its own bridge (`dyt` + random hex) and a random /24 that
overlaps nothing on the host, and purges it afterwards even on failure.
Traffic only flows between namespaces the test created.
"""
import errno
import os
import random
import secrets
import shutil
import socket
import struct
import subprocess
import time
from ipaddress import IPv4Network

import pytest
from pyroute2 import IPRoute

from dockyard.errors import Forbidden, NotFound, SystemError_, Unavailable
from dockyard.network import firewall, links, netns
from dockyard.network import plumbing
from dockyard.network.cleanup import purge
from dockyard.network.manager import NetworkManager
from dockyard.network.subnets import pick_free_subnet
from dockyard.store.db import Database

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("nsenter") is None or shutil.which("ip") is None,
                       reason="needs nsenter and ip"),
]


def _free_test_subnet() -> IPv4Network:
    with IPRoute() as ipr:
        in_use = links.host_ipv4_networks(ipr)
    candidates = [IPv4Network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
                  for _ in range(50)]
    return pick_free_subnet(in_use, candidates)


class Host:
    """One test's bridge, exec root and database, and a way to check nothing is left."""

    def __init__(self, tmp_path):
        self.bridge = "dyt" + secrets.token_hex(4)
        self.subnet = _free_test_subnet()
        self.exec_root = str(tmp_path / "run")
        self.db_path = str(tmp_path / "net.sqlite")
        self.dbs = []
        self.veths = set()

    def manager(self, bip: str | None = "default") -> NetworkManager:
        db = Database(self.db_path)
        self.dbs.append(db)
        if bip == "default":
            bip = f"{self.subnet.network_address + 1}/{self.subnet.prefixlen}"
        return NetworkManager(db, self.exec_root, bridge=self.bridge, bip=bip)

    def link_names(self) -> set[str]:
        with IPRoute() as ipr:
            return {link.get("ifname") for link in ipr.get_links()}

    def leftovers(self) -> list[str]:
        found = []
        names = self.link_names()
        if self.bridge in names:
            found.append(f"bridge {self.bridge}")
        found += [f"veth {v}" for v in self.veths & names]
        with IPRoute() as ipr:
            found += [f"stale veth {v}" for v in links.stale_veths(ipr, self.bridge)]
        netns_dir = os.path.join(self.exec_root, "netns")
        if os.path.isdir(netns_dir) and os.listdir(netns_dir):
            found.append(f"netns files {os.listdir(netns_dir)}")
        table = firewall.table_name(self.bridge)
        if subprocess.run(["nft", "list", "table", "ip", table], capture_output=True).returncode == 0:
            found.append(f"nft table {table}")
        found += [f"iptables rule {r}" for r in firewall.tagged_rules(self.bridge)]
        return found


@pytest.fixture
def host(tmp_path):
    h = Host(tmp_path)
    try:
        yield h
    finally:
        purge(h.bridge, h.exec_root)
        for db in h.dbs:
            db.close()
    assert h.leftovers() == []


def nsenter(path: str, *argv: str) -> str:
    return subprocess.run(["nsenter", f"--net={path}", *argv], check=True,
                          capture_output=True, text=True).stdout


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_ping(netns_path: str, dst: str, timeout: float = 2.0) -> bool:
    """One ICMP echo from inside a namespace (no ping binary needed)."""
    def ping() -> bool:
        ident, payload = random.randint(1, 0xFFFF), b"dockyard"
        header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
            s.settimeout(timeout)
            s.sendto(packet, (dst, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    data, (src, _) = s.recvfrom(2048)
                except socket.timeout:
                    return False
                ihl = (data[0] & 0x0F) * 4
                kind, _, _, reply_id, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                if src == dst and kind == 0 and reply_id == ident:
                    return True
        return False

    return netns.run_in(netns_path, ping)


def test_two_endpoints_talk_over_the_bridge_and_purge_leaves_nothing(host):
    nm = host.manager()
    nm.setup()
    nm.setup()   # idempotent
    info = nm.default_network_info()
    assert info["Subnet"] == str(host.subnet) and info["Bridge"] == host.bridge

    a = nm.connect("a" * 64, "bridge", hostname="alpha")
    b = nm.connect("b" * 64, "bridge")
    host.veths |= {a.host_veth, b.host_veth}
    assert a.ip == str(host.subnet.network_address + 2)
    assert b.ip == str(host.subnet.network_address + 3)
    assert a.gateway == info["Gateway"] and a.prefixlen == 24 and a.network == "bridge"
    assert a.mac == "02:42:" + ":".join(f"{x:02x}" for x in socket.inet_aton(a.ip))
    assert a.netns_path == os.path.join(host.exec_root, "netns", "a" * 64)
    assert nm.endpoint("a" * 64) == a

    addrs = nsenter(a.netns_path, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
    assert f"inet {a.ip}/24" in addrs
    assert f"default via {a.gateway} dev eth0" in nsenter(a.netns_path, "ip", "-4", "route")
    assert a.mac in nsenter(a.netns_path, "ip", "link", "show", "eth0")
    assert "UP" in nsenter(a.netns_path, "ip", "-o", "link", "show", "lo")
    with IPRoute() as ipr:
        assert a.host_veth in links.ports_of(ipr, host.bridge)

    assert icmp_ping(a.netns_path, b.ip)
    assert icmp_ping(b.netns_path, a.gateway)   # the host side of the bridge answers too

    table = subprocess.run(["nft", "list", "table", "ip", firewall.table_name(host.bridge)],
                           check=True, capture_output=True, text=True).stdout
    assert f"ip saddr {host.subnet}" in table and "masquerade" in table

    nm.disconnect("a" * 64)
    nm.disconnect("a" * 64)   # idempotent
    assert nm.endpoint("a" * 64) is None
    assert not os.path.exists(a.netns_path)
    with IPRoute() as ipr:
        assert a.host_veth not in links.ports_of(ipr, host.bridge)
    # b keeps working, and a's address is the next one handed out
    assert icmp_ping(b.netns_path, b.gateway)
    c = nm.connect("c" * 64, "bridge")
    host.veths.add(c.host_veth)
    assert c.ip == a.ip
    assert icmp_ping(c.netns_path, b.ip)

    nm.disconnect("b" * 64)
    nm.disconnect("c" * 64)
    nm.disconnect("never-connected")
    purge(host.bridge, host.exec_root)
    assert host.leftovers() == []


def test_none_mode_has_only_loopback(host):
    nm = host.manager()
    nm.setup()
    ep = nm.connect("n" * 64, "none")
    assert ep.network == "none" and ep.ip is None and ep.network_id == nm.network_id("none")
    out = nsenter(ep.netns_path, "ip", "-o", "link")
    assert "lo:" in out and "eth0" not in out and "UP" in out
    nm.disconnect("n" * 64)
    assert not os.path.exists(ep.netns_path)


def test_connect_errors_leave_nothing_behind(host, monkeypatch):
    nm = host.manager()
    with pytest.raises(Unavailable):
        nm.connect("x" * 64, "bridge")   # before setup
    nm.setup()
    with pytest.raises(NotFound):
        nm.connect("x" * 64, "overlay")   # no such network
    ep = nm.connect("x" * 64, "bridge")
    host.veths.add(ep.host_veth)
    with pytest.raises(Forbidden):   # already on that network: Docker's 403
        nm.connect("x" * 64, "bridge")
    nm.disconnect("x" * 64)

    # A failure inside the namespace, after address, netns and veth exist, undoes all three.
    def broken_plumbing(address, gateway):
        raise OSError(errno.EIO, "injected failure")

    monkeypatch.setattr(plumbing, "plumb_inside", broken_plumbing)
    with pytest.raises(SystemError_):
        nm.connect("y" * 64, "bridge")
    assert not os.path.exists(nm.netns_path("y" * 64))
    assert nm.store.allocation_owners() == set()
    assert nm.endpoint("y" * 64) is None
    with IPRoute() as ipr:
        assert links.ports_of(ipr, host.bridge) == []
    monkeypatch.undo()

    # The bridge vanishing under us fails early, with nothing made.
    with IPRoute() as ipr:
        links.delete_link(ipr, host.bridge)
    with pytest.raises(Unavailable):
        nm.connect("y" * 64, "bridge")
    assert not os.path.exists(nm.netns_path("y" * 64))
    assert nm.store.allocation_owners() == set()


def test_reconcile_after_crash_keeps_only_live_containers(host):
    nm = host.manager()
    nm.setup()
    live = nm.connect("l" * 64)
    dead = nm.connect("d" * 64)
    host.veths |= {live.host_veth, dead.host_veth}
    # leftovers of a crash mid-connect: a namespace file and an address without an endpoint
    netns.create(nm.netns_path("z" * 64))
    nm.store.allocate_ip(nm.network_id("bridge"), str(host.subnet), live.gateway, "z" * 64)

    restarted = host.manager()   # same database, as after a daemon restart
    restarted.setup()
    restarted.reconcile({"l" * 64})
    assert restarted.endpoint("l" * 64) == live
    assert restarted.endpoint("d" * 64) is None
    assert sorted(os.listdir(restarted.netns_dir)) == ["l" * 64]
    assert restarted.store.allocation_owners() == {"l" * 64}
    with IPRoute() as ipr:
        assert links.ports_of(ipr, host.bridge) == [live.host_veth]
    assert icmp_ping(live.netns_path, live.gateway)


def test_subnet_choice_without_bip_is_remembered(host):
    nm = host.manager(bip=None)
    nm.setup()
    chosen = nm.default_network_info()
    subnet = IPv4Network(chosen["Subnet"])
    assert not subnet.overlaps(IPv4Network("172.17.0.0/16"))
    assert not subnet.overlaps(IPv4Network("10.88.0.0/16"))
    again = host.manager(bip=None)
    again.setup()
    assert again.default_network_info() == chosen


def test_forward_accept_rules_are_tagged_and_purged(host):
    if firewall.forward_policy() is None:
        pytest.skip("no iptables filter table on this host; not creating one just for a test")
    firewall.insert_forward_accept(host.bridge)
    firewall.insert_forward_accept(host.bridge)   # no duplicates
    rules = firewall.tagged_rules(host.bridge)
    assert len(rules) == 3 and all(r[:2] == ["-A", "FORWARD"] for r in rules)
    purge(host.bridge, host.exec_root)
    assert firewall.tagged_rules(host.bridge) == []


def test_connect_disconnect_is_fast(host):
    nm = host.manager()
    nm.setup()
    nm.connect("w" * 64)
    nm.disconnect("w" * 64)
    rounds, took = 20, {"connect": 0.0, "disconnect": 0.0}
    for _ in range(rounds):
        t0 = time.perf_counter()
        nm.connect("t" * 64)
        t1 = time.perf_counter()
        nm.disconnect("t" * 64)
        took["connect"] += t1 - t0
        took["disconnect"] += time.perf_counter() - t1
    avg = {k: v / rounds * 1000 for k, v in took.items()}
    print(f"bridge mode: connect {avg['connect']:.2f} ms, disconnect {avg['disconnect']:.2f} ms")
    assert avg["connect"] + avg["disconnect"] < 100   # a few ms normally; generous for loaded CI


# -- the per-container path does not grow with the number of containers (issue 16) -----------

def test_start_and_stop_path_make_no_dump_and_constant_work(host, monkeypatch):
    """connect + embedded DNS + publish + disconnect, for the 1st and the 12th container on a user
    network: no netlink dump (links, addresses, routes) through pyroute2 or the plain rtnetlink
    client, no nft listing, and the same netlink requests and nft commands for both."""
    import asyncio
    import threading

    from pyroute2.netlink import NLM_F_DUMP

    from dockyard.network import nft, ports, rtnl
    from dockyard.network.resolver import DnsService

    calls: list = []
    orig_request = rtnl.Rtnl._request

    def request(self, msg, msg_type, flags=0):
        calls.append(("rtnl", msg_type, flags))
        return orig_request(self, msg, msg_type, flags)

    monkeypatch.setattr(rtnl.Rtnl, "_request", request)
    for name in ("get_links", "link_lookup", "get_addr", "get_routes", "dump"):
        if hasattr(IPRoute, name):
            monkeypatch.setattr(IPRoute, name, lambda *a, _n=name, **k: calls.append(("dump", _n)) or [])
    for name in ("run", "run_fresh"):
        orig = getattr(nft, name)
        monkeypatch.setattr(nft, name, lambda script, *a, _o=orig, **k: calls.append(("nft", script)) or _o(script, *a, **k))

    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    nm = host.manager()
    nm.setup(dns=DnsService(loop, nm))
    sub = _free_test_subnet()
    nm.create_network("scalenet", ipam={"Config": [{"Subnet": str(sub)}]})
    ids = [f"{i:02d}" * 32 for i in range(12)]
    per_start, per_stop = [], []
    try:
        for cid in ids:
            calls.clear()
            ep = nm.connect(cid, "scalenet", name="c" + cid[:4])
            host.veths.add(ep.host_veth)
            assert nm.start_resolver(cid, [])
            nm.publish(cid, ep.ip, [ports.Binding("tcp", 80, "127.0.0.1", 0, 0)])
            per_start.append(list(calls))
        for cid in ids:
            calls.clear()
            nm.disconnect(cid)
            per_stop.append(list(calls))
    finally:
        for cid in ids:
            nm.disconnect(cid)
        nm.remove_network("scalenet")
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(5)
    for seen in per_start + per_stop:
        assert not [c for c in seen if c[0] == "dump"], seen
        # a GET with NLM_F_DUMP (on NEW requests those bits mean CREATE/EXCL)
        assert not [c for c in seen if c[0] == "rtnl" and c[1] % 4 == 2 and c[2] & NLM_F_DUMP], seen
        assert not [c for c in seen if c[0] == "nft" and "list" in c[1]], seen

    def shape(seen):   # the requests' kinds and the nft commands' verbs, not their addresses or ports
        return [c[:3] if c[0] == "rtnl" else (c[0], [line.split(" ", 1)[0] for line in c[1].splitlines()])
                for c in seen]

    assert shape(per_start[0]) == shape(per_start[-1])
    assert shape(per_stop[0]) == shape(per_stop[-1])


def test_nft_runs_with_a_thousand_descriptors_open(tmp_path):
    """libnftables select()s on its netlink socket; glibc aborts the process when that descriptor
    is 1024 or above (dockyardd died so at ~660 containers on a user network: two DNS sockets each).
    Both the shared context and a namespace's own one, made before and after the descriptors are
    taken, must work."""
    import sys
    table = "dyfd" + secrets.token_hex(3)
    script = (
        "import os, sys\n"
        "from dockyard.network import nft\n"
        f"S = 'add table ip {table}\\ndelete table ip {table}\\n'\n"
        "if sys.argv[1] == 'early':\n"
        "    nft.run(S)\n"
        "fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]\n"
        "assert max(fds) >= 1024\n"
        "print(nft.run_fresh(S)[0], nft.run(S)[0], nft.run_fresh(S)[0])\n")
    for when in ("early", "late"):
        r = subprocess.run([sys.executable, "-c", script, when], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.split() == ["True"] * 3, (when, r.returncode, r.stderr[-500:])
    assert subprocess.run(["nft", "list", "table", "ip", table], capture_output=True).returncode != 0


def test_namespace_threads_are_reused_and_always_back_home(tmp_path):
    """netns keeps its threads between operations: each operation still runs in the namespace it
    made or entered, and every later one starts in the daemon's namespace, after a failure too."""
    import threading
    home = os.stat("/proc/self/ns/net").st_ino
    # the thread object itself: kept alive in the lists, so a new thread can never look like an old one
    here = lambda: (os.stat("/proc/thread-self/ns/net").st_ino, threading.current_thread())  # noqa: E731
    paths = [str(tmp_path / f"n{i}") for i in range(3)]
    try:
        made = [netns.create(p, then=here) for p in paths]
        entered = [netns.run_in(p, here) for p in paths]
        assert [m[0] for m in made] == [e[0] for e in entered]          # the same namespace each time
        assert len({m[0] for m in made}) == 3 and home not in {m[0] for m in made}
        with pytest.raises(OSError):
            netns.run_in(paths[0], lambda: os.open("/nonexistent/x", os.O_RDONLY))
        after = [netns.call_in_thread(here) for _ in range(5)]
        assert {a[0] for a in after} == {home}
        assert len({id(t) for _, t in made + entered + after}) < len(made + entered + after)   # threads reused
    finally:
        for p in paths:
            netns.remove(p)

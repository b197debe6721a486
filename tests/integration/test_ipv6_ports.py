"""Published ports of containers with an IPv6 address, as Docker 28 with ip6tables: [::] binds are
DNAT in dockyard's ip6 ports table (hairpin and host addresses included), ::1 is served by the
port proxy (as docker-proxy: IPv6 has no route_localnet); a container without IPv6 keeps the
relay only, an IPv6-only one is reached over IPv4 through it. Nothing is left after rm."""
from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import time

import pytest

from dockyard.network import firewall
from test_ipv6_networks import v6_subnet
from test_networks import free_port, free_subnet, http_get, uname

HTTPD = ("sh", "-c", "mkdir -p /www && hostname > /www/index.html && (httpd -p 81 -h /www; exec httpd -f -p 80 -h /www)")


def v6_elements(daemon) -> str:
    """The ip6 ports table's maps (empty when there is no such table)."""
    table = firewall.table_name(daemon.bridge) + "-ports"
    r = subprocess.run(["nft", "list", "table", "ip6", table], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _ep(daemon, name: str, net: str) -> dict:
    return json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Networks"][net]


def test_ipv6_binds_are_dnat_to_the_containers_ipv6_address(daemon, bb_image):
    net, a, b = uname("p6"), uname("a"), uname("b")
    sub6 = v6_subnet()
    gw6 = str(ipaddress.ip_network(sub6).network_address + 1)
    both, lo6 = free_port(), free_port()
    daemon.docker("network", "create", "--ipv6", "--subnet", free_subnet(), "--subnet", sub6, net)
    try:
        daemon.docker("run", "-d", "--name", a, "--hostname", "web", "--network", net, "-p", f"{both}:80",
                      "-p", f"[::1]:{lo6}:81", bb_image, *HTTPD)
        ip6 = _ep(daemon, a, net)["GlobalIPv6Address"]
        maps = v6_elements(daemon)
        assert f"tcp . {both} : {ip6} . 80" in maps, maps          # DNAT, not only the relay
        assert f"{lo6}" not in maps                                  # ::1: the proxy's alone
        assert http_get(f"http://127.0.0.1:{both}/").strip() == "web"
        assert http_get(f"http://[{gw6}]:{both}/").strip() == "web"   # a host address: output DNAT
        assert http_get(f"http://[::1]:{both}/").strip() == "web"     # loopback: the proxy
        assert http_get(f"http://[::1]:{lo6}/").strip() == "web"
        # hairpin on both families: a container of the network through the host's addresses
        r = daemon.docker("run", "--rm", "--name", b, "--network", net, bb_image, "sh", "-c",
                          f"wget -qO- http://[{gw6}]:{both}/ && wget -qO- http://{_ep(daemon, a, net)['Gateway']}:{both}/")
        assert r.stdout.split() == ["web", "web"], r.stdout + r.stderr
        lines = sorted(daemon.docker("port", a).stdout.strip().splitlines())
        assert lines == sorted([f"80/tcp -> 0.0.0.0:{both}", f"80/tcp -> [::]:{both}", f"81/tcp -> [::1]:{lo6}"])
        daemon.restart()   # the element is put back with the re-adopted container
        assert f"tcp . {both} : {ip6} . 80" in v6_elements(daemon)
        assert http_get(f"http://[{gw6}]:{both}/").strip() == "web"
    finally:
        daemon.docker("rm", "-f", a, b, check=False)
        daemon.docker("network", "rm", net)
    assert f"{both}" not in v6_elements(daemon)
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        with socket.socket(family) as s:   # free again on both families
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, both))


def test_without_ipv6_the_relay_and_on_ipv6_only_the_relay_for_ipv4(daemon, bb_image):
    v4only, v6only, net = uname("v4"), uname("v6"), uname("only6")
    p4, p6 = free_port(), free_port()
    sub6 = v6_subnet()
    daemon.docker("network", "create", "--ipv6", "--ipv4=false", "--subnet", sub6, net)
    try:
        daemon.docker("run", "-d", "--name", v4only, "--hostname", "four", "-p", f"{p4}:80", bb_image, *HTTPD)
        daemon.docker("run", "-d", "--name", v6only, "--hostname", "six", "--network", net, "-p", f"{p6}:80",
                      bb_image, *HTTPD)
        maps = v6_elements(daemon)
        assert f"{p4}" not in maps                                   # no IPv6 address: relayed only
        ip6 = _ep(daemon, v6only, net)["GlobalIPv6Address"]
        assert f"tcp . {p6} : {ip6} . 80" in maps, maps
        # DNAT first: a refused connection is retried while httpd starts (the relay accepts, then closes)
        assert http_get(f"http://127.0.0.1:{p4}/").strip() == "four"
        assert http_get(f"http://[::1]:{p4}/").strip() == "four"
        gw6 = str(ipaddress.ip_network(sub6).network_address + 1)
        assert http_get(f"http://[{gw6}]:{p6}/").strip() == "six"
        assert http_get(f"http://127.0.0.1:{p6}/").strip() == "six"   # IPv4 to an IPv6-only container: relayed
        assert http_get(f"http://[::1]:{p6}/").strip() == "six"
        ports = json.loads(daemon.docker("inspect", v6only).stdout)[0]["NetworkSettings"]["Ports"]
        assert ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(p6)}, {"HostIp": "::", "HostPort": str(p6)}]
        daemon.restart()   # the IPv6-only network's host state, its DNAT and relays come back
        bridge = "br-" + json.loads(daemon.docker("network", "inspect", net).stdout)[0]["Id"][:12]
        addrs = subprocess.run(["ip", "addr", "show", "dev", bridge], capture_output=True, text=True).stdout
        assert "inet " not in addrs and f"inet6 {gw6}/64" in addrs, addrs
        assert f"tcp . {p6} : {ip6} . 80" in v6_elements(daemon)
        assert http_get(f"http://[{gw6}]:{p6}/").strip() == "six"
        assert http_get(f"http://127.0.0.1:{p6}/").strip() == "six"
    finally:
        daemon.docker("rm", "-f", v4only, v6only, check=False)
        daemon.docker("network", "rm", net)
    assert f"{p6}" not in v6_elements(daemon)


SUB6_DEFAULT = v6_subnet()


@pytest.fixture(scope="module")
def daemon6(request, tmp_path_factory, busybox_tar):
    """A dockyardd with IPv6 on its default bridge (dockerd's --ipv6 --fixed-cidr-v6)."""
    from conftest import running_daemon
    for d in running_daemon(request, tmp_path_factory, extra_args=("--ipv6", "--fixed-cidr-v6", SUB6_DEFAULT),
                            label="dockyardd6p"):
        d.docker("import", str(busybox_tar), "bb")
        yield d


def test_the_default_bridge_with_ipv6_dnat(daemon6):
    """dockyardd --ipv6 --fixed-cidr-v6: the default bridge's containers are published by DNAT too."""
    name, port = uname("d6"), free_port()
    gw6 = str(ipaddress.ip_network(SUB6_DEFAULT).network_address + 1)
    daemon6.docker("run", "-d", "--name", name, "--hostname", "dflt", "-p", f"{port}:80", "bb", *HTTPD)
    try:
        ip6 = _ep(daemon6, name, "bridge")["GlobalIPv6Address"]
        assert f"tcp . {port} : {ip6} . 80" in v6_elements(daemon6)
        for url in (f"http://[{gw6}]:{port}/", f"http://[::1]:{port}/", f"http://127.0.0.1:{port}/"):
            assert http_get(url).strip() == "dflt", url
    finally:
        daemon6.docker("rm", "-f", name)
    assert f"{port}" not in v6_elements(daemon6)


RESPONDER6 = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"%d " % peer[1] + data, peer)
"""


def test_udp_on_ipv6_is_dnat_keeping_the_clients_port(daemon, bb_image):
    """The client's source port arrives unchanged: DNAT, not the relay (which sends from a port of its own)."""
    net, name = uname("u6"), uname("u")
    sub6 = v6_subnet()
    gw6 = str(ipaddress.ip_network(sub6).network_address + 1)
    hp = free_port()
    daemon.docker("network", "create", "--ipv6", "--subnet", free_subnet(), "--subnet", sub6, net)
    proc = None
    try:
        daemon.docker("run", "-d", "--name", name, "--network", net, "-p", f"{hp}:8053/udp", bb_image, "sleep", "300")
        pid = json.loads(daemon.docker("inspect", name).stdout)[0]["State"]["Pid"]
        proc = subprocess.Popen(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", RESPONDER6, "8053"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            s.bind(("::", 0))
            mine = s.getsockname()[1]
            s.connect((gw6, hp))
            for _ in range(20):
                s.send(b"hi")
                try:
                    got = s.recv(2048)
                    break
                except (TimeoutError, socket.timeout, ConnectionRefusedError):
                    time.sleep(0.1)
            else:
                raise AssertionError("no answer over IPv6")
        assert got == b"%d hi" % mine
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
            proc.stdout.close()
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("network", "rm", net)

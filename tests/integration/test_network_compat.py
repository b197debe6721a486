"""Networking as real clients see it on dockerd (issue 14): Compose v1's disconnect-then-connect of a
created container, legacy links' environment and removal, endpoint settings read back before start,
network IPAM auxiliary addresses, dockerd's errors. The expected values were read off a dockerd 20.10
(Debian's docker.io) driven the same way."""
from __future__ import annotations

import ipaddress
import json
import secrets

import pytest

from conftest import free_subnet


def uname(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


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
    # "none" goes with no other network: refused at connect (400), running or not, as dockerd
    nn = uname("nn")
    names.append(nn)
    daemon.docker("create", "--name", nn, "--network", "none", bb_image, "sleep", "300")
    for _ in ("created", "running"):
        status, body = daemon.api("POST", f"/networks/{n}/connect", {"Container": nn})
        assert (status, json.loads(body)["message"]) == (400, "container cannot be connected to multiple "
                                                              "networks with one of the networks in private (none) mode")
        daemon.docker("start", nn)
    # connecting a stopped container twice: dockerd keeps the first settings and says nothing
    daemon.docker("stop", "-t", "0", c)
    daemon.docker("network", "connect", "--alias", "first", n, c)
    daemon.docker("network", "connect", "--alias", "second", n, c)
    assert inspect(daemon, c)["NetworkSettings"]["Networks"][n]["Aliases"] == ["first"]


def test_aliases_before_api_1_45_list_the_short_id_and_hostname(daemon, bb_image, net, names):
    """dockerd 20.10 (API 1.41) shows them in Aliases; newer APIs show them in DNSNames (moby's order)."""
    n, c, b = net["name"], uname("c"), uname("b")
    names += [c, b]
    daemon.docker("run", "-d", "--name", c, "--network", n, "--network-alias", "al", "--hostname", "hh",
                  bb_image, "sleep", "300")
    daemon.docker("run", "-d", "--name", b, bb_image, "sleep", "300")
    cid = inspect(daemon, c)["Id"]
    got = inspect(daemon, c)["NetworkSettings"]
    ep = got["Networks"][n]
    assert ep["Aliases"] == ["al"] and ep["DNSNames"] == [c, "al", cid[:12], "hh"]
    # the deprecated top-level fields are the default bridge's: empty for a container not on it
    assert (got["IPAddress"], got["Gateway"], got["MacAddress"], got["EndpointID"]) == ("", "", "", "")
    bridge = inspect(daemon, b)["NetworkSettings"]
    assert bridge["IPAddress"] == bridge["Networks"]["bridge"]["IPAddress"] != ""
    old = json.loads(daemon.api("GET", f"/v1.41/containers/{c}/json")[1])
    assert old["NetworkSettings"]["Networks"][n]["Aliases"] == ["al", cid[:12], "hh"]
    old = json.loads(daemon.api("GET", f"/v1.41/containers/{b}/json")[1])
    assert old["NetworkSettings"]["Networks"]["bridge"]["Aliases"] is None   # not on the default bridge


# -- B: legacy links ----------------------------------------------------------------------

def test_legacy_links_environment_inspect_and_removal(daemon, bb_image, names):
    tgt, lnk = uname("tgt"), uname("lnk")
    names += [lnk, tgt]
    daemon.docker("run", "-d", "--name", tgt, "-e", "FOO=bar", "-e", "HOME=/x", "--expose", "80",
                  "--expose", "53/udp", bb_image, "sleep", "300")
    daemon.docker("run", "-d", "--name", lnk, "--link", f"{tgt}:al", "--link", f"{tgt}:al-2", bb_image,
                  "sleep", "300")
    ip = inspect(daemon, tgt)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    env = daemon.docker("exec", lnk, "env").stdout.splitlines()
    for want in (f"AL_NAME=/{lnk}/al", f"AL_PORT=tcp://{ip}:80", f"AL_PORT_80_TCP=tcp://{ip}:80",
                 f"AL_PORT_80_TCP_ADDR={ip}", "AL_PORT_80_TCP_PORT=80", "AL_PORT_80_TCP_PROTO=tcp",
                 f"AL_PORT_53_UDP=udp://{ip}:53", f"AL_PORT_53_UDP_ADDR={ip}", "AL_PORT_53_UDP_PORT=53",
                 "AL_PORT_53_UDP_PROTO=udp", "AL_ENV_FOO=bar", f"AL_2_NAME=/{lnk}/al-2", "AL_2_ENV_FOO=bar"):
        assert want in env
    assert not [e for e in env if e.startswith(("AL_ENV_HOME=", "AL_ENV_PATH="))]
    got = inspect(daemon, lnk)
    assert got["HostConfig"]["Links"] == [f"/{tgt}:/{lnk}/al", f"/{tgt}:/{lnk}/al-2"]
    assert got["NetworkSettings"]["Networks"]["bridge"]["Links"] is None   # as dockerd: bridge links are not here

    # link=1 on a container's own name: dockerd's words (its 500 a 409 here), and nothing is removed
    status, body = daemon.api("DELETE", f"/containers/{tgt}?link=1")
    assert (status, json.loads(body)["message"]) == (
        409, "Conflict, cannot remove the default link name of the container")
    # the docker CLI's path: /containers/linking/alias
    status, body = daemon.api("DELETE", f"/containers/{lnk}/al?link=1")
    assert status == 204, body
    assert inspect(daemon, lnk)["HostConfig"]["Links"] == [f"/{tgt}:/{lnk}/al-2"]
    hosts = [line.split() for line in daemon.docker("exec", lnk, "cat", "/etc/hosts").stdout.splitlines()]
    assert [h[1] for h in hosts if h and h[0] == ip] == ["al-2"]     # gone from the running container's hosts
    status, body = daemon.api("DELETE", f"/containers/{lnk}/al?link=1")
    assert (status, json.loads(body)["message"]) == (404, f"No such container: {lnk}/al")
    # docker-py's: the link name keeps its leading slash
    daemon.client().api.remove_container(f"/{lnk}/al-2", link=True)
    assert inspect(daemon, lnk)["HostConfig"]["Links"] is None
    assert inspect(daemon, tgt)["State"]["Running"] and inspect(daemon, lnk)["State"]["Running"]

    # a link to a container that does not exist: refused at create; to one not running: at start
    gone, early = uname("gone"), uname("early")
    status, body = daemon.api("POST", f"/containers/create?name={early}",
                              {"Image": bb_image, "Cmd": ["true"], "HostConfig": {"Links": [f"{gone}:x"]}})
    assert (status, json.loads(body)["message"]) == (
        400, f"could not get container for {gone}: No such container: {gone}")
    daemon.docker("stop", "-t", "0", tgt)
    names.append(early)
    daemon.docker("create", "--name", early, "--link", f"{tgt}:x", bb_image, "true")
    status, body = daemon.api("POST", f"/containers/{early}/start")
    assert (status, json.loads(body)["message"]) == (
        500, f"Cannot link to a non running container: /{tgt} AS /{early}/x")


def test_links_on_a_user_network_resolve_only_from_the_linking_container(daemon, bb_image, names):
    n, tgt, lnk, other = uname("int"), uname("tgt"), uname("lnk"), uname("o")
    names += [lnk, tgt, other]
    daemon.docker("network", "create", "--internal", "--subnet", free_subnet(), n)   # nothing forwarded
    try:
        daemon.docker("run", "-d", "--name", tgt, "--network", n, bb_image, "sleep", "300")
        daemon.docker("run", "-d", "--name", lnk, "--network", n, "--link", f"{tgt}:db", bb_image, "sleep", "300")
        daemon.docker("run", "-d", "--name", other, "--network", n, bb_image, "sleep", "300")
        got = inspect(daemon, lnk)
        assert got["NetworkSettings"]["Networks"][n]["Links"] == [f"{tgt}:db"]
        assert got["HostConfig"]["Links"] is None    # dockerd registers no legacy link on a user network
        ip = inspect(daemon, tgt)["NetworkSettings"]["Networks"][n]["IPAddress"]
        assert ip in daemon.docker("exec", lnk, "nslookup", "db").stdout
        r = daemon.docker("exec", other, "nslookup", "db", check=False)
        assert r.returncode != 0 and ip not in r.stdout
    finally:
        daemon.docker("rm", "-f", *names, check=False)
        daemon.docker("network", "rm", n, check=False)


# -- C: endpoint settings, IPAM auxiliary addresses ----------------------------------------

def test_endpoint_settings_read_back_as_given_before_start(daemon, bb_image, net, names):
    n, c, other = net["name"], uname("c"), uname("o")
    names += [c, other]
    daemon.docker("create", "--name", other, "--network", n, bb_image, "sleep", "300")
    ep = inspect(daemon, other)["NetworkSettings"]["Networks"][n]
    assert (ep["DriverOpts"], ep["Links"], ep["MacAddress"]) == (None, None, "")   # nothing given: null
    # the docker CLI's connect sends empty ones: they read back empty, not null, as on dockerd
    daemon.docker("network", "connect", n, other)
    daemon.docker("network", "disconnect", n, other)
    daemon.docker("network", "connect", n, other)
    ep = inspect(daemon, other)["NetworkSettings"]["Networks"][n]
    assert (ep["IPAMConfig"], ep["Aliases"], ep["DriverOpts"]) == ({}, [], {})
    daemon.docker("create", "--name", c, bb_image, "sleep", "300")
    mac = "02:42:ac:11:00:99"
    status, body = daemon.api("POST", f"/networks/{n}/connect", {"Container": c, "EndpointConfig": {
        "MacAddress": mac, "DriverOpts": {"com.example.opt": "1"}, "Links": [f"{other}:buddy"]}})
    assert status == 200, body
    ep = inspect(daemon, c)["NetworkSettings"]["Networks"][n]
    assert (ep["MacAddress"], ep["DriverOpts"], ep["Links"]) == (mac, {"com.example.opt": "1"}, [f"{other}:buddy"])
    daemon.docker("start", c)
    ep = inspect(daemon, c)["NetworkSettings"]["Networks"][n]
    assert (ep["MacAddress"], ep["DriverOpts"], ep["Links"]) == (mac, {"com.example.opt": "1"}, [f"{other}:buddy"])
    assert mac in daemon.docker("exec", c, "ip", "link").stdout


def test_ipam_auxiliary_addresses_are_kept_and_never_given_out(daemon, bb_image, names):
    n, c, c2 = uname("aux"), uname("c"), uname("c")
    names += [c, c2]
    net = ipaddress.ip_network(free_subnet())
    host = [str(net.network_address + i) for i in range(6)]
    ipam = {"Subnet": str(net), "IPRange": f"{host[0]}/29", "Gateway": host[1],
            "AuxiliaryAddresses": {"h1": host[2], "h2": host[3]}}
    status, body = daemon.api("POST", "/networks/create", {"Name": n, "IPAM": {"Config": [ipam]}})
    assert status == 201, body
    try:
        status, body = daemon.api("GET", f"/networks/{n}")
        assert json.loads(body)["IPAM"]["Config"] == [ipam]
        daemon.docker("run", "-d", "--name", c, "--network", n, bb_image, "sleep", "300")
        assert inspect(daemon, c)["NetworkSettings"]["Networks"][n]["IPAddress"] == host[4]
        r = daemon.docker("run", "-d", "--name", c2, "--network", n, "--ip", host[2], bb_image, "sleep", "300",
                          check=False)
        assert r.returncode != 0 and f"Address already in use: {host[2]}" in r.stderr
    finally:
        daemon.docker("rm", "-f", *names, check=False)
        daemon.docker("network", "rm", n, check=False)


def test_host_network_and_shared_namespaces_answer_as_dockerd(daemon, bb_image, net, names):
    n, h, b, s = net["name"], uname("h"), uname("b"), uname("s")
    names += [s, h, b]
    daemon.docker("run", "-d", "--name", h, "--network", "host", bb_image, "sleep", "300")
    daemon.docker("run", "-d", "--name", b, bb_image, "sleep", "300")
    daemon.docker("create", "--name", s, "--network", f"container:{b}", bb_image, "sleep", "300")
    cases = [("disconnect", "host", h, 400, "container cannot be disconnected from host network or connected to "
                                            "host network"),
             ("connect", "host", h, 403, f"endpoint with name {h} already exists in network host"),
             ("connect", n, h, 400, "container sharing network namespace with another container or host cannot "
                                    "be connected to any other network"),
             ("connect", n, s, 400, "container sharing network namespace with another container or host cannot "
                                    "be connected to any other network"),
             ("connect", "host", b, 400, "container cannot be disconnected from host network or connected to host "
                                         "network")]
    for verb, network, container, status, message in cases:
        got = daemon.api("POST", f"/networks/{network}/{verb}", {"Container": container})
        assert (got[0], json.loads(got[1])["message"]) == (status, message), (verb, network, container)

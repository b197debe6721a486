"""`--link-local-ip` at run and connect (EndpointSettings.IPAMConfig.LinkLocalIPs: added to the
container's interface, /16 and /64 as libnetwork, shown in inspect as given; moby's refusal of a bad
one), and the embedded resolver's PTR answers "<container name>.<network name>" as moby's
Network.ResolveIP, for both families."""
from __future__ import annotations

import json

from test_ipv6_networks import v6_subnet
from test_networks import free_subnet, uname


def _settings(daemon, name: str) -> dict:
    return json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Networks"]


def test_link_local_ips_at_run_and_connect(daemon, bb_image):
    net, other, c = uname("ll"), uname("ll2"), uname("c")
    daemon.docker("network", "create", "--subnet", free_subnet(), net)
    daemon.docker("network", "create", "--subnet", free_subnet(), other)
    try:
        daemon.docker("run", "-d", "--name", c, "--network", net, "--link-local-ip", "169.254.10.10",
                      "--link-local-ip", "fe80::a:10", bb_image, "sleep", "300")
        addrs = daemon.docker("exec", c, "ip", "addr", "show", "eth0").stdout
        assert "inet 169.254.10.10/16" in addrs and "inet6 fe80::a:10/64" in addrs, addrs
        assert _settings(daemon, c)[net]["IPAMConfig"]["LinkLocalIPs"] == ["169.254.10.10", "fe80::a:10"]
        daemon.docker("network", "connect", "--link-local-ip", "169.254.20.20", other, c)
        addrs = daemon.docker("exec", c, "ip", "addr", "show", "eth1").stdout
        assert "inet 169.254.20.20/16" in addrs, addrs
        assert _settings(daemon, c)[other]["IPAMConfig"]["LinkLocalIPs"] == ["169.254.20.20"]
        # a second container on the network reaches the link-local address
        r = daemon.docker("run", "--rm", "--network", net, "--link-local-ip", "169.254.10.11", bb_image,
                          "ping", "-c1", "-W2", "169.254.10.10")
        assert " 0% packet loss" in r.stdout
        # moby's EndpointIPAMConfig.Validate: 400, nothing made
        before = daemon.docker("ps", "-aq").stdout.split()
        status, body = daemon.api("POST", "/containers/create", {
            "Image": bb_image, "Cmd": ["true"], "HostConfig": {"NetworkMode": net},
            "NetworkingConfig": {"EndpointsConfig": {net: {"IPAMConfig": {"LinkLocalIPs": ["nope"]}}}}})
        assert status == 400 and f"invalid config for network {net}: invalid link-local IP address: nope".encode() \
            in body, body
        assert daemon.docker("ps", "-aq").stdout.split() == before
        status, body = daemon.api("POST", f"/networks/{net}/connect", {
            "Container": c, "EndpointConfig": {"IPAMConfig": {"LinkLocalIPs": ["0.0.0.0"]}}})
        assert status == 400 and b"invalid link-local IP address: 0.0.0.0" in body, body
    finally:
        daemon.docker("rm", "-f", c, check=False)
        daemon.docker("network", "rm", net, other)


def test_ptr_answers_name_dot_network_on_both_families(daemon, bb_image):
    net, a = uname("ptr"), uname("a")
    daemon.docker("network", "create", "--ipv6", "--subnet", free_subnet(), "--subnet", v6_subnet(), net)
    try:
        daemon.docker("run", "-d", "--name", a, "--network", net, "--network-alias", "alias-a", bb_image,
                      "sleep", "300")
        ep = _settings(daemon, a)[net]
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "sh", "-c",
                          f"nslookup {ep['IPAddress']}; nslookup {ep['GlobalIPv6Address']}")
        out = r.stdout
        assert out.count(f"name = {a}.{net}") == 2, out
        assert "alias-a" not in out
    finally:
        daemon.docker("rm", "-f", a, check=False)
        daemon.docker("network", "rm", net)

"""The embedded DNS server at 127.0.0.11, through the docker CLI against dockyardd: with
`--dns` on a user network container names still resolve and the rest goes to that server
(a fake resolver on the host's loopback, as in test_dns_forward); TCP, EDNS and truncation
inside a container's namespace; port 53 stays the container's; the listener comes back after
a daemon restart and goes with the container."""
from __future__ import annotations

import json
import os
import time

import dns.flags
import dns.message
import dns.query
import pytest

from dockyard.network import netns
from test_dns_forward import BIG, FakeUpstream
from test_networks import free_subnet, uname


@pytest.fixture
def upstream():
    up = FakeUpstream()
    yield up
    up.close()


@pytest.fixture
def net(daemon, bb_image):
    """A user network with a container `db-XXXX` (alias `data-XXXX`)."""
    name, db, alias = uname("dn"), uname("db"), uname("data")
    daemon.docker("network", "create", "--subnet", free_subnet(), name)
    daemon.docker("run", "-d", "--network", name, "--network-alias", alias, "--name", db, bb_image,
                  "sleep", "300")
    ip = json.loads(daemon.docker("inspect", db).stdout)[0]["NetworkSettings"]["Networks"][name]["IPAddress"]
    yield {"net": name, "db": db, "alias": alias, "ip": ip}
    daemon.docker("rm", "-f", db, check=False)
    daemon.docker("network", "rm", name, check=False)


def test_names_still_resolve_with_dns_and_the_rest_is_forwarded_to_it(daemon, bb_image, net, upstream):
    r = daemon.docker("run", "--rm", "--network", net["net"], "--dns", upstream.ip, bb_image, "sh", "-c",
                      f"cat /etc/resolv.conf; nslookup {net['db']}; nslookup {net['alias']}; "
                      "nslookup ext.test; nslookup -type=AAAA " + net["db"])
    out = r.stdout
    nameservers = [line.split()[1] for line in out.splitlines() if line.startswith("nameserver")]
    assert nameservers == ["127.0.0.11"]     # --dns is where it forwards, not what the container asks
    assert out.count(net["ip"]) >= 2 and "192.0.2.7" in out
    asked = [name for _, name in upstream.asked]
    assert "ext.test." in asked
    assert not [n for n in asked if n.startswith((net["db"], net["alias"]))]   # answered, not forwarded


def test_tcp_edns_and_truncation_inside_the_container(daemon, bb_image, net, upstream):
    name = uname("q")
    daemon.docker("run", "-d", "--name", name, "--network", net["net"], "--dns", upstream.ip, bb_image,
                  "sleep", "300")
    try:
        sandbox = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["SandboxKey"]

        def ask():   # in the container's namespace, as its processes ask
            big = dns.message.make_query("big.test", "TXT")
            return (dns.query.udp(big, "127.0.0.11", timeout=5),
                    dns.query.tcp(big, "127.0.0.11", timeout=5),
                    dns.query.udp(dns.message.make_query("big.test", "TXT", use_edns=0, payload=4096),
                                  "127.0.0.11", timeout=5),
                    dns.query.tcp(dns.message.make_query(net["db"], "A"), "127.0.0.11", timeout=5))

        cut, whole, edns, local = netns.run_in(sandbox, ask)
        assert cut.flags & dns.flags.TC
        assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == len(BIG) > 0
        assert len(whole.to_wire()) > 512
        assert not edns.flags & dns.flags.TC and len(edns.answer[0]) == len(BIG)
        assert [r.to_text() for r in local.answer[0]] == [net["ip"]]
        assert ("tcp", "big.test.") in upstream.asked
    finally:
        daemon.docker("rm", "-f", name)


def daemon_sockets(daemon) -> int:
    fd_dir = f"/proc/{daemon.proc.pid}/fd"
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            n += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
        except FileNotFoundError:   # closed meanwhile
            pass
    return n


def test_port_53_stays_the_containers_and_the_listener_follows_restart_and_rm(daemon, bb_image, net):
    name = uname("own53")
    before = daemon_sockets(daemon)
    # its own server on TCP 53 of every address (Docker leaves 53 free: the listener is on other ports)
    daemon.docker("run", "-d", "--name", name, "--network", net["net"], bb_image, "httpd", "-f", "-p", "53")
    try:
        r = daemon.docker("exec", name, "nslookup", net["db"])
        assert net["ip"] in r.stdout
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
        daemon.restart()   # re-adopted: a new listener in its namespace, its DNAT rules replaced
        r = daemon.docker("exec", name, "nslookup", net["alias"])
        assert net["ip"] in r.stdout
        before = daemon_sockets(daemon)
    finally:
        daemon.docker("rm", "-f", name)
    deadline = time.monotonic() + 10   # its UDP and TCP sockets go with it (API connections come and go)
    while daemon_sockets(daemon) > before - 2:
        assert time.monotonic() < deadline, "the container's DNS sockets stayed open in the daemon"
        time.sleep(0.1)

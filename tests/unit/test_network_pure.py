"""Pure logic of user networks: port specs, DNS messages, IPAM ranges, rulesets, `port` output."""
from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Network

import pytest

from dockyard.cli.port import mappings
from dockyard.errors import InvalidParameter
from dockyard.network import dns, firewall, ports
from dockyard.network.ipam import AddressPool


# -- ports ---------------------------------------------------------------------

def test_port_bindings_parse_docker_shapes():
    got = ports.parse({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                       "53/udp": [{"HostIp": "", "HostPort": ""}],
                       "443": [{"HostIp": "0.0.0.0", "HostPort": "9000-9010"}]}, {}, False)
    assert ports.Binding("tcp", 80, "127.0.0.1", 8080, 8080) in got
    assert ports.Binding("udp", 53, "", 0, 0) in got
    assert ports.Binding("tcp", 443, "", 9000, 9010) in got


def test_host_port_zero_is_one_picked_as_dockerd():
    """`-p 127.0.0.1:0:80` sends HostPort "0": dockerd publishes on a port it picks
    (go-connections parses 0); it was refused with 'must be 1-65535'."""
    got = ports.parse({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "0"}], "81/tcp": [{"HostPort": "0-0"}]},
                      {}, False)
    assert got == [ports.Binding("tcp", 80, "127.0.0.1", 0, 0), ports.Binding("tcp", 81, "", 0, 0)]


def test_publish_all_adds_only_unbound_exposed_ports():
    got = ports.parse({"80/tcp": [{"HostPort": "8080"}]}, {"80/tcp": {}, "81/tcp": {}, "82/udp": {}}, True)
    assert [(b.container_port, b.proto, b.host_port) for b in got] == [(80, "tcp", 8080), (81, "tcp", 0),
                                                                       (82, "udp", 0)]
    assert ports.parse(None, {"80/tcp": {}}, False) == []


@pytest.mark.parametrize("bindings", [
    {"0/tcp": [{}]}, {"70000/tcp": [{}]}, {"80/sctp": [{}]}, {"x/tcp": [{}]},
    {"80/tcp": [{"HostPort": "99999"}]}, {"80/tcp": [{"HostPort": "90-80"}]},
    {"80/tcp": [{"HostIp": "::1"}]}, {"80/tcp": [{"HostIp": "not-an-ip"}]},
])
def test_bad_port_specs_are_rejected(bindings):
    with pytest.raises(InvalidParameter):
        ports.parse(bindings, {}, False)


def test_nft_elements_go_to_the_map_of_their_bind():
    assert ports._element(("tcp", "127.0.0.1", 8080, "10.0.0.2", 80)) == (
        "byip", "127.0.0.1 . tcp . 8080 : 10.0.0.2 . 80")
    assert ports._element(("udp", "", 5353, "10.0.0.2", 53)) == ("any", "udp . 5353 : 10.0.0.2 . 53")
    assert ports._key(("tcp", "", 1, "x", 2)) == ("any", "tcp . 1")


# -- DNS -----------------------------------------------------------------------

def query(name: str, qtype: int, qid: int = 0x1234) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def answers(msg: bytes) -> tuple[int, int, list[bytes]]:
    qid, flags, _, ancount = struct.unpack_from("!HHHH", msg)
    i = dns.parse_question(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + msg[12:])[4]
    out = []
    for _ in range(ancount):
        _, rtype, _, _, rdlen = struct.unpack_from("!HHHIH", msg, i)
        out.append(msg[i + 12: i + 12 + rdlen])
        i += 12 + rdlen
    return qid, flags & 0xF, out


NAMES = {"db": ["10.1.0.2"], "web": ["10.1.0.3", "10.1.0.4"]}


def local(q: bytes):
    return dns.answer_locally(q, lambda: NAMES, lambda ip: {"10.1.0.2": "db"}.get(ip))


def test_a_records_for_names_on_the_network_case_insensitive():
    qid, rcode, ans = answers(local(query("DB", dns.QTYPE_A)))
    assert (qid, rcode) == (0x1234, 0) and ans == [socket.inet_aton("10.1.0.2")]
    assert answers(local(query("Web", dns.QTYPE_A)))[2] == [socket.inet_aton("10.1.0.3"),
                                                              socket.inet_aton("10.1.0.4")]


def test_aaaa_of_a_known_name_is_empty_and_unknown_names_are_forwarded():
    assert answers(local(query("db", dns.QTYPE_AAAA)))[2] == []
    assert local(query("example.org", dns.QTYPE_A)) is None
    assert local(b"\x00\x01garbage") is None


def test_ptr_for_container_addresses():
    _, _, ans = answers(local(query("2.0.1.10.in-addr.arpa", dns.QTYPE_PTR)))
    assert ans == [b"\x02db\x00"]
    assert local(query("9.0.1.10.in-addr.arpa", dns.QTYPE_PTR)) is None


def test_responses_are_never_parsed_as_questions():
    resp = local(query("db", dns.QTYPE_A))
    assert dns.parse_question(resp) is None


# -- IPAM ranges and rulesets ------------------------------------------------------

def test_ip_range_limits_automatic_picks_not_requests():
    pool = AddressPool("10.5.0.0/24", "10.5.0.1", [], "10.5.0.128/25")
    assert str(pool.allocate()) == "10.5.0.128"
    assert str(pool.allocate("10.5.0.7")) == "10.5.0.7"
    with pytest.raises(InvalidParameter):
        AddressPool("10.5.0.0/24", "10.5.0.1", [], "10.6.0.0/25")


def test_network_ruleset_internal_and_isolation():
    internal = firewall.network_ruleset("t", "br-x", IPv4Network("10.5.0.0/24"), True)
    assert "masquerade" not in internal and 'iifname "br-x" oifname != "br-x" drop' in internal
    normal = firewall.network_ruleset("t", "br-x", IPv4Network("10.5.0.0/24"), False, ("dy0", "br-*"))
    assert 'ip saddr 10.5.0.0/24 oifname != "br-x" masquerade' in normal
    assert 'iifname "br-x" oifname "br-*" oifname != "br-x" drop' in normal
    assert normal.startswith("table ip t\ndelete table ip t\n")   # atomic replace


def test_port_command_output():
    p = {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "9/udp": None,
         "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}]}
    assert mappings(p, None) == ["80/tcp -> 127.0.0.1:8080", "443/tcp -> 0.0.0.0:32768"]
    assert mappings(p, "80") == ["127.0.0.1:8080"]
    assert mappings(p, "9/udp") == []


def test_run_network_flags_make_dockers_create_body():
    from dockyard.cli import runconfig
    from dockyard.cli.run import RUN
    opts, args = RUN.parse(["--network", "app", "--network-alias", "db", "--ip", "10.5.0.9", "--mac-address",
                            "02:42:ac:11:00:99", "--expose", "7000-7001/udp", "--dns-search", "corp",
                            "--dns-option", "ndots:2", "--domainname", "ex.test", "--link", "a:b", "img"],
                           "dockyard run")
    b = runconfig.build_create_body(opts, args, {})
    ep = b["NetworkingConfig"]["EndpointsConfig"]["app"]
    assert ep["Aliases"] == ["db"] and ep["IPAMConfig"] == {"IPv4Address": "10.5.0.9"}
    assert ep["MacAddress"] == "02:42:ac:11:00:99" and b["HostConfig"]["NetworkMode"] == "app"
    assert {"7000/udp", "7001/udp"} <= set(b["ExposedPorts"])
    hc = b["HostConfig"]
    assert hc["DnsSearch"] == ["corp"] and hc["DnsOptions"] == ["ndots:2"] and hc["Links"] == ["a:b"]
    assert b["Domainname"] == "ex.test"


# -- planning a user network -----------------------------------------------------

def _plan(name="app", taken=(), **body):
    from dockyard.network import usernets
    return usernets.plan(name, taken=[IPv4Network(t) for t in taken],
                         pick_subnet=lambda: IPv4Network("172.30.0.0/16"), **body)


def test_plan_defaults_and_explicit_pool():
    p = _plan()
    assert str(p.subnet) == "172.30.0.0/16" and str(p.gateway) == "172.30.0.1"
    assert p.bridge == "br-" + p.id[:12] and p.config["EnableICC"] is True
    p = _plan(ipam={"Config": [{"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.254", "IPRange": "10.7.0.128/25"}]},
              options={"com.docker.network.bridge.name": "mybr0", "com.docker.network.bridge.enable_icc": "false"},
              internal=True, labels={"a": "b"})
    assert p.bridge == "mybr0" and p.config["EnableICC"] is False and p.config["Internal"] is True
    assert p.config["IPAM"]["Config"] == [{"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.254",
                                           "IPRange": "10.7.0.128/25"}]


@pytest.mark.parametrize("kwargs,error", [
    ({"ipam": {"Config": [{"Subnet": "10.1.0.0/24"}]}, "taken": ["10.1.0.0/16"]}, "Pool overlaps"),
    ({"ipam": {"Config": [{"Subnet": "10.1.0.5/24"}]}}, "host bits"),
    ({"ipam": {"Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.2.0.1"}]}}, "gateway"),
    ({"ipam": {"Config": [{"Gateway": "10.2.0.1"}]}}, "need a subnet"),
    ({"ipam": {"Config": [{"Subnet": "10.1.0.0/24", "IPRange": "10.9.0.0/25"}]}}, "not within"),
    ({"enable_ipv6": True}, "IPv6"),
    ({"options": {"com.docker.network.bridge.name": "way-too-long-bridge-name"}}, "invalid bridge name"),
])
def test_plan_refusals(kwargs, error):
    from dockyard.errors import DockyardError
    taken = kwargs.pop("taken", ())
    with pytest.raises(DockyardError, match=error):
        _plan(taken=taken, **kwargs)
    with pytest.raises(DockyardError, match="pre-defined"):
        _plan("host")

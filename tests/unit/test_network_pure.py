"""Pure logic of user networks: port specs, DNS answers, IPAM ranges, rulesets, `port` output."""
from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import dns.flags
import dns.message
import dns.rcode
import dns.reversename
import pytest

from dockyard.cli.port import mappings
from dockyard.errors import InvalidParameter
from dockyard.network import firewall, ports, resolver
from dockyard.network.ipam import AddressPool


# -- ports ---------------------------------------------------------------------

def test_port_bindings_parse_docker_shapes():
    got = ports.parse({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                       "53/udp": [{"HostIp": "", "HostPort": ""}],
                       "443": [{"HostIp": "0.0.0.0", "HostPort": "9000-9010"}]}, {}, False)
    assert ports.Binding("tcp", 80, "127.0.0.1", 8080, 8080) in got
    assert ports.Binding("udp", 53, "", 0, 0) in got
    assert ports.Binding("tcp", 443, "0.0.0.0", 9000, 9010) in got   # IPv4 only, as Docker
    got = ports.parse({"80/tcp": [{"HostIp": "::1", "HostPort": "8081"}, {"HostIp": "[::]", "HostPort": "8082"}]},
                      {}, False)
    assert [b.host_ip for b in got] == ["::1", "::"]


def test_a_bind_without_an_address_is_on_both_families():
    assert ports.families("") == ["", "::"]
    assert ports.families("0.0.0.0") == [""] and ports.families("::") == ["::"]
    assert ports.families("127.0.0.1") == ["127.0.0.1"] and ports.families("::1") == ["::1"]
    # the proxy's binds are no DNAT elements
    ports.add_elements("never-used", [("tcp", "::", 8080, "10.0.0.2", 80)])


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
    {"80/tcp": [{"HostIp": "not-an-ip"}]},
])
def test_bad_port_specs_are_rejected(bindings):
    with pytest.raises(InvalidParameter):
        ports.parse(bindings, {}, False)


def test_nft_elements_go_to_the_map_of_their_bind():
    assert ports._element(("tcp", "127.0.0.1", 8080, "10.0.0.2", 80)) == (
        "byip", "127.0.0.1 . tcp . 8080 : 10.0.0.2 . 80")
    assert ports._element(("udp", "", 5353, "10.0.0.2", 53)) == ("any", "udp . 5353 : 10.0.0.2 . 53")
    assert ports._key(("tcp", "", 1, "x", 2)) == ("any", "tcp . 1")


# -- DNS (the embedded resolver's answers, dnspython's wire format) ----------------

def query(name: str, qtype: str, qid: int = 0x1234, **kw) -> dns.message.Message:
    q = dns.message.make_query(name, qtype, **kw)
    q.id = qid
    return q


NAMES = {"db": ["10.1.0.2", "fd00:1::2"], "web": ["10.1.0.3", "10.1.0.4"]}


def local(q: dns.message.Message):
    return resolver.answer_locally(q, lambda: NAMES, {"10.1.0.2": "db", "fd00:1::2": "db"}.get)


def addresses(resp: dns.message.Message) -> list[str]:
    return [r.to_text() for rrset in resp.answer for r in rrset]


def test_a_and_aaaa_records_for_names_on_the_networks_case_insensitive():
    resp = local(query("DB", "A"))
    assert resp.id == 0x1234 and resp.rcode() == dns.rcode.NOERROR and addresses(resp) == ["10.1.0.2"]
    assert resp.flags & dns.flags.QR and resp.flags & dns.flags.AA and resp.flags & dns.flags.RA
    assert addresses(local(query("db", "AAAA"))) == ["fd00:1::2"]
    assert sorted(addresses(local(query("Web.", "A")))) == ["10.1.0.3", "10.1.0.4"]


def test_a_known_name_without_records_of_the_type_is_nodata_and_unknown_names_are_forwarded():
    resp = local(query("web", "AAAA"))
    assert resp.rcode() == dns.rcode.NOERROR and resp.answer == []
    assert local(query("example.org", "A")) is None


def test_ptr_for_container_addresses_both_families():
    assert addresses(local(query("2.0.1.10.in-addr.arpa", "PTR"))) == ["db."]
    v6 = dns.reversename.from_address("fd00:1::2").to_text()
    assert addresses(local(query(v6, "PTR"))) == ["db."]
    assert local(query("9.0.1.10.in-addr.arpa", "PTR")) is None


def test_responses_and_garbage_are_never_answered():
    resp = local(query("db", "A"))
    assert resolver.parse_query(resp.to_wire()) is None
    assert resolver.parse_query(b"\x00\x01garbage") is None
    assert resolver.parse_query(query("db", "A").to_wire()).question[0].name.to_text() == "db."


def test_answers_too_big_for_udp_are_truncated_and_edns_raises_the_limit():
    many = {"many": [f"10.2.{i // 250}.{i % 250 + 1}" for i in range(60)]}
    plain = query("many", "A")
    resp = resolver.answer_locally(plain, lambda: many, lambda ip: None)
    assert len(resp.answer[0]) == 60
    small = resolver.wire(resp, resolver.max_udp(plain))
    assert len(small) <= 512 and dns.message.from_wire(small).flags & dns.flags.TC
    whole = dns.message.from_wire(resolver.wire(resp))   # TCP
    assert len(whole.answer[0]) == 60 and not whole.flags & dns.flags.TC
    edns = query("many", "A", use_edns=0, payload=4096)
    assert resolver.max_udp(edns) == 4096
    resp = resolver.answer_locally(edns, lambda: many, lambda ip: None)
    big = dns.message.from_wire(resolver.wire(resp, resolver.max_udp(edns)))
    assert len(big.answer[0]) == 60 and big.edns == 0


def test_upstreams_are_the_containers_dns_else_the_hosts_of_both_families(monkeypatch):
    assert resolver.upstream_servers(["127.0.0.1", "::1", "bogus"]) == ["127.0.0.1", "::1"]
    monkeypatch.setattr(resolver, "read_host_resolv_conf",
                        lambda: "nameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver 2001:db8::1\n")
    assert resolver.upstream_servers([]) == ["127.0.0.53", "fe80::1", "2001:db8::1"]


def test_the_dnat_rules_send_port_53_to_the_listeners():
    rules = resolver.ruleset(40001, 40002)
    assert "ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001" in rules
    assert "ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:40002" in rules
    assert "delete" not in rules   # a fresh namespace: nothing to delete (that would cost ~10 ms)
    assert resolver.ruleset(1, 2, replace=True).startswith("table ip dockyard-dns\ndelete table ip dockyard-dns\n")


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
    v6 = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}]}
    assert mappings(v6, None) == ["80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
    assert mappings(v6, "80") == ["0.0.0.0:8080", "[::]:8080"]


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
    ({"enable_ipv6": True, "ipam": {"Config": [{"Subnet": "fd00:1::/64"}]}, "taken6": ["fd00::/16"]},
     "Pool overlaps"),
    ({"enable_ipv6": True, "ipam": {"Config": [{"Subnet": "fd00:1::/64", "Gateway": "fd00:2::1"}]}}, "gateway"),
    ({"ipam": {"Config": [{"Subnet": "fd00:1::/64"}]}}, "--ipv6"),
    ({"options": {"com.docker.network.bridge.name": "way-too-long-bridge-name"}}, "invalid bridge name"),
])
def test_plan_refusals(kwargs, error):
    from dockyard.errors import DockyardError
    taken = kwargs.pop("taken", ())
    if "taken6" in kwargs:
        kwargs["taken6"] = [IPv6Network(n) for n in kwargs["taken6"]]
    with pytest.raises(DockyardError, match=error):
        _plan(taken=taken, **kwargs)
    with pytest.raises(DockyardError, match="pre-defined"):
        _plan("host")


def test_bridge_options_read_from_the_network_config():
    from dockyard.network import usernets
    cfg = {"Options": {usernets.MTU_OPT: "1400", usernets.MASQUERADE_OPT: "false",
                       usernets.HOST_BINDING_OPT: "127.0.0.1"}}
    assert (usernets.mtu(cfg), usernets.masquerade(cfg), usernets.host_binding_ipv4(cfg)) == (1400, False, "127.0.0.1")
    assert (usernets.mtu({}), usernets.masquerade({}), usernets.host_binding_ipv4({})) == (None, True, "")
    assert usernets.host_binding_ipv4({"Options": {usernets.HOST_BINDING_OPT: "0.0.0.0"}}) == ""
    rules = firewall.network_ruleset("t", "br-x", IPv4Network("10.5.0.0/24"), False, masquerade=False)
    assert 'comment "dockyard:br-x"' not in rules and "ct status dnat masquerade" in rules
    assert 'comment "dockyard:br-x"' in firewall.network_ruleset("t", "br-x", IPv4Network("10.5.0.0/24"), False)


def test_ipv6_networks_get_their_pool_or_a_ula_one():
    from dockyard.network import usernets
    p = _plan(enable_ipv6=True, ipam={"Config": [{"Subnet": "10.7.0.0/24"}, {"Subnet": "fd00:7::/64"}]})
    assert p.config["EnableIPv6"] is True
    assert p.config["IPAM"]["Config"][1] == {"Subnet": "fd00:7::/64", "Gateway": "fd00:7::1"}
    assert usernets.ipv6(p.config) == (IPv6Network("fd00:7::/64"), IPv6Network("fd00:7::1/128")[0])
    ula = usernets.ipv6(_plan(enable_ipv6=True).config)[0]
    assert ula.prefixlen == 64 and ula.subnet_of(IPv6Network("fd00::/8"))
    assert usernets.ipv6(_plan().config) is None
    rules = firewall.network_ruleset("t", "br-x", IPv6Network("fd00:7::/64"), False)
    assert rules.startswith("table ip6 t\n") and 'ip6 saddr fd00:7::/64 oifname != "br-x" masquerade' in rules

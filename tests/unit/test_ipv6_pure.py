"""Pure parts of IPv6-only networks, IPv6 DNAT, --link-local-ip and PTR names (no host state)."""
from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network, IPv6Interface

import pytest

from dockyard.daemon.networking import link_local_error
from dockyard.errors import InvalidParameter
from dockyard.network import links, ports, usernets
from dockyard.network.plumbing import link_local_interfaces


def plan(**kw):
    return usernets.plan("n", taken=[IPv4Network("172.30.0.0/16")],
                         pick_subnet=lambda: IPv4Network("172.31.0.0/16"), **kw)


def test_an_ipv6_only_plan_has_no_ipv4():
    p = plan(enable_ipv6=True, enable_ipv4=False, ipam={"Config": [{"Subnet": "fd00:1::/64"}]})
    assert p.subnet is None and p.gateway is None
    assert p.config["EnableIPv4"] is False and not usernets.ipv4_enabled(p.config)
    assert p.config["IPAM"]["Config"] == [{"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"}]
    assert usernets.ipv4_enabled(plan().config)   # the default, and networks made before the field


def test_neither_family_and_the_driver_opt():
    with pytest.raises(InvalidParameter, match="^IPv4 or IPv6 must be enabled$"):
        plan(enable_ipv4=False)
    p = plan(enable_ipv6=True, options={usernets.ENABLE_IPV4_OPT: "false"})
    assert p.subnet is None and p.config["Options"] == {usernets.ENABLE_IPV4_OPT: "false"}
    p = plan(enable_ipv6=True, enable_ipv4=True, options={usernets.ENABLE_IPV4_OPT: "false"})
    assert p.subnet is not None and p.config["Options"] == {}   # the field wins, the option goes
    with pytest.raises(InvalidParameter, match='driver-opt "com.docker.network.enable_ipv4" is not a valid bool'):
        plan(enable_ipv6=True, options={usernets.ENABLE_IPV4_OPT: "maybe"})


def test_an_ipv4_pool_of_an_ipv6_only_network_is_kept_not_reserved():
    # 172.30.0.0/16 is taken: without IPv4 it does not count as an overlap
    p = plan(enable_ipv6=True, enable_ipv4=False, ipam={"Config": [{"Subnet": "172.30.0.0/24"}]})
    assert p.subnet is None and p.config["IPAM"]["Config"][0] == {"Subnet": "172.30.0.0/24"}
    assert p.config["IPAM"]["Config"][1]["Subnet"].startswith("fd")


def test_rows_are_dnat_of_their_family_and_relayed_otherwise():
    assert ports.target_for("", "10.0.0.2", "fd00::2") == "10.0.0.2"
    assert ports.target_for("::", "10.0.0.2", "fd00::2") == "fd00::2"
    assert ports.target_for("::", "10.0.0.2", None) == "10.0.0.2"         # IPv4-only container
    assert ports.target_for("127.0.0.1", None, "fd00::2") == "fd00::2"    # IPv6-only container
    v6 = ("tcp", "::", 8080, "fd00::2", 80)
    assert ports.dnat(v6) and ports.relayed(v6)                          # DNAT, the proxy for ::1
    assert not ports.dnat(("tcp", "::1", 8080, "fd00::2", 80))
    assert not ports.dnat(("tcp", "::", 8080, "10.0.0.2", 80)) and ports.relayed(("tcp", "::", 8080, "10.0.0.2", 80))
    assert ports.dnat(("tcp", "", 8080, "10.0.0.2", 80)) and not ports.relayed(("tcp", "", 8080, "10.0.0.2", 80))
    assert not ports.dnat(("tcp", "", 8080, "fd00::2", 80)) and ports.relayed(("tcp", "", 8080, "fd00::2", 80))
    assert ports._element(v6) == ("any", "tcp . 8080 : fd00::2 . 80")
    assert ports._element(("udp", "fd00::9", 53, "fd00::2", 53)) == ("byip", "fd00::9 . udp . 53 : fd00::2 . 53")
    rules = ports.ruleset("t")
    assert "table ip6 t {" in rules and "ip6 daddr != ::1 fib daddr type local jump pub" in rules
    assert "table ip t {" in rules


def test_link_local_addresses_and_their_validation():
    assert link_local_interfaces(["169.254.1.2", "fe80::7"]) == [IPv4Interface("169.254.1.2/16"),
                                                                 IPv6Interface("fe80::7/64")]
    assert link_local_error({"IPAMConfig": {"LinkLocalIPs": ["169.254.1.2", "fe80::7"]}}) is None
    assert link_local_error({}) is None
    assert link_local_error({"IPAMConfig": {"LinkLocalIPs": ["x"]}}) == "invalid link-local IP address: x"
    assert link_local_error({"IPAMConfig": {"LinkLocalIPs": ["::"]}}) == "invalid link-local IP address: ::"
    assert link_local_error({"IPAMConfig": {"LinkLocalIPs": ["fe80::1%eth0"]}}) is not None   # no zone in Go


def test_a_bridge_without_ipv4_has_a_stable_mac():
    assert links.stable_mac("br-abc") == links.stable_mac("br-abc") != links.stable_mac("br-abd")
    assert links.stable_mac("br-abc").startswith("02:42:")

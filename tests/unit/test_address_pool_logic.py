"""dockerd's default address pools: parsing, dockerd's refusals, and the lazy
choice of the first free subnet (network/subnets.py, dockyardd's flag)."""
from __future__ import annotations

import itertools
import json
from ipaddress import ip_network as net

import pytest

from dockyard import dockyardd
from dockyard.errors import InvalidParameter
from dockyard.network import subnets, usernets
from dockyard.network.subnets import Pool, PoolError


def test_the_flag_parses_as_pools_opt():
    assert subnets.parse_flag("base=10.10.0.0/16,size=24") == Pool(net("10.10.0.0/16"), 24)
    assert subnets.parse_flag("SIZE=64,Base=fd00:1::/48") == Pool(net("fd00:1::/48"), 64)
    # host bits are masked as moby's splitByIPFamily does
    assert subnets.parse_flag("base=10.10.3.4/16,size=24").base == net("10.10.0.0/16")


@pytest.mark.parametrize("text, words", [
    ("base=10.0.0.0/16,size", "invalid field 'size' must be a key=value pair"),
    ("base=10.0.0.0/16,size=24,scope=local", "unexpected key 'scope' in 'scope=local'"),
    ("base=10.0.0.0/16,size=x", 'invalid size value: "base=10.0.0.0/16,size=x" (must be integer)'),
    ("base=10.0.0.0,size=24", "invalid base prefix \"10.0.0.0\": no '/'"),
    ("base=10.0.0.0/33,size=24", 'invalid base prefix "10.0.0.0/33"'),
])
def test_bad_flags_are_refused_with_dockerds_words(text, words):
    with pytest.raises(PoolError, match=None) as e:
        subnets.parse_flag(text)
    assert words in str(e.value)


@pytest.mark.parametrize("values, words", [
    (["base=10.0.0.0/16,size=8"],
     "network at index 0 (&{10.0.0.0/16 8}) has a smaller prefix (/16) than the target size of that pool (/8)"),
    (["base=10.0.0.0/16,size=24", "base=10.1.0.0/16,size=33"],
     "network at index 1 (&{10.1.0.0/16 33}) is not in canonical form"),
    (["base=fd00::/48,size=129"], "network at index 0 (&{fd00::/48 129}) is not in canonical form"),
    (["base=10.0.0.0/16"], "network at index 0 (&{10.0.0.0/16 0}) is not in canonical form"),
    (["size=24"], "network at index 0 (&{invalid Prefix 24}) is not in canonical form"),
    ([{"base": "10.0.0.0/16"}], "network at index 0 (&{10.0.0.0/16 0}) is not in canonical form"),
])
def test_pools_libnetwork_cannot_cut_are_refused(values, words):
    with pytest.raises(PoolError) as e:
        subnets.parse(values)
    assert str(e.value) == words


def test_daemon_json_entries_match_keys_as_go_and_refuse_unknown_ones():
    assert subnets.parse_json({"Base": "10.9.0.0/16", "SIZE": 24}) == Pool(net("10.9.0.0/16"), 24)
    with pytest.raises(PoolError, match="unknown field 'szie'"):
        subnets.parse_json({"base": "10.9.0.0/16", "szie": 24})
    with pytest.raises(PoolError, match="invalid size value"):
        subnets.parse_json({"base": "10.9.0.0/16", "size": "24"})


def test_subnets_are_lazy_and_skip_taken_ranges_in_one_step():
    pool = Pool(net("10.0.0.0/8"), 24)
    it = pool.subnets()
    assert next(it) == net("10.0.0.0/24") and next(it) == net("10.0.1.0/24")
    taken = [net("10.0.0.0/9"), net("10.128.0.0/24"), net("10.128.1.128/25"), net("192.168.0.0/16")]
    assert list(itertools.islice(pool.subnets(taken), 2)) == [net("10.128.2.0/24"), net("10.128.3.0/24")]
    # a whole /8 taken but its last /24: found without walking 65536 candidates one by one
    almost = [net("10.0.0.0/9"), net("10.128.0.0/10"), net("10.192.0.0/11"), net("10.224.0.0/12"),
              net("10.240.0.0/13"), net("10.248.0.0/14"), net("10.252.0.0/15"), net("10.254.0.0/16"),
              net("10.255.0.0/17"), net("10.255.128.0/18"), net("10.255.192.0/19"), net("10.255.224.0/20"),
              net("10.255.240.0/21"), net("10.255.248.0/22"), net("10.255.252.0/23"), net("10.255.254.0/24")]
    assert list(pool.subnets(almost)) == [net("10.255.255.0/24")]
    assert list(Pool(net("10.0.0.0/24"), 24).subnets([net("10.0.0.128/25")])) == []


def test_pick_from_pools_sorts_bases_drops_overlaps_and_ignores_the_default_route():
    pools = [Pool(net("10.20.0.0/16"), 24), Pool(net("10.10.0.0/16"), 24), Pool(net("10.10.5.0/24"), 28)]
    assert subnets.ordered(pools, 4) == [Pool(net("10.10.0.0/16"), 24), Pool(net("10.20.0.0/16"), 24)]
    assert subnets.pick_from_pools(pools, [net("0.0.0.0/0")]) == net("10.10.0.0/24")
    assert subnets.pick_from_pools(pools, [net("10.10.0.0/16")]) == net("10.20.0.0/24")
    six = [Pool(net("fd00:7::/48"), 64), Pool(net("10.0.0.0/8"), 24)]
    assert subnets.pick_from_pools(six, [net("fd00:7::/64")], 6) == net("fd00:7:0:1::/64")


def test_exhausted_pools_are_moby_28s_invalid_parameter():
    with pytest.raises(InvalidParameter, match="^all predefined address pools have been fully subnetted$"):
        subnets.pick_from_pools([Pool(net("10.0.0.0/24"), 24)], [net("10.0.0.0/24")])
    with pytest.raises(InvalidParameter):   # no pool of that family at all
        subnets.pick_from_pools([Pool(net("10.0.0.0/24"), 24)], [], 6)


def test_ipv6_networks_take_the_pools_v6_subnet_else_a_ula():
    def plan(pick6):
        return usernets.plan("n", taken=[], pick_subnet=lambda: net("10.1.0.0/24"), enable_ipv6=True,
                             pick_subnet6=pick6)
    p = plan(lambda: net("fd00:7::/64"))
    assert usernets.ipv6(p.config) == (net("fd00:7::/64"), net("fd00:7::/64").network_address + 1)
    assert usernets.ipv6(plan(None).config)[0].network_address.packed[0] == 0xFD


def test_the_daemon_takes_pools_from_flags_or_daemon_json(tmp_path):
    args = dockyardd.parse_args(["-H", "unix:///tmp/x.sock", "--default-address-pool", "base=10.10.0.0/16,size=24",
                                 "--default-address-pool", "base=fd00:9::/48,size=64"])
    assert dockyardd.daemon_config(args).default_address_pools == (
        Pool(net("10.10.0.0/16"), 24), Pool(net("fd00:9::/48"), 64))
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps({"default-address-pools": [{"base": "10.11.0.0/16", "size": 24}]}))
    args = dockyardd.parse_args(["-H", "unix:///tmp/x.sock", "--config-file", str(f)])
    assert dockyardd.daemon_config(args).default_address_pools == (Pool(net("10.11.0.0/16"), 24),)
    with pytest.raises(SystemExit, match="specified both as a flag and in the configuration file: "
                                         "default-address-pools"):
        dockyardd.parse_args(["--config-file", str(f), "--default-address-pool", "base=10.0.0.0/8,size=24"])


@pytest.mark.parametrize("argv, words", [
    (["--default-address-pool", "base=10.0.0.0/16,sz=24"],
     "dockyardd: invalid argument \"base=10.0.0.0/16,sz=24\" for \"--default-address-pool\" flag: "
     "unexpected key 'sz' in 'sz=24'"),
    (["--default-address-pool", "base=10.0.0.0/16,size=8"],
     "dockyardd: Error initializing network controller: error obtaining controller instance: could not "
     "construct local address space: network at index 0 (&{10.0.0.0/16 8}) has a smaller prefix (/16) "
     "than the target size of that pool (/8)"),
])
def test_the_daemon_refuses_bad_pools_at_start(argv, words):
    with pytest.raises(SystemExit) as e:
        dockyardd.daemon_config(dockyardd.parse_args(["-H", "unix:///tmp/x.sock", *argv]))
    assert str(e.value) == words

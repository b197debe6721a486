"""IPAM arithmetic, subnet choice and the SQLite-backed allocation."""
import threading
from ipaddress import IPv4Address, IPv4Network

import pytest

from dockyard.errors import Forbidden, InvalidParameter, Unavailable
from dockyard.network.ipam import AddressPool, mac_for, parse_bip
from dockyard.network.store import NetworkStore
from dockyard.network.subnets import pick_free_subnet
from dockyard.store.db import Database


def test_allocates_lowest_free_skipping_network_and_gateway():
    pool = AddressPool("10.1.0.0/24", "10.1.0.1")
    assert pool.allocate() == IPv4Address("10.1.0.2")
    assert pool.allocate() == IPv4Address("10.1.0.3")


def test_gateway_need_not_be_first_address():
    pool = AddressPool("10.1.0.0/24", "10.1.0.254")
    assert pool.allocate() == IPv4Address("10.1.0.1")


def test_release_makes_the_lowest_address_free_again():
    pool = AddressPool("10.1.0.0/24", "10.1.0.1", used=["10.1.0.2", "10.1.0.3"])
    pool.release("10.1.0.2")
    pool.release("10.1.0.200")   # releasing a free address is harmless
    assert pool.allocate() == IPv4Address("10.1.0.2")
    assert pool.allocate() == IPv4Address("10.1.0.4")


def test_exhaustion_never_hands_out_broadcast():
    pool = AddressPool("10.1.0.0/29", "10.1.0.1")   # hosts .1-.6, gateway .1
    got = [pool.allocate() for _ in range(5)]
    assert got == [IPv4Address(f"10.1.0.{i}") for i in range(2, 7)]
    with pytest.raises(Unavailable):
        pool.allocate()


def test_explicit_request():
    pool = AddressPool("10.1.0.0/24", "10.1.0.1")
    assert pool.allocate("10.1.0.77") == IPv4Address("10.1.0.77")
    with pytest.raises(Forbidden):
        pool.allocate("10.1.0.77")        # taken
    with pytest.raises(Forbidden):
        pool.allocate("10.1.0.1")         # the gateway
    for bad in ("10.1.0.0", "10.1.0.255", "10.2.0.5"):
        with pytest.raises(InvalidParameter):
            pool.allocate(bad)            # network, broadcast, outside
    assert pool.allocate() == IPv4Address("10.1.0.2")


def test_rejects_subnets_without_room_and_misplaced_gateways():
    with pytest.raises(InvalidParameter):
        AddressPool("10.1.0.0/31", None)
    with pytest.raises(InvalidParameter):
        AddressPool("10.1.0.0/24", "10.1.0.255")
    with pytest.raises(InvalidParameter):
        AddressPool("10.1.0.0/24", "10.9.0.1")


def test_mac_is_derived_from_the_address_like_docker():
    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_parse_bip():
    assert parse_bip("10.99.0.1/24") == (IPv4Network("10.99.0.0/24"), IPv4Address("10.99.0.1"))
    for bad in ("10.99.0.1", "10.99.0.0/24", "nonsense", "10.99.0.1/32"):
        with pytest.raises(InvalidParameter):
            parse_bip(bad)


def test_pick_free_subnet_avoids_routes_addresses_and_reserved_ranges():
    assert pick_free_subnet([]) == IPv4Network("172.18.0.0/16")
    in_use = ["0.0.0.0/0", "172.18.5.0/24", "172.19.0.7/32", "172.16.0.0/12"]
    assert pick_free_subnet(in_use) == IPv4Network("192.168.0.0/24")
    assert pick_free_subnet(["172.16.0.0/12", "192.168.0.0/24"]) == IPv4Network("192.168.1.0/24")
    # docker0 and podman's range are never picked, even when absent from the host
    cands = [IPv4Network("172.17.0.0/16"), IPv4Network("10.88.0.0/16"), IPv4Network("10.77.0.0/16")]
    assert pick_free_subnet([], cands) == IPv4Network("10.77.0.0/16")
    with pytest.raises(Unavailable):
        pick_free_subnet(["10.0.0.0/8"], [IPv4Network("10.1.0.0/16")])


@pytest.fixture
def store(tmp_path):
    db = Database(str(tmp_path / "db.sqlite"))
    yield NetworkStore(db)
    db.close()


def test_store_allocations_persist_and_release_per_container(store, tmp_path):
    net = store.save_network("bridge", "bridge", "dyx", "10.5.0.0/24", "10.5.0.1")
    assert store.save_network("bridge", "bridge", "dyx", "10.5.0.0/24", "10.5.0.1") == net  # stable id
    assert store.allocate_ip(net, "10.5.0.0/24", "10.5.0.1", "a") == "10.5.0.2"
    assert store.allocate_ip(net, "10.5.0.0/24", "10.5.0.1", "b") == "10.5.0.3"
    store.release_ips("a")
    db = Database(str(tmp_path / "db.sqlite"))   # as a restarted daemon would
    try:
        reopened = NetworkStore(db)
        assert reopened.allocation_owners() == {"b"}
        assert reopened.allocate_ip(net, "10.5.0.0/24", "10.5.0.1", "c") == "10.5.0.2"
    finally:
        db.close()


def test_store_concurrent_allocations_never_collide(store):
    net = store.save_network("bridge", "bridge", "dyx", "10.6.0.0/24", "10.6.0.1")
    got = []

    def grab(n):
        got.append(store.allocate_ip(net, "10.6.0.0/24", "10.6.0.1", f"c{n}"))

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 40


def test_store_index_follows_every_release_and_a_restart(store, tmp_path):
    """The in-memory index of each network's addresses is what the table holds: released addresses
    (per container, per network, forget) come back, a failed request changes nothing, IPv6 too."""
    net = store.save_network("bridge", "bridge", "dyx", "10.7.0.0/24", "10.7.0.1")
    other = store.save_network("n2", "bridge", "dyy", "10.8.0.0/24", "10.8.0.1")
    ips = {c: store.allocate_ip(net, "10.7.0.0/24", "10.7.0.1", c) for c in "abcde"}
    assert ips == {"a": "10.7.0.2", "b": "10.7.0.3", "c": "10.7.0.4", "d": "10.7.0.5", "e": "10.7.0.6"}
    assert store.allocate_ip(other, "10.8.0.0/24", "10.8.0.1", "b") == "10.8.0.2"
    with pytest.raises(Forbidden):
        store.allocate_ip(net, "10.7.0.0/24", "10.7.0.1", "x", requested="10.7.0.3")
    store.release_ips("b")                       # both networks
    store.release_ip("d", net)
    store.forget("e", net)
    assert store.allocate_ip(other, "10.8.0.0/24", "10.8.0.1", "f") == "10.8.0.2"
    assert [store.allocate_ip(net, "10.7.0.0/24", "10.7.0.1", c) for c in "ghij"] == \
        ["10.7.0.3", "10.7.0.5", "10.7.0.6", "10.7.0.7"]
    assert store.allocate_ip(net, "10.7.0.0/24", "10.7.0.1", "k", requested="10.7.0.9") == "10.7.0.9"
    assert store.allocate_ip6(net, "fd00:7::/64", "fd00:7::1", "a") == "fd00:7::2"
    assert store.allocate_ip6(net, "fd00:7::/64", "fd00:7::1", "g") == "fd00:7::3"
    store.forget("a")
    assert store.allocate_ip6(net, "fd00:7::/64", "fd00:7::1", "l") == "fd00:7::2"
    assert store.allocate_ip(net, "10.7.0.0/24", "10.7.0.1", "m") == "10.7.0.2"
    db = Database(str(tmp_path / "db.sqlite"))   # a restarted daemon reads the same from the table
    try:
        reopened = NetworkStore(db)
        assert reopened.allocate_ip(net, "10.7.0.0/24", "10.7.0.1", "n") == "10.7.0.8"
        assert reopened.allocate_ip6(net, "fd00:7::/64", "fd00:7::1", "o") == "fd00:7::4"
    finally:
        db.close()


def test_store_allocation_does_not_read_the_networks_other_addresses(tmp_path):
    """An allocation on a network with 300 addresses taken reads none of them (issue 16: a start's
    cost must not grow with the containers running)."""
    db = Database(str(tmp_path / "db.sqlite"))
    try:
        store = NetworkStore(db)
        net = store.save_network("big", "bridge", "dyz", "10.9.0.0/16", "10.9.0.1")
        for n in range(300):
            store.allocate_ip(net, "10.9.0.0/16", "10.9.0.1", f"c{n}")
        statements: list[str] = []
        db._conn.set_trace_callback(statements.append)   # every SQL statement the connection runs
        try:
            assert store.allocate_ip(net, "10.9.0.0/16", "10.9.0.1", "new") == "10.9.1.46"
            store.forget("c7")
            assert store.allocate_ip(net, "10.9.0.0/16", "10.9.0.1", "again") == "10.9.0.9"
        finally:
            db._conn.set_trace_callback(None)
        reads = [s for s in statements if s.startswith("SELECT") and "network_id = " in s]
        assert reads == [], statements
    finally:
        db.close()

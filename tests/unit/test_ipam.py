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

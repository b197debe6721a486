"""NetworkManager's records and DNS name registry, without touching the host."""
import pytest

from dockyard.network.endpoint import Endpoint
from dockyard.network.manager import NetworkManager
from dockyard.network.names import NameRegistry
from dockyard.network.record import NetworkRecord
from dockyard.network.store import NetworkStore
from dockyard.store.db import Database


@pytest.fixture
def store(tmp_path):
    return NetworkStore(Database(str(tmp_path / "db.sqlite")))


def test_the_store_hands_out_records_with_their_config(store):
    store.create_network("n" * 64, "front", "br-front", "10.9.0.0/24", "10.9.0.1",
                         {"Internal": True, "Labels": {"a": "b"}})
    rec = store.network("front")
    assert isinstance(rec, NetworkRecord)
    assert (rec.id, rec.driver, rec.bridge, rec.subnet, rec.gateway) == \
        ("n" * 64, "bridge", "br-front", "10.9.0.0/24", "10.9.0.1")
    assert rec.internal and rec.config["Labels"] == {"a": "b"} and rec.created
    assert store.network_by_id("n" * 64) == rec and [r.name for r in store.networks()] == ["front"]
    with pytest.raises(TypeError):       # read by attribute: a record is not a row
        rec["name"]


def test_the_manager_finds_predefined_networks_without_setup(tmp_path):
    nm = NetworkManager(Database(str(tmp_path / "db.sqlite")), str(tmp_path / "run"),
                        container_name=lambda cid: None, emit=lambda *ev: None)
    assert {r.name for r in nm.networks()} == {"host", "none"} and nm.user_networks() == []
    assert nm.find("none").driver == "null" and nm.find(nm.network_id("host")).name == "host"
    nm.container_name = lambda cid: "late"     # the daemon's late hook still reaches the registry
    assert nm.container_name("x") == "late"


def test_names_follow_renames_and_are_cached_until_forgotten(store):
    store.create_network("i" * 64, "back", "br-back", "10.8.0.0/24", "10.8.0.1", {"Internal": True})
    store.create_network("o" * 64, "open", "br-open", "10.7.0.0/24", "10.7.0.1", {})
    current = {}
    names = NameRegistry(store, lambda cid: current.get(cid))
    store.save_endpoint(Endpoint("c" * 64, "back", "i" * 64, "/ns", ip="10.8.0.2", prefixlen=24,
                                 aliases='["db"]', name="first"))
    assert names.names("i" * 64) == {"first": ["10.8.0.2"], "c" * 12: ["10.8.0.2"], "db": ["10.8.0.2"]}
    current["c" * 64] = "Renamed"
    assert "renamed" in names.names("i" * 64) and names.reverse("c" * 64, "10.8.0.2") == "Renamed.back"
    store.save_endpoint(Endpoint("d" * 64, "back", "i" * 64, "/ns2", ip="10.8.0.3", prefixlen=24))
    assert names.reverse("c" * 64, "10.8.0.3") is None          # cached
    names.forget("i" * 64)
    assert names.reverse("c" * 64, "10.8.0.3") == "d" * 12 + ".back"   # moby: name.network
    # a container's resolver: the names of its user networks, and name.network too
    assert names.container_names("d" * 64)["db"] == ["10.8.0.2"]
    assert names.container_names("d" * 64)["db.back"] == ["10.8.0.2"]
    assert names.container_names("x" * 64) == {}
    # forwarding: not when all its networks are Internal
    store.save_endpoint(Endpoint("e" * 64, "open", "o" * 64, "/ns3", ip="10.7.0.2", prefixlen=24))
    assert not names.forwards("c" * 64) and names.forwards("e" * 64) and not names.forwards("x")
    assert names.reverse("e" * 64, "10.8.0.2") is None           # not on its networks

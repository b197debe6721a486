"""IPAM AuxiliaryAddresses (issue 14): kept by network create and shown in inspect as dockerd shows
them, never handed to a container when they lie in the range addresses are picked from."""
from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from dockyard.errors import Forbidden, InvalidParameter
from dockyard.network import usernets
from dockyard.network.ipam import reserved_aux
from dockyard.network.store import NetworkStore
from dockyard.store.db import Database


def _plan(**ipam):
    return usernets.plan("app", taken=[], pick_subnet=lambda: IPv4Network("172.30.0.0/16"),
                         ipam={"Config": [ipam]})


def test_create_keeps_them_in_dockerds_order():
    p = _plan(Subnet="10.150.7.0/24", IPRange="10.150.7.0/29", Gateway="10.150.7.1",
              AuxiliaryAddresses={"h1": "10.150.7.2", "h2": "10.150.7.3"})
    cfg = p.config["IPAM"]["Config"]
    assert cfg == [{"Subnet": "10.150.7.0/24", "IPRange": "10.150.7.0/29", "Gateway": "10.150.7.1",
                    "AuxiliaryAddresses": {"h1": "10.150.7.2", "h2": "10.150.7.3"}}]
    assert list(cfg[0]) == ["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"]
    assert "AuxiliaryAddresses" not in _plan(Subnet="10.150.8.0/24").config["IPAM"]["Config"][0]


@pytest.mark.parametrize("aux, words", [
    ({"h": "10.9.9.9"}, "invalid auxiliary address h: parent subnet 10.150.7.0/24 doesn't contain this address"),
    ({"h": "nope"}, "invalid auxiliary address h: ParseAddr('nope'): unable to parse IP"),
])
def test_outside_the_subnet_or_not_an_address_is_refused(aux, words):
    with pytest.raises(InvalidParameter) as e:
        _plan(Subnet="10.150.7.0/24", AuxiliaryAddresses=aux)
    assert str(e.value) == "invalid network config:\n" + words


def test_reserved_where_addresses_are_picked(tmp_path):
    pool = {"Subnet": "10.5.0.0/24", "IPRange": "10.5.0.0/29",
            "AuxiliaryAddresses": {"in": "10.5.0.2", "out": "10.5.0.200"}}
    assert reserved_aux(pool) == ["10.5.0.2"]     # outside the range libnetwork does not reserve it
    assert reserved_aux({"Subnet": "10.5.0.0/24", "AuxiliaryAddresses": {"a": "10.5.0.200"}}) == ["10.5.0.200"]
    assert reserved_aux({}) == []
    db = Database(str(tmp_path / "d.db"))
    try:
        store = NetworkStore(db)
        net = store.save_network("aux", "bridge", "dyx", "10.5.0.0/24", "10.5.0.1")
        got = store.allocate_ip(net, "10.5.0.0/24", "10.5.0.1", "a", None, "10.5.0.0/29",
                                reserved=reserved_aux(pool))
        assert got == "10.5.0.3"
        with pytest.raises(Forbidden, match="Address already in use: 10.5.0.2"):
            store.allocate_ip(net, "10.5.0.0/24", "10.5.0.1", "b", "10.5.0.2", "10.5.0.0/29",
                              reserved=reserved_aux(pool))
    finally:
        db.close()


def test_ipam_options_read_back_as_given():
    plan = usernets.plan
    pick = {"taken": [], "pick_subnet": lambda: IPv4Network("172.30.0.0/16")}
    assert plan("a", **pick).config["IPAM"]["Options"] is None
    assert plan("a", ipam={"Driver": "default", "Options": {}}, **pick).config["IPAM"]["Options"] == {}
    assert plan("a", ipam={"Options": {"k": "v"}}, **pick).config["IPAM"]["Options"] == {"k": "v"}

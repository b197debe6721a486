"""network/conntrack.py without the kernel: what it asks pyroute2 for."""
import socket

from dockyard.network import conntrack as ct


def test_the_filter_is_udp_to_the_port_and_address_of_either_family():
    t = ct.udp_tuple("127.0.0.1", 5353)
    assert (t.family, t.proto, t.dport, t.daddr) == (socket.AF_INET, socket.IPPROTO_UDP, 5353, "127.0.0.1")
    t = ct.udp_tuple("", 5353)
    assert (t.family, t.daddr, t.dport) == (socket.AF_INET, None, 5353)   # any address
    t = ct.udp_tuple("::1", 53)
    assert (t.family, t.daddr) == (socket.AF_INET6, "::1")
    t = ct.udp_tuple("::", 53)
    assert (t.family, t.daddr) == (socket.AF_INET6, None)   # any IPv6 address (a DNAT [::] bind)
    attrs = dict(ct.udp_tuple("10.0.0.1", 7).attrs())
    assert {a[0] for a in attrs["CTA_TUPLE_PROTO"]["attrs"]} == {"CTA_PROTO_NUM", "CTA_PROTO_DST_PORT"}


def test_forget_udp_skips_tcp_rows_without_a_socket(monkeypatch):
    monkeypatch.setattr(ct, "Conntrack", lambda: (_ for _ in ()).throw(AssertionError("no socket for tcp")))
    assert ct.forget_udp([("tcp", "", 80, "10.0.0.2", 80)]) == 0

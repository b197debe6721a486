"""ctnetlink messages of network/conntrack.py (pure encoding and matching)."""
import socket
import struct

from dockyard.network import conntrack as ct


def _tuple(proto: int, daddr: str, dport: int) -> bytes:
    ip = ct._attr(1, socket.inet_aton("127.0.0.1")) + ct._attr(ct.CTA_IP_V4_DST, socket.inet_aton(daddr))
    pr = (ct._attr(ct.CTA_PROTO_NUM, bytes([proto])) + ct._attr(2, struct.pack("!H", 40000))
          + ct._attr(ct.CTA_PROTO_DST_PORT, struct.pack("!H", dport)))
    return ct._attr(ct.CTA_TUPLE_IP, ip, True) + ct._attr(ct.CTA_TUPLE_PROTO, pr, True)


def test_matches_checks_proto_port_and_address():
    t = _tuple(socket.IPPROTO_UDP, "127.0.0.1", 5353)
    assert ct._matches(t, socket.IPPROTO_UDP, 5353, "")
    assert ct._matches(t, socket.IPPROTO_UDP, 5353, "127.0.0.1")
    assert not ct._matches(t, socket.IPPROTO_UDP, 5353, "10.0.0.1")
    assert not ct._matches(t, socket.IPPROTO_UDP, 5354, "")
    assert not ct._matches(t, socket.IPPROTO_TCP, 5353, "")
    assert not ct._matches(b"", socket.IPPROTO_UDP, 5353, "")


def test_dump_request_layout():
    msg = ct._message(ct.IPCTNL_MSG_CT_GET, ct.NLM_F_REQUEST | ct.NLM_F_DUMP, 7,
                      ct._orig_filter(socket.IPPROTO_UDP, 5353, "127.0.0.1"))
    length, kind, flags, seq, _ = ct._HDR.unpack_from(msg)
    assert (length, kind, flags, seq) == (len(msg), (1 << 8) | 1, 0x301, 7)
    assert msg[16] == socket.AF_INET and len(msg) % 4 == 0
    top = ct._attrs(msg, 20)
    assert set(top) == {ct.CTA_TUPLE_ORIG, ct.CTA_FILTER}
    a, b = top[ct.CTA_TUPLE_ORIG]
    assert ct._matches(msg[a + 4:b], socket.IPPROTO_UDP, 5353, "127.0.0.1")
    fa, fb = top[ct.CTA_FILTER]
    flags = ct._attrs(msg[fa + 4:fb])
    s, _ = flags[ct.CTA_FILTER_ORIG_FLAGS]
    got = struct.unpack_from("=I", msg[fa + 4:fb], s + 4)[0]
    assert got == ct.FLAG_IP_DST | ct.FLAG_PROTO_NUM | ct.FLAG_PROTO_DST_PORT


def test_forget_udp_skips_tcp_rows_without_a_socket(monkeypatch):
    monkeypatch.setattr(ct, "_Socket", lambda: (_ for _ in ()).throw(AssertionError("no socket for tcp")))
    assert ct.forget_udp([("tcp", "", 80, "10.0.0.2", 80)]) == 0

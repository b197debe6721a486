"""Forgetting UDP flows to a host port that has just been published.

Netfilter applies NAT rules only when a flow's first packet creates its
conntrack entry. A UDP client that was already sending to a host port before
the container published it (nothing answered, or the previous container of
a restart had another address) keeps its entry, un-NATed or NATed to the old
address, for as long as it keeps sending: its datagrams never reach the new
container. Docker deletes the UDP entries of each published host port for
this reason (moby#8795, #44688); so do we, once the DNAT elements are in.

A plain ctnetlink socket, like network/rtnl.py: one dump filtered in the
kernel (CTA_FILTER, Linux 5.8+; older kernels dump everything, so entries
are checked here too) and one delete per entry found, no subprocess.
"""
from __future__ import annotations

import errno
import logging
import socket
import struct
from ipaddress import IPv4Address

log = logging.getLogger(__name__)

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
# attribute types (linux/netfilter/nfnetlink_conntrack.h)
CTA_TUPLE_ORIG, CTA_ZONE, CTA_FILTER = 1, 18, 25
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_DST = 2
CTA_PROTO_NUM, CTA_PROTO_DST_PORT = 1, 3
CTA_FILTER_ORIG_FLAGS, CTA_FILTER_REPLY_FLAGS = 1, 2
FLAG_IP_DST, FLAG_PROTO_NUM, FLAG_PROTO_DST_PORT = 1 << 1, 1 << 3, 1 << 5

_HDR = struct.Struct("=IHHII")     # nlmsghdr: length, type, flags, seq, pid
_NFGEN = struct.Struct("=BBH")     # nfgenmsg: family, version, res_id (be16, 0)
_NLA = struct.Struct("=HH")


def _attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    head = _NLA.pack(_NLA.size + len(payload), kind | (NLA_F_NESTED if nested else 0))
    return head + payload + b"\0" * (-len(payload) % 4)


def _attrs(data: bytes, offset: int = 0) -> dict[int, tuple[int, int]]:
    """type -> (start, end) of each attribute at this level, the whole attribute's bytes."""
    out = {}
    while offset + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size:
            break
        out[kind & NLA_TYPE_MASK] = (offset, offset + length)
        offset += (length + 3) & ~3
    return out


def _payload(data: bytes, span: tuple[int, int]) -> bytes:
    return data[span[0] + _NLA.size: span[1]]


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    payload = _NFGEN.pack(socket.AF_INET, 0, 0) + body
    return _HDR.pack(_HDR.size + len(payload), (NFNL_SUBSYS_CTNETLINK << 8) | kind, flags, seq, 0) + payload


def _orig_filter(proto: int, dport: int, daddr: str) -> bytes:
    ip = _attr(CTA_IP_V4_DST, IPv4Address(daddr).packed) if daddr else b""
    tup = _attr(CTA_TUPLE_ORIG, _attr(CTA_TUPLE_IP, ip, True) + _attr(
        CTA_TUPLE_PROTO, _attr(CTA_PROTO_NUM, bytes([proto])) + _attr(CTA_PROTO_DST_PORT, struct.pack("!H", dport)),
        True), True)
    flags = FLAG_PROTO_NUM | FLAG_PROTO_DST_PORT | (FLAG_IP_DST if daddr else 0)
    filt = _attr(CTA_FILTER, _attr(CTA_FILTER_ORIG_FLAGS, struct.pack("=I", flags))
                 + _attr(CTA_FILTER_REPLY_FLAGS, struct.pack("=I", 0)), True)
    return tup + filt


def _matches(tuple_orig: bytes, proto: int, dport: int, daddr: str) -> bool:
    top = _attrs(tuple_orig)
    if CTA_TUPLE_PROTO not in top or CTA_TUPLE_IP not in top:
        return False
    p_raw = _payload(tuple_orig, top[CTA_TUPLE_PROTO])
    p = _attrs(p_raw)
    if CTA_PROTO_NUM not in p or CTA_PROTO_DST_PORT not in p:
        return False
    if _payload(p_raw, p[CTA_PROTO_NUM])[:1] != bytes([proto]):
        return False
    if struct.unpack("!H", _payload(p_raw, p[CTA_PROTO_DST_PORT])[:2])[0] != dport:
        return False
    if daddr:
        ip_raw = _payload(tuple_orig, top[CTA_TUPLE_IP])
        ip = _attrs(ip_raw)
        if CTA_IP_V4_DST not in ip or _payload(ip_raw, ip[CTA_IP_V4_DST])[:4] != IPv4Address(daddr).packed:
            return False
    return True


class _Socket:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _replies(self, request: bytes):
        """Messages answering one request, up to DONE or the ack; raises OSError on a netlink error."""
        self.sock.send(request)
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, _, seq, _ = _HDR.unpack_from(data, offset)
                msg = data[offset: offset + length]
                offset += max((length + 3) & ~3, _HDR.size)
                if seq != self.seq:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", msg, _HDR.size)[0]
                    if code:
                        raise OSError(-code, f"ctnetlink: {errno.errorcode.get(-code, -code)}")
                    return
                yield msg

    def entries(self, proto: int, dport: int, daddr: str) -> list[bytes]:
        """The CTA_TUPLE_ORIG (and CTA_ZONE) attributes of the matching entries, as sent back."""
        self.seq += 1
        found = []
        body = _orig_filter(proto, dport, daddr)
        for msg in self._replies(_message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, self.seq, body)):
            base = _HDR.size + _NFGEN.size
            top = _attrs(msg, base)
            if CTA_TUPLE_ORIG not in top:
                continue
            start, end = top[CTA_TUPLE_ORIG]
            if not _matches(msg[start + _NLA.size: end], proto, dport, daddr):
                continue
            key = msg[start:end] + b"\0" * (-(end - start) % 4)
            if CTA_ZONE in top:
                zs, ze = top[CTA_ZONE]
                key += msg[zs:ze] + b"\0" * (-(ze - zs) % 4)
            found.append(key)
        return found

    def delete(self, key: bytes) -> None:
        self.seq += 1
        for _ in self._replies(_message(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, self.seq, key)):
            pass


def forget_udp(rows: list[tuple]) -> int:
    """Delete the conntrack entries of UDP flows to the host ports of rows
    (proto, host_ip, host_port, container_ip, container_port); how many went.
    Best effort: a host without ctnetlink only keeps the problem Docker had before."""
    wanted = [(r[1], r[2]) for r in rows if r[0] == "udp"]
    if not wanted:
        return 0
    gone = 0
    try:
        s = _Socket()
    except OSError as e:
        log.debug("conntrack: no ctnetlink socket (%s): published udp ports keep older flows", e)
        return 0
    try:
        for host_ip, port in wanted:
            try:
                for key in s.entries(socket.IPPROTO_UDP, port, host_ip):
                    try:
                        s.delete(key)
                        gone += 1
                    except OSError as e:
                        if e.errno != errno.ENOENT:   # ENOENT: it expired meanwhile
                            raise
            except OSError as e:
                log.warning("conntrack: cannot forget udp flows to port %s: %s", port, e)
    finally:
        s.close()
    return gone

"""Forgetting UDP flows to a host port that has just been published.

Netfilter applies NAT rules only when a flow's first packet creates its
conntrack entry. A UDP client that was already sending to a host port before
the container published it (nothing answered, or the previous container of
a restart had another address) keeps its entry, un-NATed or NATed to the old
address, for as long as it keeps sending: its datagrams never reach the new
container. Docker deletes the UDP entries of each published host port for
this reason (moby#8795, #44688); so do we, once the DNAT elements are in.

pyroute2's conntrack support (ctnetlink): one dump filtered in the kernel
(CTA_FILTER, Linux 5.8+; pyroute2 checks the entries again for older
kernels that dump everything) and one delete per entry found, no subprocess.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import socket

from pyroute2 import Conntrack, NetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

log = logging.getLogger(__name__)


def udp_tuple(host_ip: str, port: int) -> NFCTAttrTuple:
    """The original direction of UDP flows to host_ip:port (any address of the family for "" and "::")."""
    family = socket.AF_INET6 if host_ip and ipaddress.ip_address(host_ip).version == 6 else socket.AF_INET
    return NFCTAttrTuple(family=family, proto=socket.IPPROTO_UDP, dport=port,
                         daddr=None if host_ip in ("", "::") else host_ip)


def forget_udp(rows: list[tuple]) -> int:
    """Delete the conntrack entries of UDP flows to the host ports of rows
    (proto, host_ip, host_port, container_ip, container_port); how many went.
    Best effort: a host without ctnetlink only keeps the problem Docker had before."""
    wanted = [(r[1], r[2]) for r in rows if r[0] == "udp"]
    if not wanted:
        return 0
    gone = 0
    try:
        ct = Conntrack()
    except (OSError, NetlinkError) as e:
        log.debug("conntrack: no ctnetlink socket (%s): published udp ports keep older flows", e)
        return 0
    try:
        for host_ip, port in wanted:
            try:
                for entry in list(ct.dump_entries(tuple_orig=udp_tuple(host_ip, port))):
                    try:
                        ct.delete(entry)
                        gone += 1
                    except NetlinkError as e:
                        if e.code != errno.ENOENT:   # ENOENT: it expired meanwhile
                            raise
            except (OSError, NetlinkError) as e:
                log.warning("conntrack: cannot forget udp flows to port %s: %s", port, e)
    finally:
        ct.close()
    return gone

"""A minimal synchronous rtnetlink client for the per-container hot path.

pyroute2's IPRoute runs an asyncio loop per instance and thread, which costs
about a millisecond to open and a few hundred microseconds per request.
Connect and disconnect need only a handful of fixed requests, so they use
pyroute2's message classes (its encoders and decoders) over a plain netlink
socket instead: a request is then one send and one recv. The socket stays
in the network namespace of the thread that opened it, which is how the
namespace side of `connect` talks to the container's namespace.

Daemon start-up and purge, which dump and compare host state, use IPRoute.
"""
from __future__ import annotations

import errno
import socket
import struct
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from pyroute2 import NetlinkError
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR
from pyroute2.netlink.rtnl import RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

NETLINK_ROUTE = 0
_NLMSGHDR = struct.Struct("=IHHII")   # length, type, flags, seq, pid
_IFI_INDEX = struct.Struct("=i")
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
IFA_F_NODAD = 0x02


class Rtnl:
    """One netlink socket, requests answered in order; not for sharing between threads."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, msg, msg_type: int, flags: int = 0) -> bytes:
        """Send one request; return the reply message (b"" for a bare ack) or raise NetlinkError."""
        self.seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        reply = b""
        while True:   # the reply (for GET) and the ack may arrive in one datagram or two
            data = self.sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, rtype, _, seq, _ = _NLMSGHDR.unpack_from(data, offset)
                message = data[offset: offset + length]
                offset += max(length, _NLMSGHDR.size)
                if seq != self.seq:
                    continue   # a late answer to an earlier request
                if rtype != NLMSG_ERROR:
                    reply = message
                    continue
                code = struct.unpack_from("=i", message, _NLMSGHDR.size)[0]
                if code:
                    raise NetlinkError(-code)
                return reply

    # -- links -----------------------------------------------------------
    def link_index(self, name: str) -> int | None:
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", name)]
        try:
            reply = self._request(msg, RTM_GETLINK)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise
        # struct ifinfomsg follows the header: family, pad, type (u16), then the index.
        # Read just that: decoding the whole reply with pyroute2 costs ~1 ms.
        return _IFI_INDEX.unpack_from(reply, _NLMSGHDR.size + 4)[0]

    def set_link(self, index: int = 0, name: str | None = None, up: bool | None = None,
                 **attrs) -> None:
        """Change flags and/or plain attributes (IFLA_MASTER=..., IFLA_IFALIAS=...).

        The link is picked by index, or by name when index is 0, which saves
        a lookup round trip.
        """
        msg = ifinfmsg()
        msg["index"] = index
        if up is not None:
            msg["flags"] = IFF_UP if up else 0
            msg["change"] = IFF_UP
        msg["attrs"] = ([("IFLA_IFNAME", name)] if name and not index else []) + list(attrs.items())
        self._request(msg, RTM_NEWLINK)

    def add_veth(self, name: str, master: int, peer_name: str, peer_netns_fd: int, peer_mac: str,
                 mtu: int | None = None, up: bool = True) -> None:
        """Veth pair in one request: this end enslaved (and up unless `up` is false), the peer
        born in another netns; both ends with `mtu` when given (the network's, as the bridge's)."""
        mtu_attr = [("IFLA_MTU", mtu)] if mtu else []
        msg = ifinfmsg()
        msg["flags"] = IFF_UP if up else 0
        msg["change"] = IFF_UP
        msg["attrs"] = [
            ("IFLA_IFNAME", name),
            ("IFLA_MASTER", master),
            *mtu_attr,
            ("IFLA_LINKINFO", {"attrs": [
                ("IFLA_INFO_KIND", "veth"),
                ("IFLA_INFO_DATA", {"attrs": [
                    ("VETH_INFO_PEER", {"attrs": [
                        ("IFLA_IFNAME", peer_name),
                        ("IFLA_NET_NS_FD", peer_netns_fd),
                        ("IFLA_ADDRESS", peer_mac),
                        *mtu_attr,
                    ]}),
                ]}),
            ]}),
        ]
        self._request(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)

    # -- addresses and routes --------------------------------------------
    def add_address(self, index: int, address: IPv4Interface) -> None:
        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET
        msg["prefixlen"] = address.network.prefixlen
        msg["index"] = index
        msg["attrs"] = [
            ("IFA_LOCAL", str(address.ip)),
            ("IFA_ADDRESS", str(address.ip)),
            ("IFA_BROADCAST", str(address.network.broadcast_address)),
        ]
        self._request(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway: IPv4Address | IPv6Address, oif: int) -> None:
        """The default route via `gateway` (either family) out of `oif`."""
        msg = rtmsg()
        msg["family"] = socket.AF_INET6 if gateway.version == 6 else socket.AF_INET
        msg["dst_len"] = 0
        msg["table"] = RT_TABLE_MAIN
        msg["proto"] = RTPROT_STATIC
        msg["scope"] = RT_SCOPE_UNIVERSE
        msg["type"] = RTN_UNICAST
        msg["attrs"] = [("RTA_GATEWAY", str(gateway)), ("RTA_OIF", oif)]
        self._request(msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)

    def add_address6(self, index: int, address: IPv6Interface) -> None:
        """A static IPv6 address without duplicate address detection (usable at once, as Docker's)."""
        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET6
        msg["prefixlen"] = address.network.prefixlen
        msg["index"] = index
        msg["flags"] = IFA_F_NODAD
        msg["attrs"] = [("IFA_LOCAL", str(address.ip)), ("IFA_ADDRESS", str(address.ip)),
                        ("IFA_FLAGS", IFA_F_NODAD)]
        self._request(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route6(self, gateway: IPv6Address, oif: int) -> None:
        self.add_default_route(gateway, oif)

    def set_bridge_port(self, index: int = 0, name: str | None = None, *, isolated: bool = False,
                        hairpin: bool = False) -> None:
        """Bridge port flags, as `ip link set X type bridge_slave isolated on hairpin on`.

        isolated: reaches the bridge (gateway) but no other isolated port (icc=false).
        hairpin: frames may leave by the port they came in, so a container reaches its
        own published port through a host address.
        """
        data = ([("IFLA_BRPORT_ISOLATED", 1)] if isolated else []) + ([("IFLA_BRPORT_MODE", 1)] if hairpin else [])
        msg = ifinfmsg()
        msg["index"] = index
        msg["attrs"] = ([("IFLA_IFNAME", name)] if name and not index else []) + [("IFLA_LINKINFO", {"attrs": [
            ("IFLA_INFO_SLAVE_KIND", "bridge"),
            ("IFLA_INFO_SLAVE_DATA", {"attrs": data}),
        ]})]
        self._request(msg, RTM_NEWLINK)

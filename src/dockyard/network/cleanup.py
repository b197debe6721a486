"""Remove everything a daemon with a given bridge made on the host.

For tests and uninstall: works from host state alone (no database), and
touches only what carries that daemon's names: the bridge and its `dy*`
ports, the bridges of its user-defined networks (tagged with an alias naming
that bridge) and their ports, the nft tables named after the bridge,
iptables rules tagged with the bridges' comments, and namespace files under
its exec root.
"""
from __future__ import annotations

import logging
import os

from pyroute2 import IPRoute

from dockyard import linux
from dockyard.network import firewall, links, netns, nft
from dockyard.network.hostsetup import VETH_PREFIX, user_bridge_alias

log = logging.getLogger(__name__)


def purge(bridge: str, exec_root: str | None = None) -> None:
    """Every step is attempted even if an earlier one fails; the first failure is raised."""
    errors: list[Exception] = []

    def attempt(fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:
            log.warning("purge %s: %s%r failed: %s", bridge, fn.__name__, args, e)
            errors.append(e)

    if exec_root is not None:
        attempt(_remove_netns_files, os.path.join(exec_root, "netns"))
    for user_bridge in _user_bridges(bridge):
        attempt(_remove_links, user_bridge, True)
        attempt(firewall.remove_forward_accept, user_bridge)
    attempt(_remove_user_tables, bridge)
    attempt(_remove_links, bridge)
    attempt(firewall.remove_nat, bridge)
    attempt(nft.delete_table, firewall.table_name(bridge), "ip6")   # the default bridge's IPv6 (--ipv6)
    attempt(nft.delete_table, firewall.table_name(bridge) + "-ports")
    attempt(nft.delete_table, firewall.table_name(bridge) + "-ports", "ip6")
    attempt(firewall.remove_forward_accept, bridge)
    if errors:
        raise errors[0]


def _remove_netns_files(directory: str) -> None:
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        netns.remove(os.path.join(directory, name))
    linux.umount(directory)      # the daemon's mount of it (linux.mount_dir), if there
    os.rmdir(directory)


def _user_bridges(bridge: str) -> list[str]:
    """Bridges of the daemon's user-defined networks: they carry its alias."""
    alias = user_bridge_alias(bridge)
    with IPRoute() as ipr:
        return [link.get("ifname") for link in ipr.get_links() if link.get("ifalias") == alias]


def _remove_user_tables(bridge: str) -> None:
    prefix = firewall.network_table(bridge, "")
    for family in ("ip", "ip6"):   # IPv6 networks have an ip6 table of the same name
        for table in nft.list_tables(family):
            if table.startswith(prefix):
                nft.delete_table(table, family)


def _remove_links(bridge: str, user_network: bool = False) -> None:
    with IPRoute() as ipr:
        # Deleting a bridge only detaches its ports, so delete our veths first,
        # and those disconnect already detached that the kernel has not reaped.
        ours = [p for p in links.ports_of(ipr, bridge) if p.startswith(VETH_PREFIX)]
        stale = [] if user_network else links.stale_veths(ipr, bridge)   # tagged with the daemon's bridge
        for name in ours + stale:
            links.delete_link(ipr, name)
        idx = links.index_of(ipr, bridge)
        if idx is None:
            return
        if ipr.get_links(idx)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "bridge":
            log.warning("purge: %s is not a bridge; left alone", bridge)
            return
        links.delete_link(ipr, bridge)

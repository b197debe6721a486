"""Remove everything a daemon with a given bridge made on the host.

For tests and uninstall: works from host state alone (no database), and
touches only what carries that daemon's names: the bridge and its `dy*`
ports, the nft table named after the bridge, iptables rules tagged with the
bridge's comment, and namespace files under its exec root.
"""
from __future__ import annotations

import logging
import os

from pyroute2 import IPRoute

from dockyard.network import firewall, links, netns
from dockyard.network.manager import VETH_PREFIX

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
    attempt(_remove_links, bridge)
    attempt(firewall.remove_nat, bridge)
    attempt(firewall.remove_forward_accept, bridge)
    if errors:
        raise errors[0]


def _remove_netns_files(directory: str) -> None:
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        netns.remove(os.path.join(directory, name))
    os.rmdir(directory)


def _remove_links(bridge: str) -> None:
    with IPRoute() as ipr:
        # Deleting a bridge only detaches its ports, so delete our veths first,
        # and those disconnect already detached that the kernel has not reaped.
        ours = [p for p in links.ports_of(ipr, bridge) if p.startswith(VETH_PREFIX)]
        for name in ours + links.stale_veths(ipr, bridge):
            links.delete_link(ipr, name)
        idx = links.index_of(ipr, bridge)
        if idx is None:
            return
        if ipr.get_links(idx)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "bridge":
            log.warning("purge: %s is not a bridge; left alone", bridge)
            return
        links.delete_link(ipr, bridge)

"""A container's host-side veth carries no IPv6 stack of its own (it is a
bridge port): no link-local address, no routes in the host's IPv6 table,
which every interface change walks. IPv6 between containers is bridged all
the same (test_ipv6_networks.py)."""
from __future__ import annotations

import os
import secrets
import subprocess

import leaks


def _ports(bridge: str) -> list[str]:
    return [n for n, _b, master in leaks.parse_ip_link_json(
        subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout) if master == bridge]


def test_the_host_side_veth_has_no_ipv6(daemon, bb_image):
    if not os.path.exists("/proc/sys/net/ipv6"):
        import pytest
        pytest.skip("a kernel without IPv6")
    name = f"hv-{secrets.token_hex(3)}"
    before = set(_ports(daemon.bridge))
    daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "1000")
    try:
        (veth,) = set(_ports(daemon.bridge)) - before
        with open(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6") as f:
            assert f.read().strip() == "1"
        routes = subprocess.run(["ip", "-6", "route", "show", "table", "all", "dev", veth],
                                capture_output=True, text=True).stdout
        assert routes.strip() == ""
        # still a working port: the container reaches its gateway
        gw = daemon.docker("inspect", "-f", "{{.NetworkSettings.Gateway}}", name).stdout.strip()
        assert daemon.docker("exec", name, "ping", "-c1", "-W2", gw).returncode == 0
    finally:
        daemon.docker("rm", "-f", name, check=False)

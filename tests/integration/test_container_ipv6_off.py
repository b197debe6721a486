"""On a network without IPv6 the container's interface has no IPv6, as
dockerd's (20.10 turns IPv6 off in the whole namespace, 26+ on that
interface): no link-local address, hence no DAD, router solicitations or
MLD reports flooded to every port of the bridge at each start (with 1000
containers on one network, that was O(N) work per start and O(N^2) in a
burst). Loopback keeps ::1; an interface on an IPv6 network, or given an
IPv6 link-local address, keeps IPv6; `--sysctl` can turn it back on."""
from __future__ import annotations

import os
import secrets

import pytest


def _v6(daemon, name: str, iface: str) -> tuple[str, str]:
    out = daemon.docker("exec", name, "sh", "-c",
                        f"cat /proc/sys/net/ipv6/conf/{iface}/disable_ipv6; ip -6 addr show dev {iface}").stdout
    flag, _, addrs = out.partition("\n")
    return flag.strip(), addrs


@pytest.fixture(autouse=True)
def _kernel_ipv6():
    if not os.path.exists("/proc/sys/net/ipv6"):
        pytest.skip("a kernel without IPv6")


def test_ipv4_only_networks_give_no_ipv6(daemon, bb_image):
    tag = secrets.token_hex(3)
    name, v6net, v4net = f"v6off-{tag}", f"v6on-{tag}", f"v4b-{tag}"
    daemon.docker("network", "create", "--ipv6", "--subnet", f"fd00:{int(tag[:4], 16):x}::/64", v6net)
    daemon.docker("network", "create", v4net)
    try:
        daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "1000")
        flag, addrs = _v6(daemon, name, "eth0")
        assert flag == "1" and "inet6" not in addrs, addrs
        assert "inet6 ::1/128" in daemon.docker("exec", name, "ip", "-6", "addr", "show", "dev", "lo").stdout
        daemon.docker("network", "connect", v6net, name)      # eth1: an IPv6 network keeps it
        flag, addrs = _v6(daemon, name, "eth1")
        assert flag == "0" and "inet6 fd00:" in addrs and "inet6 fe80:" in addrs, addrs
        daemon.docker("network", "connect", v4net, name)      # eth2: another IPv4-only one has none
        flag, addrs = _v6(daemon, name, "eth2")
        assert flag == "1" and "inet6" not in addrs, addrs
        # still a working IPv4 interface
        gw = daemon.docker("inspect", "-f", "{{.NetworkSettings.Gateway}}", name).stdout.strip()
        assert daemon.docker("exec", name, "ping", "-c1", "-W2", gw).returncode == 0
    finally:
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("network", "rm", v6net, v4net, check=False)


def test_sysctl_turns_it_back_on(daemon, bb_image):
    out = daemon.docker("run", "--rm", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0", bb_image,
                        "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6").stdout
    assert out.strip() == "0"


def test_a_start_on_two_ipv4_networks_has_no_ipv6_on_either(daemon, bb_image):
    """eth1 of a start (a network connected while stopped) as eth0: netlink
    before it is up, then the runtime's sysctl from the spec."""
    tag = secrets.token_hex(3)
    name, net = f"v6two-{tag}", f"v4two-{tag}"
    daemon.docker("network", "create", net)
    try:
        daemon.docker("create", "--name", name, bb_image, "sleep", "1000")
        daemon.docker("network", "connect", net, name)
        daemon.docker("start", name)
        for iface in ("eth0", "eth1"):
            flag, addrs = _v6(daemon, name, iface)
            assert flag == "1" and "inet6" not in addrs, (iface, addrs)
    finally:
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("network", "rm", net, check=False)

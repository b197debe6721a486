"""Networks on a host whose firewall drops by default (what dockerd leaves behind:
FORWARD policy DROP; many hosts: INPUT DROP too).

The daemon runs in a network namespace of its own, made by this module, with
those policies set before it starts; nothing on the real host's firewall
changes. Its narrow, tagged accepts must let published ports, traffic between
networks through DNAT, and DNS work, and go away with their network.
"""
from __future__ import annotations

import ctypes
import json
import os
import secrets
import subprocess

import pytest

import leaks
from conftest import Daemon, shut_down
from test_networks import free_subnet, uname

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/busybox"), reason="needs busybox on the host")


class FirewalledDaemon(Daemon):
    """dockyardd inside its own netns (a bind-mounted file under its base) with DROP policies."""

    @property
    def netns(self) -> str:
        return str(self.base / "host-netns")

    def in_netns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net={self.netns}", "--", *argv], capture_output=True, text=True,
                              check=check, timeout=30)

    def argv(self) -> list[str]:
        return ["nsenter", f"--net={self.netns}", "--", *super().argv()]

    def start(self, timeout: float = 30.0) -> None:
        if not os.path.exists(self.netns):
            open(self.netns, "w").close()
            subprocess.run(["unshare", f"--net={self.netns}", "true"], check=True)
            self.in_netns("ip", "link", "set", "lo", "up")
            self.in_netns("iptables", "-w", "-P", "FORWARD", "DROP")
            self.in_netns("iptables", "-w", "-P", "INPUT", "DROP")
            # what any host with INPUT DROP has: loopback and its own connections' replies
            self.in_netns("iptables", "-w", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
            self.in_netns("iptables", "-w", "-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                          "-j", "ACCEPT")
        super().start(timeout)

    def stop(self, *a, **kw) -> None:
        super().stop(*a, **kw)
        if os.path.exists(self.netns):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.umount2(self.netns.encode(), 2)   # MNT_DETACH
            os.unlink(self.netns)


@pytest.fixture(scope="module")
def fw(request, tmp_path_factory, busybox_tar):
    d = FirewalledDaemon(runtime=request.config.getoption("dockyard_runtime"),
                         log_path=tmp_path_factory.mktemp("dockyardd") / "dockyardd.log")
    before = None if request.config.getoption("no_leak_check") else leaks.snapshot(d.scope)
    try:
        d.start()
        d.docker("import", str(busybox_tar), "bb")
        yield d
    finally:
        errors, _ = shut_down(d, before, False)
        if errors:
            pytest.fail("teardown:\n" + "\n".join(errors), pytrace=False)


def test_published_ports_dns_and_dnat_between_networks_under_drop_policies(fw):
    assert "-P FORWARD DROP" in fw.in_netns("iptables", "-S", "FORWARD").stdout
    net, web = uname("fw"), uname("web")
    fw.docker("network", "create", "--subnet", free_subnet(), net)
    bridge = "br-" + json.loads(fw.docker("network", "inspect", net).stdout)[0]["Id"][:12]
    port = 20000 + secrets.randbelow(10000)
    fw.docker("run", "-d", "--name", web, "--network", net, "-p", f"{port}:80", "bb", "sh", "-c",
              "mkdir -p /www && echo fw > /www/index.html && httpd -f -p 80 -h /www")
    try:
        # DNS to the gateway (INPUT) and traffic on the network
        r = fw.docker("run", "--rm", "--network", net, "bb", "sh", "-c",
                      f"for i in $(seq 100); do wget -qO- http://{web}/ && exit 0; sleep 0.05; done; exit 1")
        assert r.stdout.strip() == "fw"
        # the host itself, on loopback (OUTPUT DNAT)
        r = fw.in_netns("timeout", "10", "busybox", "wget", "-qO-", f"http://127.0.0.1:{port}/")
        assert r.stdout.strip() == "fw"
        # from the default bridge, as another host would (FORWARD between bridges after DNAT)
        gw = json.loads(fw.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
        r = fw.docker("run", "--rm", "bb", "wget", "-qO-", f"http://{gw}:{port}/")
        assert r.stdout.strip() == "fw"
        tagged = fw.in_netns("iptables", "-S").stdout
        assert f"dockyard:{bridge}" in tagged and f"dockyard:{fw.bridge}" in tagged
    finally:
        fw.docker("rm", "-f", web)
    fw.docker("network", "rm", net)
    assert f"dockyard:{bridge}" not in fw.in_netns("iptables", "-S").stdout

"""Bridge driver options applied, not just shown: com.docker.network.driver.mtu (bridge and
veths), com.docker.network.bridge.enable_ip_masquerade=false (no masquerade rule for the
network), com.docker.network.bridge.host_binding_ipv4 (where -p binds by default); bad values
refused with Docker's words, nothing made."""
from __future__ import annotations

import json
import subprocess

from dockyard.network import firewall
from test_networks import free_port, free_subnet, http_get, uname


def test_mtu_masquerade_and_host_binding_are_applied(daemon, bb_image):
    net, web = uname("opt"), uname("web")
    daemon.docker("network", "create", "--subnet", free_subnet(), "-o", "com.docker.network.driver.mtu=1400",
                  "-o", "com.docker.network.bridge.enable_ip_masquerade=false",
                  "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", net)
    bridge = "br-" + json.loads(daemon.docker("network", "inspect", net).stdout)[0]["Id"][:12]
    port = free_port()
    try:
        daemon.docker("run", "-d", "--name", web, "--network", net, "-p", f"{port}:80", bb_image, "sh", "-c",
                      "mkdir -p /www && echo opts > /www/index.html && httpd -f -p 80 -h /www")
        assert daemon.docker("port", web).stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "opts"
        inside = daemon.docker("exec", web, "cat", "/sys/class/net/eth0/mtu").stdout.strip()
        assert inside == "1400"
        assert open(f"/sys/class/net/{bridge}/mtu").read().strip() == "1400"
        table = firewall.network_table(daemon.bridge, bridge)
        rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True,
                               check=True).stdout
        assert f'comment "{firewall.rule_comment(bridge)}"' not in rules   # no outbound masquerade
        assert "ct status dnat masquerade" in rules                          # hairpin still works
    finally:
        daemon.docker("rm", "-f", web, check=False)
        daemon.docker("network", "rm", net)
    # the defaults: masqueraded, all addresses
    plain = uname("plain")
    daemon.docker("network", "create", "--subnet", free_subnet(), plain)
    try:
        bridge = "br-" + json.loads(daemon.docker("network", "inspect", plain).stdout)[0]["Id"][:12]
        rules = subprocess.run(["nft", "list", "table", "ip", firewall.network_table(daemon.bridge, bridge)],
                               capture_output=True, text=True, check=True).stdout
        assert f'comment "{firewall.rule_comment(bridge)}"' in rules
    finally:
        daemon.docker("network", "rm", plain)


def test_bad_option_values_are_refused_and_nothing_is_made(daemon):
    before = daemon.docker("network", "ls", "-q").stdout.split()
    for opt, words in [("com.docker.network.driver.mtu=abc", 'parsing "abc": invalid syntax'),
                       ("com.docker.network.driver.mtu=10", "invalid MTU number: 10"),
                       ("com.docker.network.bridge.enable_ip_masquerade=maybe", 'parsing "maybe": invalid syntax'),
                       ("com.docker.network.bridge.host_binding_ipv4=nope", "host_binding_ipv4")]:
        r = daemon.docker("network", "create", "-o", opt, uname("bad"), check=False)
        assert r.returncode != 0 and words in r.stderr, (opt, r.stderr)
    assert daemon.docker("network", "ls", "-q").stdout.split() == before

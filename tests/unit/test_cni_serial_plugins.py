"""Plugins that make shared iptables chains (portmap, firewall) check for a
chain and then create it, so two at once can collide ("CHAIN_USER_ADD
failed (File exists)"): the CNI client runs them one at a time, and any
other plugin side by side."""
from __future__ import annotations

import os
import threading
import time

from dockyard.network import cni

PLUGIN = """#!/bin/sh
echo "start $(date +%s.%N)" >> "{log}.$$"
sleep 0.3
echo "end $(date +%s.%N)" >> "{log}.$$"
echo '{{"cniVersion": "1.0.0"}}'
"""


def _intervals(tmp_path, ptype: str, n: int = 3) -> list[tuple[float, float]]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = tmp_path / f"log-{ptype}"
    plugin = bindir / ptype
    plugin.write_text(PLUGIN.format(log=log))
    plugin.chmod(0o755)
    client = cni.CNI([str(bindir)], str(tmp_path / "conf"), str(tmp_path / "cache"), loopback=False)
    net = cni.NetworkConfigList("n", "1.0.0", ({"type": ptype},))

    def add(i: int) -> None:
        client._exec(net, 0, "ADD", cni.RuntimeConf(f"c{i}", "/proc/self/ns/net", "eth0"), None)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    spans = []
    for name in os.listdir(tmp_path):
        if name.startswith(f"log-{ptype}."):
            marks = dict(line.split() for line in (tmp_path / name).read_text().splitlines())
            spans.append((float(marks["start"]), float(marks["end"])))
    assert len(spans) == n
    return sorted(spans)


def _overlaps(spans: list[tuple[float, float]]) -> bool:
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


def test_portmap_and_firewall_run_one_at_a_time(tmp_path):
    for ptype in ("portmap", "firewall"):
        assert ptype in cni.SERIAL_PLUGIN_TYPES
        assert not _overlaps(_intervals(tmp_path, ptype))


def test_other_plugins_run_side_by_side(tmp_path):
    t0 = time.monotonic()
    assert _overlaps(_intervals(tmp_path, "tuning"))
    assert time.monotonic() - t0 < 0.85      # three 0.3 s plugins, not one after another

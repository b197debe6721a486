"""The private reference dockerd harness (tests/refdockerd.py) itself: it runs
what the differential tests need, and stop() leaves nothing on the host,
also after dockerd and its containerd crashed with containers running.

Skipped where dockerd is not installed (or does not start)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest

import leaks
import refdockerd


@pytest.fixture
def fresh(busybox_tar, tmp_path):
    """A private dockerd of the test's own (stopped by the test)."""
    reason = refdockerd.unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        d = refdockerd.start_private_dockerd(image_tar=busybox_tar, log_dir=tmp_path)
    except refdockerd.Unavailable as e:
        pytest.skip(f"private dockerd did not start: {e}")
    try:
        yield d
    finally:
        if d.base.exists():
            d.stop()


def host_state(d: refdockerd.RefDockerd) -> dict:
    """Everything of d's that can be on the host."""
    links = [n for n, _b, master in leaks.parse_ip_link_json(
        subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout)
        if n == d.bridge or master == d.bridge]
    return {
        "processes": sorted(leaks.find_processes(d.scope.needles) | d.proxies()),
        "mounts": leaks.mounts_under(d.scope.roots),
        "links": links,
        "cgroups": d.cgroup_dirs(),
        "shim sockets": [s for s in d.shim_sockets() if os.path.lexists(s)],
        "base": d.base.exists(),
    }


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_what_the_differential_tests_need(fresh):
    d = fresh
    port = free_port()
    d.docker("network", "create", "hn")
    d.docker("volume", "create", "hv")
    d.docker("run", "-d", "--name", "web", "--network", "hn", "--network-alias", "www", "-v", "hv:/v",
             "-p", f"127.0.0.1:{port}:80", "bb", "httpd", "-f", "-p", "80", "-h", "/")
    # published through docker-proxy (--iptables=false)
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            break
        except urllib.error.HTTPError:
            break          # httpd answered (404 for /: no index)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert d.docker("run", "--rm", "--network", "hn", "bb", "ping", "-c1", "-W2", "www").returncode == 0
    assert d.docker("exec", "web", "id").stdout.strip() == "uid=0(root) gid=0(root) groups=0(root),10(wheel)"
    info = d.client().info()
    assert info["CgroupDriver"] == "cgroupfs" and info["DockerRootDir"] == str(d.data_root)
    d.docker("run", "-d", "--restart", "always", "--name", "rs", "bb", "sleep", "1000")
    assert host_state(d)["processes"]                      # it is all there ...
    hn_bridge = "br-" + d.docker("network", "inspect", "-f", "{{.Id}}", "hn").stdout.strip()[:12]
    assert os.path.exists(f"/sys/class/net/{hn_bridge}")
    problems = d.stop()
    assert problems == []
    # dockerd keeps its user networks' bridges at shutdown: stop() removes them
    assert not os.path.exists(f"/sys/class/net/{hn_bridge}")
    left = host_state(d)
    assert left == {"processes": [], "mounts": [], "links": [], "cgroups": [], "shim sockets": [], "base": False}


def test_nothing_left_after_a_crash(fresh):
    """dockerd and containerd SIGKILLed with containers running: stop() kills
    the shims and containers, unmounts, deletes the bridge, cgroups and shim
    sockets, and says what it had to clean."""
    d = fresh
    d.docker("run", "-d", "--name", "c1", "-p", "127.0.0.1::80", "bb", "sleep", "1000")
    d.docker("run", "-d", "--name", "c2", "bb", "sleep", "1000")
    assert host_state(d)["shim sockets"]
    assert d.proxies()
    for p in (d.proc, d.containerd):
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    problems = d.stop()
    assert any(p.startswith("processes left after stop (killed)") for p in problems), problems
    assert any("containerd-shim" in p for p in problems), problems
    left = host_state(d)
    assert left == {"processes": [], "mounts": [], "links": [], "cgroups": [], "shim sockets": [], "base": False}

"""dockerd's default address pools on a real dockyardd: user networks without
--subnet take consecutive subnets of the pool, --ipv6 networks /64s of its
IPv6 pool, the default bridge (no --bip) the first one; an exhausted pool is
moby 28's 400 with nothing half-made; bad pools fail the start with dockerd's
words; SIGHUP leaves the pools for the next start."""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest
from pyroute2 import IPRoute

from conftest import Daemon, free_net, running_daemon, unique_name, venv_script

EXHAUSTED = "all predefined address pools have been fully subnetted"


def _pool16() -> ipaddress.IPv4Network:
    """A 10.(30-89).0.0/16 nothing on the host uses (the harness' own ranges are 100+)."""
    return free_net(range(30, 90), 16)


def _pool6() -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((int.from_bytes(b"\xfd" + secrets.token_bytes(5) + bytes(10), "big"), 48))


class NoBipDaemon(Daemon):
    """A dockyardd without --bip: its default bridge takes its subnet from the pools."""

    def argv(self) -> list[str]:
        argv = super().argv()
        i = argv.index("--bip")
        return argv[:i] + argv[i + 2:]


@pytest.fixture(scope="module")
def pools():
    return _pool16(), _pool6()


@pytest.fixture(scope="module")
def pool_daemon(request, tmp_path_factory, pools):
    v4, v6 = pools
    yield from running_daemon(request, tmp_path_factory, label="pools", make=NoBipDaemon, extra_args=(
        "--default-address-pool", f"base={v4},size=24", "--default-address-pool", f"base={v6},size=64"))


def _subnets(d: Daemon, name: str) -> list[str]:
    out = d.docker("network", "inspect", "--format", "{{json .IPAM.Config}}", name).stdout
    return [c["Subnet"] for c in json.loads(out)]


def _bridges() -> set[str]:
    with IPRoute() as ipr:
        return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                if link.get_attr("IFLA_IFNAME", "").startswith("br-")}


def test_networks_take_consecutive_subnets_of_the_pool(pool_daemon, pools):
    v4, v6 = pools
    d = pool_daemon
    cut = list(v4.subnets(new_prefix=24))
    info = json.loads(d.docker("info", "--format", "{{json .DefaultAddressPools}}").stdout)
    assert info == [{"Base": str(v4), "Size": 24}, {"Base": str(v6), "Size": 64}]
    assert "Default Address Pools:" in d.docker("info").stdout
    # the default bridge took the first /24 (no --bip), user networks the next ones
    assert _subnets(d, "bridge") == [str(cut[0])]
    names = [unique_name(), unique_name()]
    try:
        for n in names:
            d.docker("network", "create", n)
        assert [_subnets(d, n) for n in names] == [[str(cut[1])], [str(cut[2])]]
        d.docker("network", "rm", names[0])
        names.pop(0)
        third = unique_name()
        names.append(third)
        d.docker("network", "create", third)   # the freed one comes back first
        assert _subnets(d, third) == [str(cut[1])]
    finally:
        d.docker("network", "rm", *names, check=False)


def test_ipv6_networks_take_64s_of_the_ipv6_pool(pool_daemon, pools, busybox_tar):
    v4, v6 = pools
    d = pool_daemon
    cut = v6.subnets(new_prefix=64)
    want = [next(cut), next(cut)]
    names = [unique_name(), unique_name()]
    try:
        for n in names:
            d.docker("network", "create", "--ipv6", n)
        got = [_subnets(d, n) for n in names]
        assert [g[1] for g in got] == [str(w) for w in want]
        assert all(ipaddress.ip_network(g[0]).subnet_of(v4) for g in got)
        six_only = unique_name()
        names.append(six_only)
        d.docker("network", "create", "--ipv6", "--ipv4=false", six_only)
        assert _subnets(d, six_only) == [str(ipaddress.IPv6Network((int(want[1].network_address) + (1 << 64), 64)))]
        # a container on it gets its address from that /64
        d.docker("import", str(busybox_tar), "bb")
        c = unique_name()
        d.docker("run", "-d", "--name", c, "--network", six_only, "bb", "sleep", "300")
        addr = d.docker("inspect", "--format", "{{(index .NetworkSettings.Networks \"%s\").GlobalIPv6Address}}"
                        % six_only, c).stdout.strip()
        d.docker("rm", "-f", c)
        assert ipaddress.ip_address(addr) in ipaddress.ip_network(_subnets(d, six_only)[0])
    finally:
        d.docker("network", "rm", *names, check=False)


@pytest.fixture
def tiny_pool_daemon(request, tmp_path_factory):
    base = free_net(range(30, 90), 24)
    gen = running_daemon(request, tmp_path_factory, label="tinypool",
                         extra_args=("--default-address-pool", f"base={base},size=24"))
    d = next(gen)
    yield d, base
    with pytest.raises(StopIteration):
        next(gen)


def test_an_exhausted_pool_is_mobys_400_and_leaves_nothing(tiny_pool_daemon):
    d, base = tiny_pool_daemon
    first, second = unique_name(), unique_name()
    try:
        d.docker("network", "create", first)
        assert _subnets(d, first) == [str(base)]
        bridges = _bridges()
        r = d.docker("network", "create", second, check=False)
        assert r.returncode != 0
        assert f"Error response from daemon: {EXHAUSTED}" in r.stderr, r.stderr
        status, body = d.api("POST", "/networks/create", {"Name": second})
        assert status == 400 and json.loads(body)["message"] == EXHAUSTED
        assert _bridges() == bridges
        assert second not in d.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        # asking for a subnet still works: the pools only serve networks without one
        d.docker("network", "create", "--subnet", str(free_net(range(100, 190), 24)), second)
    finally:
        d.docker("network", "rm", first, second, check=False)


def _dockyardd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    exe = venv_script("dockyardd") or [sys.executable, "-m", "dockyard.dockyardd"]
    return subprocess.run([*exe, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("pool, words", [
    ("base=10.0.0.0/16,size=8", "Error initializing network controller: error obtaining controller instance: "
     "could not construct local address space: network at index 0 (&{10.0.0.0/16 8}) has a smaller prefix "
     "(/16) than the target size of that pool (/8)"),
    ("base=10.0.0.0/16,size=33", "network at index 0 (&{10.0.0.0/16 33}) is not in canonical form"),
    ("base=10.0.0.0/16,size=24,colour=red",
     "invalid argument \"base=10.0.0.0/16,size=24,colour=red\" for \"--default-address-pool\" flag: "
     "unexpected key 'colour' in 'colour=red'"),
    ("base=10.0.0/16,size=24", 'invalid base prefix "10.0.0/16"'),
])
def test_bad_pools_fail_the_start_with_dockerds_words(tmp_path, pool, words):
    sock = tmp_path / "d.sock"
    r = _dockyardd("-H", f"unix://{sock}", "--data-root", str(tmp_path / "data"), "--exec-root",
                   str(tmp_path / "exec"), "--bridge", unique_name(), "--default-address-pool", pool)
    assert r.returncode != 0
    assert words in r.stderr, r.stderr
    assert not sock.exists() and not (tmp_path / "exec").exists()


def test_a_pool_given_as_flag_and_in_the_file_is_refused(tmp_path):
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps({"default-address-pools": [{"base": "10.0.0.0/8", "size": 24}]}))
    r = _dockyardd("--config-file", str(f), "-H", f"unix://{tmp_path / 'd.sock'}", "--data-root",
                   str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"), "--bridge", unique_name(),
                   "--default-address-pool", "base=10.1.0.0/16,size=24")
    assert r.returncode != 0
    assert ("the following directives are specified both as a flag and in the configuration file: "
            "default-address-pools: (from flag: [base=10.1.0.0/16,size=24], from file: ") in r.stderr, r.stderr


class FilePoolDaemon(Daemon):
    """Pools from its daemon.json (the rest from the flags), for SIGHUP."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.config_file = self.base / "daemon.json"

    def argv(self) -> list[str]:
        return [*super().argv(), "--config-file", str(self.config_file)]


def test_sighup_keeps_the_pools_for_the_next_start(request, tmp_path_factory):
    base = free_net(range(30, 90), 24)
    made: list[FilePoolDaemon] = []

    def make(**kw):
        d = FilePoolDaemon(**kw)
        d.config_file.parent.mkdir(parents=True, exist_ok=True)
        d.config_file.write_text(json.dumps({"default-address-pools": [{"base": str(base), "size": 25}]}))
        made.append(d)
        return d
    gen = running_daemon(request, tmp_path_factory, label="hup", make=make)
    d = next(gen)
    try:
        d.config_file.write_text(json.dumps({"default-address-pools": [{"base": str(base), "size": 26}]}))
        os.kill(d.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "default-address-pools changed" not in d.log_path.read_text():
            assert time.monotonic() < deadline, d.log_tail()
            time.sleep(0.1)
        assert "it takes effect at the next start" in d.log_path.read_text()
        assert json.loads(d.docker("info", "--format", "{{json .DefaultAddressPools}}").stdout) == \
            [{"Base": str(base), "Size": 25}]
        n = unique_name()
        d.docker("network", "create", n)
        assert _subnets(d, n) == [str(next(base.subnets(new_prefix=25)))]
        d.docker("network", "rm", n)
    finally:
        with pytest.raises(StopIteration):
            next(gen)


def test_a_default_bridge_with_no_subnet_left_fails_the_start(tmp_path):
    from conftest import used_ipv4_nets
    host = next((n for n in used_ipv4_nets() if 8 <= n.prefixlen <= 30 and not n.is_loopback), None)
    if host is None:
        pytest.skip("no routed IPv4 network on this host to exhaust a pool with")
    bridge = unique_name()
    r = _dockyardd("-H", f"unix://{tmp_path / 'd.sock'}", "--data-root", str(tmp_path / "data"), "--exec-root",
                   str(tmp_path / "exec"), "--bridge", bridge,
                   "--default-address-pool", f"base={host},size={host.prefixlen}")
    assert r.returncode != 0
    assert f"dockyardd: failed to start daemon: {EXHAUSTED}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    with IPRoute() as ipr:
        assert not ipr.link_lookup(ifname=bridge)
    # nor a mount: the data root's rootfs/ mount of its own goes with the failed start
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if str(tmp_path) in line.split()[4]]

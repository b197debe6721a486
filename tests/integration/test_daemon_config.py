"""daemon.json as dockerd reads it: the same `docker info` as the flags,
dockerd's refusals, SIGHUP reloading what dockerd reloads (containers keep
running), default ulimits, and a registry mirror serving Docker Hub names."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Daemon, running_daemon, unique_name, venv_script
from registry_util import LocalRegistry, REGISTRY_BIN


def _info(d: Daemon) -> dict:
    return json.loads(d.docker("info", "--format", "{{json .}}").stdout)


def _dockyardd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    exe = venv_script("dockyardd") or [sys.executable, "-m", "dockyard.dockyardd"]
    return subprocess.run([*exe, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class FileDaemon(Daemon):
    """A dockyardd whose hosts, data root and the rest come from its daemon.json."""

    def __init__(self, settings: dict, **kw):
        super().__init__(**kw)
        self.config_file = self.base / "daemon.json"
        doc = {"hosts": [self.host], "data-root": str(self.data_root), "exec-root": str(self.exec_root),
               "pidfile": str(self.pidfile), "default-runtime": self.runtime, "bridge": self.bridge,
               "bip": self.bip, "log-level": "debug", "cgroup-parent": f"dockyard-{self.bridge}"}
        doc.update(settings)
        self.config_file.write_text(json.dumps(doc, indent=2))

    def argv(self) -> list[str]:
        exe = venv_script("dockyardd") or [sys.executable, "-m", "dockyard.dockyardd"]
        return [*exe, "--config-file", str(self.config_file)]


@pytest.fixture
def file_daemon(request, tmp_path_factory):
    """Factory: a started FileDaemon with the given settings (leak-checked)."""
    gens = []

    def make(settings: dict) -> Daemon:
        gen = running_daemon(request, tmp_path_factory, label="filed",
                             make=lambda **kw: FileDaemon(settings, **kw))
        d = next(gen)
        gens.append(gen)
        return d
    yield make
    for gen in gens:
        with pytest.raises(StopIteration):
            next(gen)


SETTINGS = {"labels": ["tier=edge", "zone=b"], "insecure-registries": ["10.9.8.7:5000"],
            "log-opts": {"max-size": "1m", "max-file": "2"}}


def _view(info: dict) -> dict:
    reg = info["RegistryConfig"]
    return {"Labels": info["Labels"], "Insecure": sorted(reg["IndexConfigs"]), "Mirrors": reg["Mirrors"],
            "LoggingDriver": info["LoggingDriver"], "Debug": info["Debug"]}


def test_the_file_gives_the_same_info_as_the_flags(request, tmp_path_factory, file_daemon, busybox_tar):
    from_file = file_daemon(SETTINGS)
    gen = running_daemon(request, tmp_path_factory, label="flags", extra_args=(
        "--label", "tier=edge", "--label", "zone=b", "--insecure-registry", "10.9.8.7:5000",
        "--log-opt", "max-size=1m", "--log-opt", "max-file=2"))
    from_flags = next(gen)
    try:
        a, b = _info(from_file), _info(from_flags)
        assert _view(a) == _view(b)
        assert a["Labels"] == ["tier=edge", "zone=b"]
        assert "10.9.8.7:5000" in a["RegistryConfig"]["IndexConfigs"]
        assert a["DockerRootDir"] == str(from_file.data_root)
        for d in (from_file, from_flags):
            d.docker("import", str(busybox_tar), "bb")
            cid = d.docker("create", "bb", "true").stdout.strip()
            log_cfg = json.loads(d.docker("inspect", "--format", "{{json .HostConfig.LogConfig}}", cid).stdout)
            assert log_cfg == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
            d.docker("rm", cid)
    finally:
        with pytest.raises(StopIteration):
            next(gen)


@pytest.mark.parametrize("content,flags,words", [
    ('{"debug": true}', ["-D"], "the following directives are specified both as a flag and in the "
                                "configuration file: debug: (from flag: true, from file: true)"),
    ('{"labels": ["a=b"], "colour": "red"}', [], "the following directives don't match any "
                                                 "configuration option: colour"),
    ('{"labels": ["a=b"],\n "debug": tru}', [], "syntax error at line 2, column 11"),
    ('{"max-concurrent-downloads": "3"}', [], "invalid value for 'max-concurrent-downloads': want an integer"),
])
def test_a_bad_file_fails_the_start_with_dockerds_message(tmp_path, content, flags, words):
    f = tmp_path / "daemon.json"
    f.write_text(content)
    sock = tmp_path / "d.sock"
    r = _dockyardd("--config-file", str(f), "-H", f"unix://{sock}", "--data-root", str(tmp_path / "data"),
                   "--exec-root", str(tmp_path / "exec"), "--bridge", unique_name(), *flags)
    assert r.returncode != 0
    assert f"unable to configure the Docker daemon with file {f}: " in r.stderr, r.stderr
    assert words in r.stderr, r.stderr
    assert not sock.exists() and not (tmp_path / "exec").exists()


def test_sighup_reloads_labels_and_debug_without_touching_containers(file_daemon, busybox_tar):
    d = file_daemon({"labels": ["gen=1"], "debug": False, "log-level": "info"})
    d.docker("import", str(busybox_tar), "bb")
    name = unique_name()
    d.docker("run", "-d", "--name", name, "bb", "sleep", "300")
    pid_before = d.docker("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    assert _info(d)["Labels"] == ["gen=1"] and _info(d)["Debug"] is False
    doc = json.loads(d.config_file.read_text())
    doc.update(labels=["gen=2", "extra=yes"], debug=True)
    d.config_file.write_text(json.dumps(doc))
    os.kill(d.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while _info(d)["Labels"] != ["gen=2", "extra=yes"]:
        assert time.monotonic() < deadline, d.log_tail()
        time.sleep(0.1)
    assert _info(d)["Debug"] is True
    assert "Reloaded configuration" in d.log_path.read_text()
    assert d.docker("inspect", "--format", "{{.State.Running}} {{.State.Pid}}", name).stdout.split() == \
        ["true", pid_before]
    # a broken file on SIGHUP changes nothing and keeps the daemon up
    d.config_file.write_text("{oops")
    os.kill(d.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    assert d.running and _info(d)["Labels"] == ["gen=2", "extra=yes"]
    assert "reload of" in d.log_path.read_text()
    d.docker("rm", "-f", name)


def test_default_ulimits_reach_containers(file_daemon, busybox_tar):
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = min(4321, hard)
    d = file_daemon({"default-ulimits": {"nofile": {"Name": "nofile", "Soft": want, "Hard": want}}})
    d.docker("import", str(busybox_tar), "bb")
    assert d.docker("run", "--rm", "bb", "sh", "-c", "ulimit -n").stdout.strip() == str(want)
    # the container's own setting wins
    assert d.docker("run", "--rm", "--ulimit", "nofile=100:100", "bb", "sh", "-c",
                    "ulimit -n").stdout.strip() == "100"


@pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason="docker-registry is not installed")
def test_a_registry_mirror_serves_docker_hub_names(file_daemon, busybox_tar):
    reg = LocalRegistry()
    try:
        d = file_daemon({"registry-mirrors": [f"http://{reg.host}"], "max-concurrent-downloads": 1})
        assert _info(d)["RegistryConfig"]["Mirrors"] == [f"http://{reg.host}"]
        d.docker("import", str(busybox_tar), "bb")
        d.docker("tag", "bb", f"{reg.host}/library/mirrored:1")
        d.docker("push", f"{reg.host}/library/mirrored:1", timeout=120)
        d.docker("rmi", f"{reg.host}/library/mirrored:1")
        # no internet here: only the mirror can answer for docker.io/library/mirrored
        r = d.docker("pull", "mirrored:1", timeout=120)
        assert "mirrored:1" in r.stdout
        assert d.docker("run", "--rm", "mirrored:1", "echo", "via-mirror").stdout == "via-mirror\n"
    finally:
        reg.stop()

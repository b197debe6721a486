"""Pause/unpause through the runtime's freezer, and live updates (docker CLI, docker-py, our CLI)."""
from __future__ import annotations

import json
import time

import docker
import pytest

from conftest import unique_name


def _status(daemon, name):
    return daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name).stdout.split()


def _cgroup_file(daemon, name, v1, v2):
    """A file of the container's memory/pids cgroup, v1 or v2."""
    import os
    cid = daemon.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    parent = f"dockyard-{daemon.bridge}"   # the test daemon's --cgroup-parent
    for base in (f"/sys/fs/cgroup/{v1[0]}/{parent}/{cid}/{v1[1]}", f"/sys/fs/cgroup/{parent}/{cid}/{v2}"):
        if os.path.exists(base):
            with open(base) as f:
                return f.read().strip()
    raise AssertionError(f"no cgroup file for {name}")


def test_cli_pause_unpause(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "bb", "sh", "-c", "while true; do date +%s%N > /tmp/t; done")
    try:
        daemon.docker("pause", name)
        assert _status(daemon, name) == ["paused", "true"]
        ps = daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
        assert ps.strip().endswith("(Paused)")
        # frozen by the runtime's freezer (v1 freezer.state, v2 cgroup.freeze)
        assert _cgroup_file(daemon, name, ("freezer", "freezer.state"), "cgroup.freeze") in ("FROZEN", "1")
        r = daemon.docker("exec", name, "true", check=False)
        assert r.returncode != 0 and "is paused, unpause the container before exec" in r.stderr
        r = daemon.docker("pause", name, check=False)
        assert r.returncode != 0 and "is already paused" in r.stderr
        st, body = daemon.api("POST", f"/containers/{name}/attach?stream=1&stdout=1")
        # moby's ContainerAttach: its words (the CLI's own check says "You cannot attach to a paused
        # container"), as text on the connection its router took over, not a JSON body
        assert (st, body) == (409, f"container {name} is paused, unpause the container before attach\r\n".encode())
        r = daemon.docker("start", name, check=False)
        assert r.returncode != 0 and "cannot start a paused container, try unpause instead" in r.stderr
        daemon.docker("unpause", name)
        assert _status(daemon, name) == ["running", "false"]
        assert _cgroup_file(daemon, name, ("freezer", "freezer.state"), "cgroup.freeze") in ("THAWED", "0")
        r = daemon.docker("unpause", name, check=False)
        assert r.returncode != 0 and "is not paused" in r.stderr
        evs = daemon.docker("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
                            "--format", "{{.Action}}").stdout.split()
        assert evs == ["create", "start", "pause", "unpause"]
    finally:
        daemon.docker("rm", "-f", name)


def test_docker_py_pause_then_stop_and_kill(daemon, bb_image):
    client = daemon.client()
    c = client.containers.run("bb", "sleep 100", detach=True, name=unique_name())
    c2 = client.containers.run("bb", "sleep 100", detach=True, name=unique_name())
    try:
        c.pause()
        c.reload()
        assert c.status == "paused" and c.attrs["State"]["Paused"] is True
        c.stop(timeout=1)                      # a paused container still stops
        c.reload()
        assert c.status == "exited"
        with pytest.raises(docker.errors.APIError) as e:
            c.pause()
        assert e.value.status_code == 409 and f"Container {c.id} is not running" in e.value.explanation
        c2.pause()
        c2.kill()
        assert c2.wait(timeout=10)["StatusCode"] == 137
    finally:
        c.remove(force=True)
        c2.remove(force=True)


def test_update_restart_policy_and_limits(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "-m", "64m", "--pids-limit", "50", "bb", "sleep", "100")
    try:
        client = daemon.client()
        c = client.containers.get(name)
        r = c.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}, mem_limit="32m",
                     memswap_limit="64m", cpu_shares=512)
        assert r == {"Warnings": []}
        c.reload()
        hc = c.attrs["HostConfig"]
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        assert hc["Memory"] == 32 * 1024 * 1024 and hc["CpuShares"] == 512 and hc["PidsLimit"] == 50
        assert int(_cgroup_file(daemon, name, ("memory", "memory.limit_in_bytes"), "memory.max")) == 32 << 20
        assert _cgroup_file(daemon, name, ("pids", "pids.max"), "pids.max") == "50"
        # the CLI too
        daemon.docker("update", "--pids-limit", "30", name)
        assert _cgroup_file(daemon, name, ("pids", "pids.max"), "pids.max") == "30"
        assert client.api.inspect_container(name)["HostConfig"]["PidsLimit"] == 30
        # bad input: Docker's errors, nothing changed
        r = daemon.docker("update", "-m", "128m", name, check=False)
        assert r.returncode != 0 and "Memory limit should be smaller than already set memoryswap limit" in r.stderr
        r = daemon.docker("update", "-m", "1m", "--memory-swap", "2m", name, check=False)
        assert r.returncode != 0 and "Minimum memory limit allowed is 6MB" in r.stderr
        r = daemon.docker("update", "--restart", "bogus", name, check=False)
        assert r.returncode != 0
        assert _cgroup_file(daemon, name, ("pids", "pids.max"), "pids.max") == "30"
        evs = daemon.docker("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
                            "--filter", "event=update", "--format", "{{.Action}}").stdout.split()
        assert evs == ["update", "update"]
    finally:
        daemon.docker("rm", "-f", name)


def test_update_lower_memory_keeps_implicit_swap_limit(daemon, bb_image):
    """`run -m 64m` sets the swap limit implicitly (twice the memory);
    `update -m 32m` is accepted, as dockerd does, and keeps that swap limit."""
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "-m", "64m", "bb", "sleep", "100")
    try:
        daemon.docker("update", "-m", "32m", name)
        hc = json.loads(daemon.docker("inspect", "-f", "{{json .HostConfig}}", name).stdout)
        assert (hc["Memory"], hc["MemorySwap"]) == (32 << 20, 128 << 20)
        assert int(_cgroup_file(daemon, name, ("memory", "memory.limit_in_bytes"), "memory.max")) == 32 << 20
        r = daemon.docker("update", "-m", "129m", name, check=False)
        assert r.returncode != 0 and "Memory limit should be smaller than already set memoryswap limit" in r.stderr
    finally:
        daemon.docker("rm", "-f", name)


def test_update_memory_under_usage_fails(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "-m", "64m", "--memory-swap", "64m", "bb", "sh", "-c",
                  "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; sleep 100")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if daemon.docker("exec", name, "ls", "/dev/shm/fill", check=False).returncode == 0:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        r = daemon.docker("update", "-m", "8m", "--memory-swap", "8m", name, check=False)
        assert r.returncode != 0 and "Cannot update container" in r.stderr
        hc = json.loads(daemon.docker("inspect", "-f", "{{json .HostConfig}}", name).stdout)
        assert hc["Memory"] == 64 << 20           # unchanged
    finally:
        daemon.docker("rm", "-f", name)


def test_update_autoremove_restart_policy_refused(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "-d", "--rm", "--name", name, "bb", "sleep", "100")
    try:
        r = daemon.docker("update", "--restart", "always", name, check=False)
        assert r.returncode != 0
        assert "Restart policy cannot be updated because AutoRemove is enabled for the container" in r.stderr
    finally:
        daemon.docker("kill", name, check=False)          # --rm removes it
        daemon.api("POST", f"/containers/{name}/wait?condition=removed")


def test_dockyard_events_pause_update(daemon, bb_image):
    name = unique_name()
    daemon.dockyard("run", "-d", "--name", name, "bb", "sleep", "100")
    try:
        assert daemon.dockyard("pause", name).stdout == name + "\n"
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "paused"
        r = daemon.dockyard("pause", name, check=False)
        assert r.returncode == 1 and "is already paused" in r.stderr
        assert daemon.dockyard("unpause", name).stdout == name + "\n"
        assert daemon.dockyard("update", "--restart", "on-failure:2", "--cpu-shares", "256", name).stdout == name + "\n"
        hc = json.loads(daemon.docker("inspect", "-f", "{{json .HostConfig}}", name).stdout)
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2} and hc["CpuShares"] == 256
        r = daemon.dockyard("update", name, check=False)
        assert r.returncode != 0 and "you must provide one or more flags" in r.stderr
        out = daemon.dockyard("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
                              "--format", "{{.Action}}").stdout.split()
        assert out == ["create", "start", "pause", "unpause", "update"]
        line = daemon.dockyard("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
                               "--filter", "event=pause").stdout.strip()
        assert f" container pause {daemon.docker('inspect', '-f', '{{.Id}}', name).stdout.strip()} (" in line
        assert f"name={name}" in line
        r = daemon.dockyard("events", "--filter", "nope=1", "--until", "0s", check=False)
        assert r.returncode != 0 and "invalid filter 'nope'" in r.stderr
    finally:
        daemon.docker("rm", "-f", name)


def test_dockerds_words_for_unpause_exec_rename_and_logs(daemon, bb_image):
    """moby 28's replies: unpause of a container not paused is a plain 500; exec
    create in a paused container names it as the client did; a rename to a taken
    name wraps the conflict; logs without a stream are 'Bad parameters'."""
    name, other = unique_name(), unique_name()
    daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "60")
    daemon.docker("create", "--name", other, bb_image, "true")
    try:
        cid = json.loads(daemon.api("GET", f"/containers/{name}/json")[1])["Id"]
        status, body = daemon.api("POST", f"/containers/{name}/unpause")
        assert (status, json.loads(body)["message"]) == (409, f"Container {cid} is not paused")  # moby: 500
        daemon.api("POST", f"/containers/{name}/pause")
        status, body = daemon.api("POST", f"/containers/{name}/exec", {"Cmd": ["true"]})
        assert (status, json.loads(body)["message"]) == \
            (409, f"Container {name} is paused, unpause the container before exec")
        daemon.api("POST", f"/containers/{name}/unpause")
        status, body = daemon.api("POST", f"/containers/{name}/rename?name={other}")
        assert status == 409 and json.loads(body)["message"].startswith(
            f'Error when allocating new name: Conflict. The container name "/{other}" is already in use')
        status, body = daemon.api("GET", f"/containers/{name}/logs")
        assert (status, json.loads(body)["message"]) == (400, "Bad parameters: you must choose at least one stream")
        # a refused attach: text on the taken-over connection, as moby's router writes it
        assert daemon.api("POST", "/containers/nope-attach/attach?stream=1&stdout=1") == \
            (404, b"No such container: nope-attach\r\n")
        assert daemon.api("POST", f"/containers/{name}/attach?stream=1&stdout=1&detachKeys=ctrl-") == \
            (400, b"Invalid detach keys (ctrl-) provided\r\n")
    finally:
        daemon.docker("rm", "-f", name, other, check=False)

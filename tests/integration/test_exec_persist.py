"""Exec sessions survive a daemon restart or crash: inspect still answers,
a running exec is watched again and its exit code recorded, one that ended
while the daemon was down gets the code its conmon wrote; execs go with
their container."""
from __future__ import annotations

import json
import os
import secrets
import signal
import time

import pytest


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def ctr(daemon, bb_image):
    name = _name("xp")
    daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "100000")
    yield name
    if not daemon.running:
        daemon.start()
    daemon.docker("rm", "-f", name, check=False)


def _exec(daemon, ctr, script: str) -> str:
    st, body = daemon.api("POST", f"/containers/{ctr}/exec", {"Cmd": ["sh", "-c", script]})
    assert st == 201, body
    eid = json.loads(body)["Id"]
    st, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})
    assert st == 200, body
    return eid


def _inspect(daemon, eid: str) -> dict:
    st, body = daemon.api("GET", f"/exec/{eid}/json")
    assert st == 200, body
    return json.loads(body)


def _until_done(daemon, eid: str) -> dict:
    for _ in range(200):
        info = _inspect(daemon, eid)
        if not info["Running"]:
            return info
        time.sleep(0.05)
    return info


def _gone(pid: int) -> bool:
    for _ in range(200):
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False


def _exec_conmon_pid(daemon, cid: str, eid: str) -> int:
    with open(daemon.exec_root / "c" / cid / "exec" / eid[:12] / "conmon.pid") as f:
        return int(f.read())


def test_finished_exec_still_inspectable_after_restart(daemon, ctr):
    api = daemon.client().api
    eid = api.exec_create(ctr, ["sh", "-c", "echo hi"])["Id"]
    assert api.exec_start(eid) == b"hi\n"
    before = api.exec_inspect(eid)
    assert before["ExitCode"] == 0 and before["Running"] is False
    daemon.restart()
    info = _inspect(daemon, eid)
    assert info["ExitCode"] == 0 and info["Running"] is False
    assert info["ProcessConfig"]["entrypoint"] == "sh" and info["ProcessConfig"]["arguments"] == ["-c", "echo hi"]
    assert info["ContainerID"] == before["ContainerID"]


def test_created_exec_can_be_started_after_restart(daemon, ctr):
    st, body = daemon.api("POST", f"/containers/{ctr}/exec",
                          {"Cmd": ["sh", "-c", "exit $X"], "Env": ["X=6"], "WorkingDir": "/tmp"})
    eid = json.loads(body)["Id"]
    daemon.restart()
    info = _inspect(daemon, eid)
    assert info["Running"] is False and info["ExitCode"] is None
    assert daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})[0] == 200
    assert _until_done(daemon, eid)["ExitCode"] == 6


def test_running_exec_is_watched_again_after_a_crash(daemon, ctr):
    eid = _exec(daemon, ctr, "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 7")
    pid = _inspect(daemon, eid)["Pid"]
    assert pid > 0
    daemon.kill9()
    daemon.start()
    info = _inspect(daemon, eid)
    assert info["Running"] is True and info["ExitCode"] is None
    daemon.docker("exec", ctr, "touch", "/tmp/go")
    info = _until_done(daemon, eid)
    assert info["Running"] is False and info["ExitCode"] == 7 and info["Pid"] == 0


def test_exec_that_ended_while_the_daemon_was_down_gets_its_exit_code(daemon, ctr):
    cid = daemon.docker("inspect", "-f", "{{.Id}}", ctr).stdout.strip()
    cpid = int(daemon.docker("inspect", "-f", "{{.State.Pid}}", ctr).stdout)
    eid = _exec(daemon, ctr, "while [ ! -e /tmp/go3 ]; do sleep 0.05; done; exit 3")
    conmon_pid = _exec_conmon_pid(daemon, cid, eid)
    since = int(time.time())
    daemon.kill9()
    with open(f"/proc/{cpid}/root/tmp/go3", "w"):
        pass
    assert _gone(conmon_pid)    # it wrote the exit file, then could not tell the dead daemon
    daemon.start()
    info = _inspect(daemon, eid)
    assert info["Running"] is False and info["ExitCode"] == 3
    # the exec dir went once the code was on disk
    assert not os.path.exists(daemon.exec_root / "c" / cid / "exec" / eid[:12])
    st, body = daemon.api("GET", f"/events?since={since}&until={int(time.time()) + 1}"
                                 '&filters={"event":["exec_die"]}')
    died = [json.loads(l) for l in body.splitlines() if l.strip()]
    assert [e["Actor"]["Attributes"]["exitCode"] for e in died if e["Actor"]["Attributes"]["execID"] == eid] == ["3"]


def test_exec_of_a_container_killed_while_the_daemon_was_down(daemon, ctr):
    """The container's cleanup removes its bundle; the exec's exit code is
    read from there first."""
    cpid = int(daemon.docker("inspect", "-f", "{{.State.Pid}}", ctr).stdout)
    eid = _exec(daemon, ctr, "sleep 1000")
    daemon.kill9()
    os.kill(cpid, signal.SIGKILL)
    assert _gone(cpid)
    daemon.start()
    state = json.loads(daemon.docker("inspect", ctr).stdout)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    info = _until_done(daemon, eid)
    assert info["Running"] is False and info["ExitCode"] == 137


def test_execs_go_with_their_container(daemon, bb_image):
    name = _name("xr")
    daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "100000")
    try:
        done = _exec(daemon, name, "true")
        st, body = daemon.api("POST", f"/containers/{name}/exec", {"Cmd": ["true"]})
        created = json.loads(body)["Id"]
        assert _until_done(daemon, done)["ExitCode"] == 0
    finally:
        daemon.docker("rm", "-f", name)
    for eid in (done, created):
        st, body = daemon.api("GET", f"/exec/{eid}/json")
        assert st == 404 and json.loads(body)["message"] == f"No such exec instance: {eid}"
    daemon.restart()
    assert daemon.api("GET", f"/exec/{done}/json")[0] == 404


def test_oom_markers_land_in_conmon_dirs_not_in_the_daemon_cwd(daemon, bb_image):
    """conmon 2.1 writes an `oom` file into its --persist-dir and into its
    cwd: both must be its own dir (the daemon works from /)."""
    name = _name("xo")
    daemon.docker("run", "-d", "--name", name, "--memory", "16m", "--memory-swap", "16m", bb_image,
                  "sleep", "100000")
    try:
        cid = daemon.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
        bundle = daemon.exec_root / "c" / cid
        watcher = _exec(daemon, name, "sleep 1000")
        exec_dir = bundle / "exec" / watcher[:12]
        assert os.readlink(f"/proc/{_exec_conmon_pid(daemon, cid, watcher)}/cwd") == str(exec_dir)
        with open(bundle / "conmon.pid") as f:
            assert os.readlink(f"/proc/{int(f.read())}/cwd") == str(bundle)
        assert os.readlink(f"/proc/{daemon.proc.pid}/cwd") == "/"
        hog = _exec(daemon, name, "tail /dev/zero")   # buffers an endless line: OOM-killed
        assert _until_done(daemon, hog)["ExitCode"] == 137
        assert (exec_dir / "oom").exists()              # the watcher's conmon saw the OOM too
    finally:
        daemon.docker("rm", "-f", name)

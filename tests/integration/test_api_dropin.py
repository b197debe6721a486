"""Answers real clients get from dockerd, got from dockyard (issue 14: items
1, 2, 3, 7, 10, 13, 14, 17, 18): request bodies decoded as Go does, exec's
TTY, supplementary groups, commit right after an exit, rm of a restarting
container, `docker run --rm` of a command that cannot start, `docker top`."""
from __future__ import annotations

import json
import os
import signal
import time

import docker
import pytest


def _create(daemon, body: dict, name: str | None = None) -> str:
    st, out = daemon.api("POST", "/containers/create" + (f"?name={name}" if name else ""), body)
    assert st == 201, out
    return json.loads(out)["Id"]


def _inspect(daemon, ref: str) -> dict:
    st, out = daemon.api("GET", f"/containers/{ref}/json")
    assert st == 200, out
    return json.loads(out)


@pytest.fixture
def sleeper(daemon, bb_image):
    cid = daemon.docker("run", "-d", bb_image, "sleep", "1000").stdout.strip()
    yield cid
    daemon.docker("rm", "-f", cid, check=False)


# ---------------------------------------------------------------- item 3

def test_body_field_names_are_case_insensitive_everywhere(daemon, bb_image):
    """Go's encoding/json: `detachKeys`, `CPURealtimeRuntime`, `hostconfig.memory` land on their fields."""
    cid = _create(daemon, {"image": bb_image, "cmd": ["sleep", "1000"], "labels": {"Mixed.Case": "v"},
                           "hostconfig": {"memory": 64 << 20, "CPURealtimeRuntime": 0,
                                          "restartpolicy": {"name": "on-failure", "maximumretrycount": 2}}})
    try:
        info = _inspect(daemon, cid)
        assert info["Config"]["Cmd"] == ["sleep", "1000"]
        assert info["Config"]["Labels"] == {"Mixed.Case": "v"}          # a map's keys are data: kept as sent
        hc = info["HostConfig"]
        assert hc["Memory"] == 64 << 20 and hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        assert "CPURealtimeRuntime" not in hc and "memory" not in hc
        daemon.docker("start", cid)
        st, out = daemon.api("POST", f"/containers/{cid}/exec", {"cmd": ["true"], "detachKeys": "ctrl-x",
                                                                 "attachStdout": True})
        assert st == 201, out
        st, out = daemon.api("GET", f"/exec/{json.loads(out)['Id']}/json")
        ex = json.loads(out)
        assert ex["DetachKeys"] == "GA==" and ex["OpenStdout"] is True     # []byte{0x18}, as Go marshals it
        # a wrong type under any spelling: Go's 400, naming the field canonically
        st, out = daemon.api("POST", "/containers/create", {"Image": bb_image, "hostconfig": {"MEMORY": "1"}})
        assert st == 400 and "Go struct field HostConfig.HostConfig.Memory of type int64" in json.loads(out)["message"]
    finally:
        daemon.docker("rm", "-f", cid, check=False)


# ---------------------------------------------------------------- item 10

def test_old_style_top_level_host_config_fields(daemon, bb_image):
    """moby to Docker 26 (dockerd 20.10): HostConfig's fields at the top level of a create body are the
    HostConfig when none is given; beside one, they fill only its empty Memory/MemorySwap/CpuShares/
    CpusetCpus/VolumeDriver."""
    a = _create(daemon, {"Image": bb_image, "Cmd": ["true"], "Runtime": "runc", "Memory": 64 << 20,
                         "Binds": ["/tmp:/hosttmp:ro"], "Cpuset": "0"})
    b = _create(daemon, {"Image": bb_image, "Cmd": ["true"], "Memory": 64 << 20, "Privileged": True,
                         "HostConfig": {"CpuShares": 512}})
    try:
        hc = _inspect(daemon, a)["HostConfig"]
        assert hc["Runtime"] == "runc" and hc["Memory"] == 64 << 20 and hc["Binds"] == ["/tmp:/hosttmp:ro"]
        assert hc["CpusetCpus"] == "0"
        hc = _inspect(daemon, b)["HostConfig"]
        assert hc["Memory"] == 64 << 20 and hc["CpuShares"] == 512 and not hc.get("Privileged")
    finally:
        daemon.docker("rm", "-f", a, b, check=False)


# ---------------------------------------------------------------- item 2

def test_exec_tty_comes_from_create(daemon, sleeper):
    api = daemon.client().api
    e = api.exec_create(sleeper, ["sh", "-c", "tty; echo TERM=$TERM"], tty=True)
    out = api.exec_start(e["Id"], tty=False)        # a framed stream, which docker-py reads
    assert out.startswith(b"/dev/pts/") and b"TERM=xterm" in out
    e = api.exec_create(sleeper, ["sh", "-c", "tty; echo TERM=$TERM; echo err >&2"], tty=False)
    assert api.exec_start(e["Id"], tty=True) == b"not a tty\nTERM=\n"     # raw, stderr not attached
    r = daemon.docker("exec", "-t", sleeper, "sh", "-c", "echo TERM=$TERM")
    assert r.stdout.strip() == "TERM=xterm"


# ---------------------------------------------------------------- item 14

def test_supplementary_groups_as_dockerd(daemon, bb_image):
    """moby's getUser: the primary gid, the groups naming the user (busybox's wheel lists root), GroupAdd."""
    assert daemon.docker("run", "--rm", bb_image, "id").stdout == (
        "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n")
    assert daemon.docker("run", "--rm", "--group-add", "mail", "--group-add", "77", bb_image, "id").stdout == (
        "uid=0(root) gid=0(root) groups=0(root),10(wheel),12(mail),77\n")
    assert daemon.docker("run", "--rm", "-u", "nobody", bb_image, "id").stdout == (
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n")
    cid = daemon.docker("run", "-d", "--group-add", "mail", bb_image, "sleep", "1000").stdout.strip()
    try:
        assert daemon.docker("exec", cid, "id", "-G").stdout == "0 10 12\n"
        assert daemon.docker("exec", "-u", "nobody", cid, "id", "-G").stdout == "65534 12\n"
    finally:
        daemon.docker("rm", "-f", cid, check=False)


# ---------------------------------------------------------------- item 17

def test_exec_of_a_missing_or_unrunnable_command(daemon, sleeper, bb_image):
    """Docker 28's codes (moby c866a7e5f8, TestFailedExecExitCode): 127 not found, 126 not runnable, one
    message; dockerd before 28 answered 126 for both."""
    r = daemon.docker("exec", sleeper, "nope", check=False)
    assert r.returncode == 127
    assert r.stdout.strip() == ('OCI runtime exec failed: exec failed: unable to start container process: '
                                'exec: "nope": executable file not found in $PATH: unknown')
    r = daemon.docker("exec", sleeper, "/etc", check=False)
    assert r.returncode == 126 and "permission denied" in r.stdout
    r = daemon.docker("run", "--rm", bb_image, "nope", check=False)
    assert r.returncode == 127


# ---------------------------------------------------------------- item 13

def test_run_rm_of_a_failing_start_prints_one_message(daemon, bb_image):
    r = daemon.docker("run", "--rm", bb_image, "nope", check=False)
    assert r.returncode == 127
    assert "Error waiting for container" not in r.stderr, r.stderr
    assert r.stderr.count('exec: "nope": executable file not found in $PATH') == 1, r.stderr
    r = daemon.docker("run", "--name", "failstart", bb_image, "/etc", check=False)
    try:
        assert r.returncode == 126 and "Error waiting" not in r.stderr
        # a plain wait afterwards has the start's error, as dockerd's
        st, out = daemon.api("POST", "/containers/failstart/wait")
        assert st == 200 and "permission denied" in json.loads(out)["Error"]["Message"]
    finally:
        daemon.docker("rm", "-f", "failstart", check=False)


def test_removal_wakes_a_next_exit_wait_without_error(daemon, bb_image):
    import threading
    cid = daemon.docker("create", bb_image, "true").stdout.strip()
    got: list = []
    t = threading.Thread(target=lambda: got.append(
        daemon.api("POST", f"/containers/{cid}/wait?condition=next-exit", timeout=20)))
    t.start()
    time.sleep(0.5)
    daemon.docker("rm", cid)
    t.join(20)
    assert got and got[0][0] == 200 and json.loads(got[0][1]) == {"StatusCode": 0, "Error": None}


# ---------------------------------------------------------------- item 1

def test_commit_with_pause_just_after_the_process_ended(daemon, bb_image):
    """The container's process is gone, its exit not yet recorded (conmon, stopped here, has not
    reported it): commit does not fail on the pause (moby's is best effort); pause is the 409
    it is once the exit is recorded."""
    cid = daemon.docker("run", "-d", bb_image, "sh", "-c", "echo x > /made; exec sleep 1000").stdout.strip()
    pid = _inspect(daemon, cid)["State"]["Pid"]
    with open(f"/proc/{pid}/stat") as f:
        conmon_pid = int(f.read().rsplit(")", 1)[1].split()[1])
    os.kill(conmon_pid, signal.SIGSTOP)
    try:
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)
        st, out = daemon.api("POST", f"/commit?container={cid}&pause=1&repo=committed")
        assert st == 201, out
        st, out = daemon.api("POST", f"/containers/{cid}/pause")
        assert st == 409 and json.loads(out)["message"] == f"Container {cid} is not running"
    finally:
        os.kill(conmon_pid, signal.SIGCONT)
    assert daemon.docker("run", "--rm", "committed", "cat", "/made").stdout == "x\n"
    daemon.docker("rm", "-f", cid)
    daemon.docker("rmi", "committed")


# ---------------------------------------------------------------- item 7

def test_rm_of_a_restarting_container_needs_force(daemon, bb_image):
    """Between an exit and its restart (Docker's backoff: 100 ms, doubling), `rm` without force is
    dockerd's 409; with force it goes."""
    cid = daemon.docker("run", "-d", "--restart", "always", bb_image, "false").stdout.strip()
    try:
        # `restarting` shows from the exit through the restart's start (under the container's lock,
        # as dockerd's): past the fifth start, the wait before the sixth is 3.2 s
        deadline = time.time() + 60
        while _inspect(daemon, cid)["RestartCount"] < 5:
            assert time.time() < deadline, "never restarted five times"
            time.sleep(0.05)
        time.sleep(1.0)
        info = _inspect(daemon, cid)
        assert info["RestartCount"] == 5 and info["State"]["Status"] == "restarting"
        st, out = daemon.api("DELETE", f"/containers/{cid}")
        assert st == 409 and json.loads(out)["message"] == (
            f"You cannot remove a restarting container {cid}. Stop the container before attempting removal "
            "or force remove")
        assert daemon.api("DELETE", f"/containers/{cid}?force=1")[0] == 204
    finally:
        daemon.docker("rm", "-f", cid, check=False)
    assert daemon.api("GET", f"/containers/{cid}/json")[0] == 404


# ---------------------------------------------------------------- item 18

def test_top_command_column_has_no_trailing_blank(daemon, bb_image):
    # the shell's last argument ($0) ends with blanks: so does the line ps prints for it
    cid = daemon.docker("run", "-d", bb_image, "sh", "-c", "sleep 1000; true", "x  ").stdout.strip()
    try:
        deadline = time.time() + 10
        while True:
            st, out = daemon.api("GET", f"/containers/{cid}/top")
            procs = json.loads(out)["Processes"]
            if len(procs) == 2 or time.time() > deadline:
                break
            time.sleep(0.05)
        assert st == 200 and [p[-1] for p in procs] == ["sh -c sleep 1000; true x", "sleep 1000"]
        lines = daemon.docker("top", cid).stdout.splitlines()
        assert lines[1].endswith("true x") and lines[2].endswith("sleep 1000")
    finally:
        daemon.docker("rm", "-f", cid, check=False)


def test_docker_py_low_level_exec_keeps_working(daemon, sleeper):
    c = daemon.client()
    assert c.containers.get(sleeper).exec_run("echo hi").output == b"hi\n"
    assert c.containers.get(sleeper).exec_run("sh -c 'tty'", tty=True).output.startswith(b"/dev/pts/")
    with pytest.raises(docker.errors.NotFound):
        c.api.exec_inspect("nosuchexec")

"""An attached exec without a TTY runs without conmon: the runtime, run by
the daemon and waiting for the process, is its parent, and the daemon
relays its pipes (daemon/exec.py _launch_piped). Its streams, exit codes,
pid and end are a conmon exec's; a detached or TTY exec keeps conmon."""
from __future__ import annotations

import json
import os
import secrets
import socket
import time

import pytest


@pytest.fixture
def ctr(daemon, bb_image):
    name = f"xpp-{secrets.token_hex(3)}"
    daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "100000")
    yield name
    daemon.docker("rm", "-f", name, check=False)


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _start_attached(daemon, ctr: str, cmd: list[str], tty: bool = False) -> tuple[str, socket.socket]:
    """Create an exec and start it attached on a raw connection left open (the output is not read)."""
    st, body = daemon.api("POST", f"/containers/{ctr}/exec",
                          {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True, "Tty": tty})
    assert st == 201, body
    eid = json.loads(body)["Id"]
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.sock)
    payload = json.dumps({"Detach": False, "Tty": tty}).encode()
    s.sendall(f"POST /exec/{eid}/start HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
              f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return eid, s


def _running_pid(daemon, eid: str) -> int:
    for _ in range(200):
        info = json.loads(daemon.api("GET", f"/exec/{eid}/json")[1])
        try:
            with open(f"/proc/{info['Pid']}/cmdline", "rb") as f:
                if info["Running"] and info["Pid"] and f.read().startswith(b"sleep\0"):
                    return info["Pid"]
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"exec {eid} never showed its process: {info}")


def _until_done(daemon, eid: str) -> dict:
    for _ in range(400):
        info = json.loads(daemon.api("GET", f"/exec/{eid}/json")[1])
        if not info["Running"]:
            return info
        time.sleep(0.05)
    raise AssertionError(f"exec {eid} still running: {info}")


def test_an_attached_exec_without_tty_has_the_runtime_as_parent_and_its_own_pid(daemon, ctr):
    eid, s = _start_attached(daemon, ctr, ["sleep", "1000"])
    try:
        pid = _running_pid(daemon, eid)             # the process's own pid, not the runtime's
        parent = _ppid(pid)
        assert _comm(parent) != "conmon"
        with open(f"/proc/{parent}/cmdline", "rb") as f:
            assert b"exec" in f.read().split(b"\0")     # `<runtime> ... exec --process ...`
    finally:
        s.close()
    os.kill(pid, 9)
    info = _until_done(daemon, eid)
    assert info["ExitCode"] == 137 and info["Pid"] == 0


def test_a_tty_exec_keeps_conmon(daemon, ctr):
    eid, s = _start_attached(daemon, ctr, ["sleep", "1000"], tty=True)
    try:
        pid = _running_pid(daemon, eid)
        assert _comm(_ppid(pid)) == "conmon"
    finally:
        s.close()
    os.kill(pid, 9)
    assert _until_done(daemon, eid)["ExitCode"] == 137


def test_streams_and_codes_through_the_docker_cli(daemon, ctr):
    r = daemon.docker("exec", ctr, "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = daemon.docker("exec", "-i", ctr, "sh", "-c", "tr a-z A-Z; echo done", input="hello\n")
    assert r.stdout == "HELLO\ndone\n"
    # killed by a signal: 128+N, as with conmon
    assert daemon.docker("exec", ctr, "sh", "-c", "kill -9 $$", check=False).returncode == 137
    # a background child holding stdout does not hold the exec open (the subprocess timeout catches a hang)
    r = daemon.docker("exec", ctr, "sh", "-c", "sleep 100000 & echo started", timeout=60)
    assert r.stdout == "started\n"
    daemon.docker("exec", ctr, "pkill", "-f", "sleep 100000$", check=False)


def test_a_runtime_failure_is_dockers_message_and_126(daemon, ctr):
    r = daemon.docker("exec", "-w", "/not-there", ctr, "true", check=False)
    assert r.returncode == 126
    assert r.stdout.startswith("OCI runtime exec failed: exec failed: unable to start container process: ")
    assert "/not-there" in r.stdout and r.stdout.rstrip().endswith(": unknown")


def test_a_crash_of_the_daemon_ends_an_attached_exec_with_an_unknown_code(daemon, ctr):
    """Its output had only the daemon to go to: after the restart the exec is over, code unknown (-1)."""
    eid, s = _start_attached(daemon, ctr, ["sh", "-c", "while :; do echo tick; sleep 0.1; done"])
    try:
        for _ in range(200):
            if json.loads(daemon.api("GET", f"/exec/{eid}/json")[1])["Running"]:
                break
            time.sleep(0.05)
        daemon.kill9()
    finally:
        s.close()
    daemon.start()
    info = _until_done(daemon, eid)
    assert info["Running"] is False and info["ExitCode"] == -1
    # its process lost its reader and ended at its next write (SIGPIPE)
    for _ in range(100):
        out = daemon.docker("exec", ctr, "ps", "-o", "args").stdout
        if "while :" not in out:
            break
        time.sleep(0.1)
    assert "while :" not in out, out


def _runtime_mntns(daemon, ctr: str) -> tuple[str, str]:
    """(the runtime's mount namespace during an attached exec, the daemon's)."""
    eid, s = _start_attached(daemon, ctr, ["sleep", "1000"])
    try:
        pid = _running_pid(daemon, eid)
        ns = os.readlink(f"/proc/{_ppid(pid)}/ns/mnt")
    finally:
        s.close()
    os.kill(pid, 9)
    _until_done(daemon, eid)
    return ns, os.readlink(f"/proc/{daemon.proc.pid}/ns/mnt")


def test_the_runtime_namespace_only_once_the_host_is_busy(daemon, ctr, bb_image):
    """With few containers the runtime's exec runs in the daemon's mount
    namespace (its mount table is small: cheaper than entering the runtime
    namespace); past SMALL_HOST (24) containers, in the runtime namespace."""
    have = len(daemon.docker("ps", "-aq").stdout.split())
    if have > 24:
        pytest.skip(f"{have} containers on this test daemon already")
    ns, own = _runtime_mntns(daemon, ctr)
    assert ns == own
    tag = secrets.token_hex(3)
    names = [f"xpb-{tag}-{i}" for i in range(25 - have)]
    try:
        for n in names:
            daemon.docker("create", "--name", n, bb_image, "true")
        ns, own = _runtime_mntns(daemon, ctr)
        assert ns != own
        assert daemon.docker("exec", ctr, "echo", "ok").stdout == "ok\n"
    finally:
        daemon.docker("rm", "-f", *names, check=False)


def _runtimes_ahead(daemon, cid: str) -> list[int]:
    """The daemon's children that are a runtime's `exec` into container cid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if _ppid(int(entry)) != daemon.proc.pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"exec" in args and cid.encode() in args:
            found.append(int(entry))
    return found


def _exec_until_done(daemon, eid: str) -> dict:
    for _ in range(200):
        info = json.loads(daemon.api("GET", f"/exec/{eid}/json")[1])
        if not info["Running"] and info["ExitCode"] is not None:
            return info
        time.sleep(0.05)
    raise AssertionError(f"exec {eid} did not end: {info}")


def test_a_runtime_started_ahead_runs_nothing_until_the_start(daemon, ctr):
    """An attached exec's runtime is started at create and waits for its
    process spec (ExecManager._prepare): until the start nothing runs in the
    container; unused for PREPARED_FOR (1 s) it is killed and reaped, and a
    later start runs the process once with a runtime of its own."""
    cid = daemon.docker("inspect", "-f", "{{.Id}}", ctr).stdout.strip()
    mark = f"/tmp/ahead-{secrets.token_hex(3)}"
    st, body = daemon.api("POST", f"/containers/{ctr}/exec",
                          {"Cmd": ["sh", "-c", f"echo ran >> {mark}"], "AttachStdout": True, "AttachStderr": True})
    assert st == 201, body
    eid = json.loads(body)["Id"]
    for _ in range(100):
        ahead = _runtimes_ahead(daemon, cid)
        if ahead:
            break
        time.sleep(0.01)
    assert len(ahead) == 1
    time.sleep(0.3)
    assert daemon.docker("exec", ctr, "cat", mark, check=False).returncode == 1     # not run
    for _ in range(100):
        if not os.path.exists(f"/proc/{ahead[0]}"):      # gone, not a zombie
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{ahead[0]}")
    assert daemon.docker("exec", ctr, "cat", mark, check=False).returncode == 1
    st, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True, "Tty": False})
    assert st == 200, body
    assert _exec_until_done(daemon, eid)["ExitCode"] == 0
    assert daemon.docker("exec", ctr, "cat", mark).stdout == "ran\n"


def test_a_detached_start_of_an_attached_exec_runs_it_once(daemon, ctr):
    cid = daemon.docker("inspect", "-f", "{{.Id}}", ctr).stdout.strip()
    mark = f"/tmp/once-{secrets.token_hex(3)}"
    st, body = daemon.api("POST", f"/containers/{ctr}/exec",
                          {"Cmd": ["sh", "-c", f"echo ran >> {mark}"], "AttachStdout": True, "AttachStderr": True})
    eid = json.loads(body)["Id"]
    st, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True, "Tty": False})
    assert st == 200, body
    assert _exec_until_done(daemon, eid)["ExitCode"] == 0
    for _ in range(100):
        if not _runtimes_ahead(daemon, cid):
            break
        time.sleep(0.02)
    assert _runtimes_ahead(daemon, cid) == []
    time.sleep(0.2)
    assert daemon.docker("exec", ctr, "cat", mark).stdout == "ran\n"

"""Streams (issue 4): interactive run/attach with a TTY, exec, logs with
rotation, stats and top — through the real docker CLI (under a pty where a
terminal matters), docker-py and raw API calls."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
import sys
import time

import pexpect
import pytest


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def web(daemon, busybox_tar):
    if daemon.api("GET", "/images/bb/json")[0] != 200:
        daemon.docker("import", str(busybox_tar), "bb")
    name = _name("web")
    daemon.docker("run", "-d", "--name", name, "bb", "sleep", "100000")
    yield name
    daemon.docker("rm", "-f", name, check=False)


def _spawn(daemon, *args, rows=24, cols=80):
    return pexpect.spawn("docker", ["-H", daemon.host, *args], env=daemon.env,
                         dimensions=(rows, cols), timeout=15)


# ------------------------------------------------------------------ TTY: run -it, resize, detach, attach

def test_run_it_prompt_size_resize_detach_and_reattach(daemon, bb_image):
    name = _name("it")
    p = _spawn(daemon, "run", "-it", "--name", name, bb_image, "sh", rows=30, cols=90)
    try:
        p.expect("# ")
        p.sendline("stty size")
        p.expect(r"(\d+) (\d+)\r\n")
        assert p.match.group(0).strip() == b"30 90"
        p.setwinsize(44, 132)
        # SIGWINCH reaches the CLI, which resizes; poll the shell until it sees it
        for _ in range(50):
            p.sendline("stty size")
            p.expect(r"(\d+) (\d+)\r\n")
            if p.match.group(0).strip() == b"44 132":
                break
        assert p.match.group(0).strip() == b"44 132"
        p.sendline("sleep 300 & jobs")        # job control works with a real tty
        p.expect(r"\[1\]\+? +Running")
        p.send("\x10\x11")                    # ctrl-p ctrl-q
        p.expect(pexpect.EOF)
        p.close()
        assert p.exitstatus == 0
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"

        a = _spawn(daemon, "attach", name, rows=25, cols=81)
        # no waiting for a redrawn prompt (ash may skip it when the resize lands early):
        # what we type waits in the pty until the attach carries it
        a.sendline("echo back-$((40+2))")
        a.expect("back-42")
        a.sendline("stty size")
        a.expect(r"25 81\r\n")
        a.sendline("exit 3")
        a.expect(pexpect.EOF)
        a.close()
        assert a.exitstatus == 3
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_start_ai_and_detach_keys_flag(daemon, bb_image):
    name = _name("sai")
    daemon.docker("create", "-it", "--name", name, bb_image, "sh")
    p = _spawn(daemon, "start", "-ai", "--detach-keys", "ctrl-x,x", name)
    try:
        p.expect("# ")
        p.sendline("echo started-$((1+1))")
        p.expect("started-2")
        p.send("\x18x")
        p.expect(pexpect.EOF)
        p.close()
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_resize_errors(daemon, bb_image, web):
    name = _name("stopped")
    daemon.docker("create", "--name", name, bb_image, "true")
    try:
        st, body = daemon.api("POST", f"/containers/{name}/resize?h=10&w=10")
        assert st == 409 and "is not running" in json.loads(body)["message"]
        # Docker: resizing a running container without a TTY is a no-op
        assert daemon.api("POST", f"/containers/{web}/resize?h=10&w=10")[0] == 200
        st, body = daemon.api("POST", f"/containers/{web}/resize?h=x&w=10")
        assert st == 400
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_attach_to_stopped_container_refused(daemon, bb_image):
    """Both CLIs refuse with Docker's message (the check is the client's, as in
    Docker: the API's attach to a created/exited container waits for its start,
    which `start -a` relies on)."""
    name = _name("stopped")
    daemon.docker("create", "-it", "--name", name, bb_image, "sh")
    try:
        for run in (daemon.docker, daemon.dockyard):
            r = run("attach", name, check=False, timeout=20)
            assert r.returncode == 1 and "You cannot attach to a stopped container, start it first" in r.stderr
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "created"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def _raw_attach(daemon, target: str, version: str, upgrade: bool,
                connection: bool = True) -> tuple[list[str], bytes]:
    """POST .../attach?logs=1&stdout=1 on a bare socket: (head lines, all the bytes after the head)."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(daemon.sock)
    hdrs = ("Connection: Upgrade\r\n" if connection else "") + "Upgrade: tcp\r\n" if upgrade else ""
    s.sendall(f"POST /{version}/containers/{target}/attach?logs=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n"
              f"Content-Length: 0\r\n{hdrs}\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode().split("\r\n"), rest


def test_hijack_head_and_content_type_by_tty_and_api_version(daemon, bb_image):
    """Docker's hijack: 101 UPGRADED + Upgrade: tcp for a request with an Upgrade header (else
    200 saying raw-stream), multiplexed-stream content type without a TTY from API 1.42
    (raw-stream before, framed all the same), raw bytes with a TTY."""
    plain, tty = _name("hjp"), _name("hjt")
    daemon.docker("run", "--name", plain, bb_image, "echo", "hi")
    daemon.docker("run", "-t", "--name", tty, bb_image, "echo", "hi")
    try:
        head, body = _raw_attach(daemon, plain, "v1.44", upgrade=True)
        assert head[0] == "HTTP/1.1 101 UPGRADED"
        lower = [h.lower() for h in head[1:]]
        assert "upgrade: tcp" in lower and "connection: upgrade" in lower
        assert "content-type: application/vnd.docker.multiplexed-stream" in lower
        assert body == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
        head, body = _raw_attach(daemon, plain, "v1.41", upgrade=True)
        assert "content-type: application/vnd.docker.raw-stream" in [h.lower() for h in head]
        assert body == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
        head, body = _raw_attach(daemon, tty, "v1.44", upgrade=True)
        assert head[0] == "HTTP/1.1 101 UPGRADED"
        assert "content-type: application/vnd.docker.raw-stream" in [h.lower() for h in head]
        assert body == b"hi\r\n"
        # moby looks at the Upgrade header only
        head, body = _raw_attach(daemon, plain, "v1.44", upgrade=True, connection=False)
        assert head[0] == "HTTP/1.1 101 UPGRADED" and body == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
        head, body = _raw_attach(daemon, plain, "v1.44", upgrade=False)
        assert head[0] == "HTTP/1.1 200 OK" and body == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
        assert "content-type: application/vnd.docker.raw-stream" in [h.lower() for h in head]
    finally:
        daemon.docker("rm", "-f", plain, tty, check=False)


def test_stdin_half_close(daemon, bb_image):
    r = daemon.docker("run", "--rm", "-i", bb_image, "sh", "-c", "cat; echo done", input="piped\n")
    assert r.stdout == "piped\ndone\n"


# ------------------------------------------------------------------ exec

def test_exec_it_echo_pid_exit_codes_and_detach(daemon, web):
    # the size reaches the exec's pty (crun 1.8 ignores process.consoleSize on exec; conmon
    # applies it as soon as it holds the pty, so the shell may briefly see 0 0 first)
    p = _spawn(daemon, "exec", "-it", web, "sh", "-c",
               'echo pid=$$; until [ "$(stty size 2>/dev/null)" = "33 101" ]; do :; done; echo sized', rows=33, cols=101)
    p.expect(r"pid=(\d+)\r\n")
    assert int(p.match.group(1)) > 1
    p.expect("sized")
    p.expect(pexpect.EOF)
    p.close()
    assert p.exitstatus == 0

    assert daemon.docker("exec", web, "false", check=False).returncode == 1
    assert daemon.docker("exec", web, "sh", "-c", "exit 42", check=False).returncode == 42
    r = daemon.docker("exec", web, "sh", "-c", "echo out; echo err >&2")
    assert (r.stdout, r.stderr) == ("out\n", "err\n")

    # -d returns while the process still runs: it is in `top` right after
    daemon.docker("exec", "-d", web, "sleep", "5")
    top = daemon.docker("top", web).stdout
    assert "sleep 5" in top


def test_exec_flags_env_user_workdir_stdin(daemon, web):
    r = daemon.docker("exec", "-e", "FOO=bar", "-u", "nobody", "-w", "/tmp", web,
                      "sh", "-c", 'echo "$FOO $(id -u) $(pwd)"')
    assert r.stdout == "bar 65534 /tmp\n"
    r = daemon.docker("exec", "-i", web, "sh", "-c", "cat; echo eof", input="one\ntwo\n")
    assert r.stdout == "one\ntwo\neof\n"
    r = daemon.docker("exec", web, "no-such-binary", check=False)
    assert r.returncode == 127
    assert "executable file not found" in r.stderr + r.stdout


def test_exec_api_errors_and_inspect(daemon, bb_image, web):
    st, body = daemon.api("GET", "/exec/deadbeef/json")
    assert st == 404 and json.loads(body)["message"] == "No such exec instance: deadbeef"
    st, _ = daemon.api("POST", "/exec/deadbeef/resize?h=1&w=1")
    assert st == 404
    stopped = _name("stopped")
    daemon.docker("create", "--name", stopped, bb_image, "true")
    try:
        st, body = daemon.api("POST", f"/containers/{stopped}/exec", {"Cmd": ["true"]})
        assert st == 409 and "is not running" in json.loads(body)["message"]
    finally:
        daemon.docker("rm", "-f", stopped, check=False)
    st, body = daemon.api("POST", f"/containers/{web}/exec", {"Cmd": []})
    assert st == 400
    st, body = daemon.api("POST", f"/containers/{web}/exec", {"Cmd": ["sh", "-c", "exit 5"], "AttachStdout": True})
    assert st == 201
    eid = json.loads(body)["Id"]
    st, body = daemon.api("GET", f"/exec/{eid}/json")
    info = json.loads(body)
    assert info["Running"] is False and info["ExitCode"] is None
    assert info["ProcessConfig"]["entrypoint"] == "sh" and info["ProcessConfig"]["arguments"] == ["-c", "exit 5"]
    assert daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})[0] == 200
    for _ in range(100):
        info = json.loads(daemon.api("GET", f"/exec/{eid}/json")[1])
        if not info["Running"] and info["ExitCode"] is not None:
            break
        time.sleep(0.05)
    assert info["ExitCode"] == 5
    st, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})
    assert st == 409


def test_docker_py_exec_run(daemon, web):
    c = daemon.client().containers.get(web)
    r = c.exec_run(["sh", "-c", "echo o; echo e >&2; exit 4"], demux=True)
    assert r.exit_code == 4
    assert r.output == (b"o\n", b"e\n")
    r = c.exec_run("sh -c 'echo tty'", tty=True)
    assert r.exit_code == 0 and r.output == b"tty\r\n"
    r = c.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
    assert b"".join(r.output) == b"1\n2\n3\n"
    r = c.exec_run(["sh", "-c", "echo a; echo b >&2"], stream=True, demux=True)
    got = list(r.output)
    assert b"".join(o for o, _ in got if o) == b"a\n" and b"".join(e for _, e in got if e) == b"b\n"


# ------------------------------------------------------------------ attach via docker-py

def test_docker_py_attach_socket(daemon, bb_image):
    name = _name("cat")
    client = daemon.client()
    c = client.containers.run(bb_image, ["cat"], name=name, stdin_open=True, detach=True)
    try:
        s = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        sock = s._sock
        sock.sendall(b"ping\n")
        sock.settimeout(10)
        buf = b""
        while len(buf) < 8 + 5:
            chunk = sock.recv(4096)
            assert chunk
            buf += chunk
        kind, length = struct.unpack(">BxxxL", buf[:8])
        assert (kind, buf[8:8 + length]) == (1, b"ping\n")
        sock.close()
        s.close()
    finally:
        c.remove(force=True)


# ------------------------------------------------------------------ logs

def test_logs_since_tail_timestamps_and_follow(daemon, bb_image):
    name = _name("lg")
    daemon.docker("run", "-d", "--name", name, bb_image, "sh", "-c",
                  "for i in 1 2 3 4 5; do echo early$i; echo err$i >&2; done; "
                  "sleep 3; for i in 1 2 3 4; do echo late$i; done; sleep 2")
    try:
        time.sleep(3.5)
        r = daemon.docker("logs", "--since", "2s", "--tail", "3", "-t", name)
        lines = r.stdout.splitlines()
        assert [l.split(" ", 1)[1] for l in lines] == ["late2", "late3", "late4"]
        assert all(l.split(" ", 1)[0].endswith("Z") for l in lines)
        r = daemon.docker("logs", name)
        assert r.stdout.splitlines()[:5] == [f"early{i}" for i in range(1, 6)]
        assert r.stderr.splitlines() == [f"err{i}" for i in range(1, 6)]
        # -f ends by itself when the container exits
        r = daemon.docker("logs", "-f", "--tail", "1", name, timeout=20)
        assert r.stdout == "late4\n"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_docker_py_logs_follow_since_until_tail(daemon, bb_image):
    client = daemon.client()
    c = client.containers.run(bb_image, ["sh", "-c", "echo a; sleep 1.5; echo b; echo c; sleep 1"], detach=True)
    try:
        streamed = b"".join(c.logs(stream=True, follow=True))
        assert streamed == b"a\nb\nc\n"
        assert c.logs(tail=1) == b"c\n"
        t_mid = json.loads(daemon.docker("inspect", c.id).stdout)[0]["State"]["StartedAt"]
        logs_ts = c.logs(timestamps=True).decode().splitlines()
        ts_b = logs_ts[1].split(" ")[0]
        from dockyard.daemon.logs import parse_time
        tb = parse_time(ts_b.replace("Z", "+00:00"))
        assert c.logs(since=tb - 0.5) == b"b\nc\n"
        assert c.logs(until=tb - 0.5) == b"a\n"
        assert t_mid
    finally:
        c.remove(force=True)


def test_logs_one_frame_per_line(daemon, bb_image):
    """dockerd sends one multiplexed frame per log line: docker-py's
    logs(stream=True) yields one item per line, followed or not (the order
    between stdout and stderr is the order conmon read its two pipes in)."""
    client = daemon.client()
    c = client.containers.run(bb_image, ["sh", "-c", "echo hello; echo world; echo oops >&2; echo more; sleep 1"],
                              detach=True)
    try:
        followed = list(c.logs(stream=True, follow=True))
        assert sorted(followed) == [b"hello\n", b"more\n", b"oops\n", b"world\n"]
        assert list(c.logs(stream=True)) == followed
        assert list(c.logs(stream=True, stderr=False)) == [b"hello\n", b"world\n", b"more\n"]
        # raw frames over the API: stream ids kept per line
        status, body = daemon.api("GET", f"/containers/{c.id}/logs?stdout=1&stderr=1")
        assert status == 200
        got = []
        while body:
            kind, n = struct.unpack(">BxxxL", body[:8])
            got.append((kind, body[8:8 + n]))
            body = body[8 + n:]
        assert [d for k, d in got if k == 1] == [b"hello\n", b"world\n", b"more\n"]
        assert [d for k, d in got if k == 2] == [b"oops\n"]
    finally:
        c.remove(force=True)


def test_logs_100mb_byte_exact_in_order(daemon, bb_image):
    """Every byte arrives, in order, stdout and stderr apart; the log also
    rotates several times on the way (30 MB files)."""
    name = _name("big")
    n = 100_000
    script = ("awk 'BEGIN{p=sprintf(\"%991s\",\"\"); for(i=0;i<" + str(n) + ";i++){printf \"%08d%s\\n\", i, p};"
              " print \"tail-on-stderr\" > \"/dev/stderr\"}'")
    daemon.docker("run", "--name", name, "--log-opt", "max-size=30m", "--log-opt", "max-file=10",
                  bb_image, "sh", "-c", script, timeout=120)
    try:
        r = daemon.docker("logs", name, text=False, timeout=120)
        pad = b" " * 991
        expected = b"".join(b"%08d%s\n" % (i, pad) for i in range(n))
        assert len(r.stdout) == len(expected) == 100_000_000
        assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(expected).hexdigest()
        assert r.stderr == b"tail-on-stderr\n"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_rotation_keeps_max_file_and_shows_newest(daemon, bb_image):
    name = _name("rot")
    daemon.docker("run", "--name", name, "--log-opt", "max-size=1m", "--log-opt", "max-file=3", bb_image,
                  "awk", 'BEGIN{for(i=0;i<100000;i++) printf "line %d %90s\\n", i, "x"}', timeout=120)
    try:
        info = json.loads(daemon.docker("inspect", name).stdout)[0]
        assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "1m"}}
        logdir = os.path.dirname(info["LogPath"])
        base = os.path.basename(info["LogPath"])
        files = [f for f in os.listdir(logdir) if f == base or (f.startswith(base + ".") and f[len(base) + 1:].isdigit())]
        assert 1 <= len(files) <= 3
        out = daemon.docker("logs", name).stdout.splitlines()
        assert out[-1].startswith("line 99999 ")
        bad = [(i, l) for i, l in enumerate(out) if len(l.split()) != 3]
        assert not bad, (bad[:5], len(out), out[:3])
        nums = [int(l.split()[1]) for l in out]
        assert nums == list(range(nums[0], 100000))   # a contiguous run ending at the newest line
        assert nums[0] > 0                            # older lines were rotated away
        assert daemon.docker("logs", "--tail", "2", name).stdout.splitlines()[0].startswith("line 99998 ")
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_log_driver_none_and_bad_opts(daemon, bb_image):
    name = _name("nolog")
    daemon.docker("run", "--name", name, "--log-driver", "none", bb_image, "echo", "hi")
    try:
        r = daemon.docker("logs", name, check=False)
        assert r.returncode != 0 and "does not support reading" in r.stderr
    finally:
        daemon.docker("rm", "-f", name, check=False)
    r = daemon.docker("create", "--log-opt", "bogus=1", bb_image, "true", check=False)
    assert r.returncode != 0 and "unknown log opt 'bogus' for json-file log driver" in r.stderr
    r = daemon.docker("create", "--log-driver", "nosuch", bb_image, "true", check=False)
    assert r.returncode != 0 and "no log driver named 'nosuch'" in r.stderr
    r = daemon.docker("create", "--log-opt", "max-file=0", bb_image, "true", check=False)
    assert r.returncode != 0 and "max-file cannot be less than 1" in r.stderr


# ------------------------------------------------------------------ stats and top

def test_stats_no_stream_and_docker_py(daemon, web):
    r = daemon.docker("stats", "--no-stream", web)
    header, row = r.stdout.splitlines()[:2]
    for col in ("CPU %", "MEM USAGE / LIMIT", "PIDS"):
        assert col in header
    assert web in row
    cells = row.split()
    assert cells[-1].isdigit() and int(cells[-1]) >= 1     # PIDs
    assert "/" in row and "%" in row
    s = daemon.client().containers.get(web).stats(stream=False)
    assert s["name"] == "/" + web
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["cpu_stats"]["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"] > 0
    assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0
    assert s["memory_stats"]["stats"]
    assert s["pids_stats"]["current"] >= 1
    assert "eth0" in s["networks"] and s["networks"]["eth0"]["rx_bytes"] >= 0
    one = daemon.client().api.stats(web, stream=False, one_shot=True)
    assert one["preread"] == "0001-01-01T00:00:00Z"
    # streaming: two readings, the second with the first as precpu
    it = daemon.client().api.stats(web, decode=True, stream=True)
    a, b = next(it), next(it)
    assert b["precpu_stats"]["cpu_usage"]["total_usage"] == a["cpu_stats"]["cpu_usage"]["total_usage"]


def test_top(daemon, bb_image, web):
    r = daemon.docker("top", web)
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"]
    assert any("sleep 100000" in l for l in lines[1:])
    r = daemon.docker("top", web, "-o", "pid,comm")
    assert r.stdout.split()[:2] == ["PID", "COMMAND"] and "sleep" in r.stdout
    st, body = daemon.api("GET", f"/containers/{web}/top?ps_args=aux")
    top = json.loads(body)
    assert "COMMAND" in top["Titles"] and any("sleep" in p[-1] for p in top["Processes"])
    stopped = _name("stopped")
    daemon.docker("create", "--name", stopped, bb_image, "true")
    try:
        st, body = daemon.api("GET", f"/containers/{stopped}/top")
        assert st == 409 and "is not running" in json.loads(body)["message"]
    finally:
        daemon.docker("rm", "-f", stopped, check=False)


# ------------------------------------------------------------------ our CLI

def test_dockyard_cli_exec_attach_stats_top(daemon, bb_image, web):
    r = daemon.dockyard("exec", "-e", "A=1", "-w", "/tmp", "-u", "nobody", web,
                        "sh", "-c", 'echo "$A $(pwd) $(id -u)"; echo err >&2; exit 3', check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "1 /tmp 65534\n", "err\n")
    assert daemon.dockyard("exec", "-i", web, "cat", input="piped\n").stdout == "piped\n"
    daemon.dockyard("exec", "-d", web, "sleep", "4")
    assert "sleep 4" in daemon.dockyard("top", web).stdout
    out = daemon.dockyard("stats", "--no-stream", web).stdout.splitlines()
    assert out[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and web in out[1] and "%" in out[1]

    exe = os.path.join(os.path.dirname(sys.executable), "dockyard")
    p = pexpect.spawn(exe, ["exec", "-it", web, "sh"], env=daemon.env, dimensions=(30, 90), timeout=15)
    p.expect("# ")
    p.sendline('until [ "$(stty size)" = "30 90" ]; do :; done; echo ok-$((1+1))')
    p.expect("ok-2")
    p.sendline("exit 4")
    p.expect(pexpect.EOF)
    p.close()
    assert p.exitstatus == 4

    name = _name("att")
    daemon.docker("run", "-dit", "--name", name, bb_image, "sh")
    try:
        a = pexpect.spawn(exe, ["attach", name], env=daemon.env, dimensions=(25, 80), timeout=15)
        a.sendline("echo in-$((2+3))")   # waits in the pty until the attach carries it
        a.expect("in-5")
        a.send("\x10\x11")
        a.expect(pexpect.EOF)
        a.close()
        assert a.exitstatus == 0
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_clients_that_vanish_mid_stream_leave_nothing_stuck(daemon, bb_image):
    """logs -f, attach and exec clients killed mid-stream: the container keeps
    running and writing, the daemon keeps answering, a new reader sees all."""
    import subprocess
    name = _name("chatty")
    daemon.docker("run", "-d", "--name", name, bb_image, "sh", "-c",
                  "i=0; while :; do echo tick$i; i=$((i+1)); usleep 2000; done")
    try:
        env = daemon.env
        docker = ["docker", "-H", daemon.host]
        procs = [subprocess.Popen([*docker, "logs", "-f", name], env=env, stdout=subprocess.PIPE),
                 subprocess.Popen([*docker, "attach", "--no-stdin", name], env=env, stdout=subprocess.PIPE),
                 subprocess.Popen([*docker, "exec", name, "sh", "-c", "while :; do echo x; done"], env=env,
                                  stdout=subprocess.PIPE)]
        for p in procs:
            assert p.stdout.read(64)          # streaming
        for p in procs:
            p.kill()
            p.wait()
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
        n1 = int(daemon.docker("logs", "--tail", "1", name).stdout.strip()[4:])
        # the container still writes: a later line appears (no sleep-based timing assertion)
        p = subprocess.Popen([*docker, "logs", "-f", "--tail", "0", name], env=env, stdout=subprocess.PIPE)
        line = p.stdout.readline()
        p.kill()
        p.wait()
        assert int(line.strip()[4:]) > n1
        assert daemon.docker("exec", name, "true").returncode == 0
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_sig_proxy_and_privileged_exec(daemon, bb_image, web):
    import signal
    import subprocess
    p = subprocess.Popen(["docker", "-H", daemon.host, "run", "--rm", bb_image, "sh", "-c",
                          'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done'],
                         env=daemon.env, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGTERM)          # the CLI forwards it (--sig-proxy, default on)
        assert p.stdout.readline() == "got-term\n"
        assert p.wait(30) == 7
    finally:
        if p.poll() is None:
            p.kill()
    # privileged exec gets the full capability set; a plain one does not
    plain = daemon.docker("exec", web, "grep", "CapEff", "/proc/self/status").stdout.split()[1]
    priv = daemon.docker("exec", "--privileged", web, "grep", "CapEff", "/proc/self/status").stdout.split()[1]
    assert int(priv, 16) > int(plain, 16)


def test_follow_across_many_rotations_loses_nothing(daemon, bb_image):
    """`logs -f` attached before the container writes: 50 000 lines through
    ~25 rotations arrive complete and in order."""
    import subprocess
    name = _name("rotf")
    n = 50_000
    # the follower starts while the container runs (Docker does not follow a stopped one);
    # whenever it starts, it reads the kept files first, then follows
    daemon.docker("run", "-d", "--name", name, "--log-opt", "max-size=256k", "--log-opt", "max-file=100", bb_image,
                  "sh", "-c", "sleep 1; awk 'BEGIN{for(i=0;i<%d;i++) printf \"%%d %%90s\\n\", i, \"x\"}'" % n)
    try:
        p = subprocess.Popen(["docker", "-H", daemon.host, "logs", "-f", name], env=daemon.env,
                             stdout=subprocess.PIPE)
        out, _ = p.communicate(timeout=60)
        nums = [int(l.split()[0]) for l in out.decode().splitlines()]
        assert nums == list(range(n))
        logdir = os.path.dirname(json.loads(daemon.docker("inspect", name).stdout)[0]["LogPath"])
        # it did rotate, many times: ~8 MB at 256k is ~30 files when the daemon keeps up;
        # a busy daemon rotates later (a file overshoots max-size, see logrotate.py)
        assert len([f for f in os.listdir(logdir) if f.startswith("ctr.log.")]) >= 5
    finally:
        daemon.docker("rm", "-f", name, check=False)

"""The foundation's acceptance, through the real docker CLI against dockyardd."""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import time
import urllib.parse



def _inspect(daemon, ref):
    return json.loads(daemon.docker("inspect", ref).stdout)[0]


def _host_objects(daemon, cid, veths=None):
    """What a running container has on the host: mounts naming it, its netns
    file, the veths on the daemon's bridge (or, given names, those of them
    still there), its cgroups under the daemon's --cgroup-parent."""
    mounts = [l for l in open("/proc/self/mountinfo") if cid in l]
    netns = [p for p in [os.path.join(daemon.exec_root, "netns", cid)] if os.path.exists(p)]
    if veths is None:
        out = subprocess.run(["ip", "-o", "link", "show", "master", daemon.bridge],
                             capture_output=True, text=True).stdout
        veths = [l.split(":")[1].strip().split("@")[0] for l in out.splitlines()]
    else:
        veths = [v for v in veths if os.path.exists(f"/sys/class/net/{v}")]
    cgroups = glob.glob(f"/sys/fs/cgroup/*/dockyard-{daemon.bridge}/{cid}")
    return {"mounts": mounts, "netns": netns, "veths": veths, "cgroups": cgroups}


def test_version_and_info(daemon):
    r = daemon.docker("version")
    assert "Server:" in r.stdout and "Client:" in r.stdout
    assert "API version:" in r.stdout and "1.50" in r.stdout
    assert r.stderr.strip() == ""
    r = daemon.docker("info")
    assert "Server Version" in r.stdout
    assert "crun" in r.stdout or "runc" in r.stdout


def test_api_version_bounds(daemon):
    st, body = daemon.api("GET", "/v1.12/version")
    assert st == 400
    assert json.loads(body)["message"].startswith("client version 1.12 is too old. Minimum supported API version is 1.24")
    st, body = daemon.api("GET", "/v9.99/version")
    assert st == 400 and "is too new" in json.loads(body)["message"]
    assert daemon.api("GET", "/v1.24/_ping")[0] == 200
    assert daemon.api("GET", "/v1.41/containers/json")[0] == 200


def test_run_echo_exit_codes_and_missing_command(daemon, bb_image):
    r = daemon.docker("run", "--rm", bb_image, "echo", "hello")
    assert r.stdout == "hello\n"
    r = daemon.docker("run", "--name", "ex3", bb_image, "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3
    assert daemon.docker("wait", "ex3").stdout.strip() == "3"
    r = daemon.docker("run", "--name", "nocmd", bb_image, "nosuchcmd", check=False)
    assert r.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.stderr
    st = _inspect(daemon, "nocmd")["State"]
    assert st["ExitCode"] == 127 and st["Status"] == "created" and "executable file not found" in st["Error"]
    trace = _inspect(daemon, "nocmd")["StartTrace"]
    assert trace["FailedStep"] == "spec" and not trace["Ok"]
    # a file that is there but not executable (busybox image: /etc/passwd is 0644)
    r = daemon.docker("run", "--name", "noexec", bb_image, "/etc/passwd", check=False)
    assert r.returncode == 126
    assert 'exec: "/etc/passwd": permission denied' in r.stderr
    assert _inspect(daemon, "noexec")["State"]["ExitCode"] == 126
    daemon.docker("rm", "ex3", "nocmd", "noexec")
    # the failed start left nothing mounted
    assert not [l for l in open("/proc/self/mountinfo") if str(daemon.base) in l and "overlay" in l]


def test_detached_lifecycle_prefixes_and_stop(daemon, bb_image):
    cid = daemon.docker("run", "-d", "--name", "web", bb_image, "sleep", "1000").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    made = _host_objects(daemon, cid)
    assert made["mounts"] and made["netns"] and made["veths"] and made["cgroups"], made
    try:
        assert "web" in daemon.docker("ps").stdout
        info = _inspect(daemon, "web")
        assert info["State"]["Running"] is True and info["Name"] == "/web"
        pid = info["State"]["Pid"]
        assert pid > 0 and os.path.exists(f"/proc/{pid}")
        assert _inspect(daemon, cid[:4])["Id"] == cid
        steps = [s["Step"] for s in info["StartTrace"]["Steps"]]
        assert steps == ["lookup", "verify", "mount", "volumes", "network", "spec", "bundle", "supervise"]
        # a prefix shared by two containers is refused, never guessed: of 17
        # ids, two share a first hex digit (pigeonhole)
        ids = [cid]
        seen = {cid[0]: cid}
        while True:
            other = daemon.docker("create", bb_image, "true").stdout.strip()
            ids.append(other)
            if other[0] in seen:
                break
            seen[other[0]] = other
        r = daemon.docker("inspect", "--type", "container", other[0], check=False)
        assert r.returncode != 0 and f"multiple IDs found with provided prefix: {other[0]}" in r.stderr
        daemon.docker("rm", *ids[1:])
        t0 = time.monotonic()
        daemon.docker("stop", "-t", "2", "web")
        assert time.monotonic() - t0 < 8
        st = _inspect(daemon, "web")["State"]
        assert st["Running"] is False and st["ExitCode"] == 137
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    finally:
        daemon.docker("rm", "-f", "web", check=False)
    r = daemon.docker("inspect", "web", check=False)
    assert r.returncode != 0
    assert not os.path.exists(os.path.join(daemon.data_root, "containers", cid))
    assert not os.path.exists(os.path.join(daemon.exec_root, "c", cid))
    assert not os.path.exists(os.path.join(daemon.data_root, "overlay", cid))
    gone = _host_objects(daemon, cid, veths=made["veths"])
    assert not any(gone.values()), gone


def test_errors_match_docker(daemon, bb_image):
    r = daemon.docker("start", "nosuch", check=False)
    assert r.returncode != 0 and "No such container: nosuch" in r.stderr
    daemon.docker("run", "-d", "--name", "busy", bb_image, "sleep", "100")
    try:
        r = daemon.docker("create", "--name", "busy", bb_image, "true", check=False)
        assert r.returncode != 0
        assert 'The container name "/busy" is already in use by container' in r.stderr
        r = daemon.docker("rm", "busy", check=False)
        assert r.returncode != 0 and "You cannot remove a running container" in r.stderr
        assert daemon.api("POST", "/containers/busy/start")[0] == 304
        st, body = daemon.api("POST", "/containers/create", b"{not json", {"Content-Type": "application/json"})
        assert st == 400 and "invalid JSON" in json.loads(body)["message"]
        st, body = daemon.api("POST", "/containers/create?name=bad%20name", {"Image": "bb"})
        assert st == 400 and "Invalid container name" in json.loads(body)["message"]
        st, body = daemon.api("POST", "/containers/create", {"Image": "nosuchimage"})
        assert st == 404 and json.loads(body)["message"].startswith("No such image")
        # fields of the wrong type or value: 400, nothing created
        n = len(json.loads(daemon.api("GET", "/containers/json?all=1")[1]))
        for bad, words in (({"Image": "bb", "Cmd": 5}, "invalid Cmd"),
                           ({"Image": "bb", "Env": "A=1"}, "invalid Env"),
                           ({"Image": "bb", "HostConfig": []}, "HostConfig"),
                           ({"Image": "bb", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}},
                            "invalid restart policy")):
            st, body = daemon.api("POST", "/containers/create", bad)
            assert st == 400 and words in json.loads(body)["message"], (bad, st, body)
        assert len(json.loads(daemon.api("GET", "/containers/json?all=1")[1])) == n
        st, body = daemon.api("GET", "/containers/json?filters=" + urllib.parse.quote('{"bogus":["x"]}'))
        assert st == 400 and "invalid filter 'bogus'" in json.loads(body)["message"]
        st, body = daemon.api("POST", "/containers/busy/wait?condition=sometime")
        assert st == 400 and "invalid condition" in json.loads(body)["message"]
    finally:
        daemon.docker("rm", "-f", "busy")
    daemon.docker("create", "--name", "idle", bb_image, "true")
    assert daemon.api("POST", "/containers/idle/stop")[0] == 304
    st, body = daemon.api("POST", "/containers/idle/kill")
    assert st == 409 and "is not running" in json.loads(body)["message"]
    daemon.docker("rm", "idle")


def test_network_modes(daemon, bb_image):
    out = daemon.docker("run", "--rm", "--network", "none", bb_image, "ip", "-o", "link").stdout
    assert [l.split(":")[1].strip() for l in out.splitlines()] == ["lo"]
    out = daemon.docker("run", "--rm", bb_image, "sh", "-c", "ip -4 -o addr show eth0; ip route").stdout
    assert re.search(r"inet 10\.\d+\.\d+\.\d+/24", out)
    assert "default via" in out
    out = daemon.docker("run", "--rm", "--network", "host", bb_image, "ip", "-o", "link").stdout
    seen = {l.split(":")[1].strip().split("@")[0] for l in out.splitlines()}
    # the host's own interfaces, including this daemon's bridge (other tests add and drop veths meanwhile)
    assert {"lo", daemon.bridge} <= seen and len(seen) > 2
    daemon.docker("run", "-d", "--name", "netweb", bb_image, "sleep", "100")
    try:
        a = daemon.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "netweb").stdout.strip()
        out = daemon.docker("run", "--rm", "--network", "container:netweb", bb_image,
                            "ip", "-4", "-o", "addr", "show", "eth0").stdout
        assert a and a in out
    finally:
        daemon.docker("rm", "-f", "netweb")


def test_logs_wait_restart_and_autoremove(daemon, bb_image):
    daemon.docker("run", "--name", "echoer", bb_image, "sh", "-c", "echo out; echo err >&2")
    r = daemon.docker("logs", "echoer")
    assert r.stdout == "out\n" and r.stderr == "err\n"
    assert daemon.docker("wait", "echoer").stdout.strip() == "0"
    daemon.docker("rm", "echoer")

    daemon.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", bb_image, "sh", "-c", "exit 1")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = _inspect(daemon, "flaky")
        if info["State"]["Status"] == "exited" and info["RestartCount"] == 2:
            break
        time.sleep(0.1)
    info = _inspect(daemon, "flaky")
    assert info["RestartCount"] == 2 and info["State"]["Status"] == "exited"
    time.sleep(1)
    assert _inspect(daemon, "flaky")["RestartCount"] == 2
    daemon.docker("rm", "flaky")

    daemon.docker("run", "--rm", "--name", "gone", bb_image, "true")
    assert daemon.docker("inspect", "gone", check=False).returncode != 0
    cid = daemon.docker("run", "-d", "--rm", bb_image, "true").stdout.strip()
    deadline = time.monotonic() + 10
    while daemon.docker("inspect", cid, check=False).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.docker("inspect", cid, check=False).returncode != 0


def test_daemon_crash_keeps_containers(daemon, bb_image):
    daemon.docker("run", "-d", "--name", "survivor", bb_image, "sh", "-c", "echo before; sleep 1000")
    pid = _inspect(daemon, "survivor")["State"]["Pid"]
    daemon.docker("run", "-d", "--name", "quitter", bb_image, "sh", "-c", "sleep 1; exit 7")
    daemon.kill9()
    time.sleep(1.5)   # quitter exits while the daemon is down
    assert os.path.exists(f"/proc/{pid}")
    daemon.start()
    info = _inspect(daemon, "survivor")
    assert info["State"]["Running"] is True and info["State"]["Pid"] == pid
    assert "before" in daemon.docker("logs", "survivor").stdout
    q = _inspect(daemon, "quitter")["State"]
    assert q["Status"] == "exited" and q["ExitCode"] == 7
    # wait and stop on the re-adopted container: the daemon learns its exit
    waiter = subprocess.Popen(["docker", "-H", daemon.host, "wait", "survivor"], env=daemon.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert waiter.poll() is None          # it is still running: wait blocks
        t0 = time.monotonic()
        daemon.docker("stop", "-t", "1", "survivor")
        assert time.monotonic() - t0 < 8
        out, err = waiter.communicate(timeout=10)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0 and out.strip() == "137", err
    st = _inspect(daemon, "survivor")["State"]
    assert st["Running"] is False and st["ExitCode"] == 137
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    daemon.docker("rm", "survivor", "quitter")

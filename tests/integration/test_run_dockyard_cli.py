"""The foundation through dockyard's own CLI."""
from __future__ import annotations

import json
import re



def test_cli_run_ps_inspect_trace_logs(daemon, bb_image):
    r = daemon.dockyard("run", "--rm", bb_image, "echo", "hello")
    assert r.stdout == "hello\n" and r.returncode == 0
    r = daemon.dockyard("run", bb_image, "sh", "-c", "exit 4", check=False)
    assert r.returncode == 4
    r = daemon.dockyard("run", bb_image, "nosuchcmd", check=False)
    assert r.returncode == 127 and "executable file not found" in r.stderr
    cid = daemon.dockyard("run", "-d", "--name", "cliweb", "-e", "A=1", "-l", "team=x", "--hostname", "hh",
                          "--restart", "unless-stopped", bb_image, "sleep", "100").stdout.strip()
    try:
        assert re.fullmatch(r"[0-9a-f]{64}", cid)
        ps = daemon.dockyard("ps").stdout
        assert "cliweb" in ps and "Up " in ps and "CONTAINER ID" in ps
        assert daemon.dockyard("ps", "-q").stdout.split() == [cid[:12]]
        assert daemon.dockyard("ps", "--filter", "label=team=x", "--format", "{{.Names}}").stdout.strip() == "cliweb"
        pid = daemon.dockyard("inspect", "--format", "{{.State.Pid}}", "cliweb").stdout.strip()
        assert int(pid) > 0
        info = json.loads(daemon.dockyard("inspect", "cliweb").stdout)[0]
        assert "A=1" in info["Config"]["Env"] and info["Config"]["Hostname"] == "hh"
        assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        trace = json.loads(daemon.dockyard("inspect", "--format", "{{json .StartTrace}}", "cliweb").stdout)
        assert trace["Ok"] and [s["Step"] for s in trace["Steps"]][-1] == "supervise"
        view = daemon.dockyard("trace", "cliweb").stdout
        assert "supervise" in view and "network" in view
        assert daemon.dockyard("rename", "cliweb", "cliweb2").returncode == 0
        daemon.dockyard("stop", "-t", "1", "cliweb2")
        assert daemon.dockyard("wait", "cliweb2").stdout.strip() == "137"
        assert "Exited (137)" in daemon.dockyard("ps", "-a", "--filter", "name=cliweb2").stdout
    finally:
        daemon.dockyard("rm", "-f", "cliweb", "cliweb2", check=False)
    r = daemon.dockyard("inspect", "cliweb2", check=False)
    assert r.returncode != 0 and "No such" in r.stderr


def test_cli_errors_are_docker_style(daemon, bb_image):
    r = daemon.dockyard("start", "nosuch", check=False)
    assert r.returncode != 0
    assert "Error response from daemon: No such container: nosuch" in r.stderr
    r = daemon.dockyard("run", "no-such-image", "true", check=False)
    assert r.returncode == 125 and "Unable to find image" in r.stderr


def test_cli_images_import_tag_rmi_version_info(daemon, busybox_tar, bb_image):
    daemon.dockyard("import", str(busybox_tar), "bb2:one", "-c", "CMD [\"echo\", \"from-cmd\"]")
    assert "bb2" in daemon.dockyard("images").stdout
    assert daemon.dockyard("run", "--rm", "bb2:one").stdout == "from-cmd\n"
    daemon.dockyard("tag", "bb2:one", "bb2:two")
    assert {"one", "two"} <= set(daemon.dockyard("images", "--format", "{{.Tag}}", "bb2").stdout.split())
    daemon.dockyard("rmi", "bb2:one", "bb2:two")
    assert "bb2" not in daemon.dockyard("images").stdout
    v = daemon.dockyard("version").stdout
    assert "Server" in v and "1.50" in v
    assert "Containers" in daemon.dockyard("info").stdout


def test_cli_logs_and_streams(daemon, bb_image):
    daemon.dockyard("run", "--name", "clilogs", bb_image, "sh", "-c", "echo o1; echo e1 >&2; sleep 0.2; echo o2")
    try:
        r = daemon.dockyard("logs", "clilogs")
        assert r.stdout == "o1\no2\n" and r.stderr == "e1\n"
        r = daemon.dockyard("logs", "--tail", "1", "clilogs")
        assert r.stdout + r.stderr == "o2\n"
    finally:
        daemon.dockyard("rm", "clilogs")

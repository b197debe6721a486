"""Healthchecks: states, the ps column, events, the log, a daemon restart."""
from __future__ import annotations

import json
import time


from conftest import unique_name

SECOND = 1_000_000_000


def _wait_health(daemon, name, want, timeout=20):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        st = json.loads(daemon.docker("inspect", "-f", "{{json .State.Health}}", name).stdout)
        if st and (not seen or seen[-1] != st["Status"]):
            seen.append(st["Status"])
        if st and st["Status"] == want:
            return st, seen
        time.sleep(0.2)
    raise AssertionError(f"{name} never became {want}: saw {seen}")


def _ps_status(daemon, name):
    return daemon.docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}").stdout.strip()


def test_cli_starting_healthy_unhealthy(daemon, bb_image):
    name = unique_name()
    # failures in the start period do not count while starting; probes there come every start interval
    daemon.docker("run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok", "--health-interval", "300ms",
                  "--health-retries", "2", "--health-start-period", "10s", "--health-start-interval", "200ms",
                  "bb", "sh", "-c", "sleep 1; touch /tmp/ok; sleep 100")
    try:
        assert _ps_status(daemon, name).endswith("(health: starting)")
        st, seen = _wait_health(daemon, name, "healthy")
        assert seen[0] == "starting"
        assert st["FailingStreak"] == 0 and st["Log"][-1]["ExitCode"] == 0
        assert any(e["ExitCode"] == 1 for e in st["Log"])      # failed probes before, not counted
        assert _ps_status(daemon, name).endswith("(healthy)")
        hc = json.loads(daemon.docker("inspect", "-f", "{{json .Config.Healthcheck}}", name).stdout)
        assert hc["Test"] == ["CMD-SHELL", "test -f /tmp/ok"] and hc["Interval"] == 300_000_000
        assert hc["StartPeriod"] == 10 * SECOND and hc["StartInterval"] == 200_000_000
        # break it: the same probe now fails, twice in a row is unhealthy
        daemon.docker("exec", name, "rm", "/tmp/ok")
        st, _ = _wait_health(daemon, name, "unhealthy")
        assert st["FailingStreak"] >= 2 and st["Log"][-1]["ExitCode"] == 1
        assert len(st["Log"]) <= 5
        assert _ps_status(daemon, name).endswith("(unhealthy)")
        ids = daemon.docker("ps", "-q", "--filter", "health=unhealthy", "--filter", f"name={name}").stdout.split()
        assert len(ids) == 1
        r = daemon.docker("events", "--filter", f"container={name}", "--filter", "event=health_status",
                          "--since", "1m", "--until", "0s", "--format", "{{.Action}}")
        assert r.stdout.split("\n")[:2] == ["health_status: healthy", "health_status: unhealthy"]
    finally:
        daemon.docker("rm", "-f", name)


def test_acceptance_command_starting_healthy_unhealthy(daemon, bb_image):
    """The issue's command as written: default retries (3), no start period."""
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s",
                  "bb", "sh", "-c", "sleep 3; touch /tmp/ok; sleep 100")
    try:
        assert _ps_status(daemon, name).endswith("(health: starting)")
        st, seen = _wait_health(daemon, name, "healthy")
        assert seen[0] == "starting" and st["Log"][-1]["ExitCode"] == 0
        assert _ps_status(daemon, name).endswith("(healthy)")
        daemon.docker("exec", name, "rm", "/tmp/ok")
        st, _ = _wait_health(daemon, name, "unhealthy")
        assert st["FailingStreak"] >= 3 and _ps_status(daemon, name).endswith("(unhealthy)")
    finally:
        daemon.docker("rm", "-f", name)


def test_docker_py_timeout_output_and_no_healthcheck(daemon, bb_image):
    client = daemon.client()
    name = unique_name()
    c = client.containers.run("bb", "sleep 100", detach=True, name=name, healthcheck={
        "test": ["CMD", "sh", "-c", "echo probing; sleep 5"], "interval": SECOND // 2,
        "timeout": SECOND // 5, "retries": 1})
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            c.reload()
            if c.attrs["State"]["Health"]["Status"] == "unhealthy":
                break
            time.sleep(0.2)
        h = c.attrs["State"]["Health"]
        assert h["Status"] == "unhealthy"
        assert h["Log"][-1]["ExitCode"] == -1
        # moby keeps what the probe printed before the timeout (when it got that far)
        assert h["Log"][-1]["Output"] in ("Health check exceeded timeout (200ms)",
                                          "Health check exceeded timeout (200ms): probing\n")
        # the timed-out probe's process was killed, not left in the container
        top = daemon.docker("exec", name, "ps").stdout
        assert "sleep 5" not in top
    finally:
        c.remove(force=True)
    c2 = client.containers.run("bb", "true", detach=True, healthcheck={"test": ["NONE"]})
    c2.wait()
    c2.reload()
    assert "Health" not in c2.attrs["State"]
    c2.remove()
    # a Test list without CMD/CMD-SHELL first is no healthcheck at all (moby's getProbe)
    c3 = client.containers.run("bb", "sleep 100", detach=True, healthcheck={"test": ["true"], "interval": SECOND // 5})
    try:
        time.sleep(0.6)
        c3.reload()
        assert c3.attrs["Config"]["Healthcheck"]["Test"] == ["true"]      # kept as given, as Docker does
        assert "Health" not in c3.attrs["State"] and c3.status == "running"
    finally:
        c3.remove(force=True)


def test_bad_healthcheck_is_400(daemon, bb_image):
    status, body = daemon.api("POST", "/containers/create", {"Image": "bb", "Healthcheck": {
        "Test": ["CMD", "true"], "Interval": 1000}})
    assert status == 400 and "cannot be less than 1ms" in json.loads(body)["message"]
    status, body = daemon.api("POST", "/containers/create", {"Image": "bb", "Healthcheck": {
        "Test": ["CMD", "true"], "Retries": -1}})
    assert status == 400 and json.loads(body)["message"] == "Retries in Healthcheck cannot be negative"


def test_health_survives_daemon_restart(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok", "--health-interval", "300ms",
                  "--health-retries", "1", "bb", "sh", "-c", "touch /tmp/ok; sleep 100")
    try:
        _wait_health(daemon, name, "healthy")
        daemon.restart()
        st = json.loads(daemon.docker("inspect", "-f", "{{json .State.Health}}", name).stdout)
        assert st["Status"] == "healthy"           # kept across the restart
        daemon.docker("exec", name, "rm", "/tmp/ok")
        _wait_health(daemon, name, "unhealthy")    # and probing carries on
    finally:
        daemon.docker("rm", "-f", name)


def test_image_healthcheck_merged_and_overridable(daemon, bb_image, busybox_tar):
    img = unique_name()
    daemon.docker("import", "--change", "HEALTHCHECK --interval=1s --retries=1 CMD test -f /tmp/ok",
                  "--change", 'CMD ["sh", "-c", "touch /tmp/ok; sleep 100"]', str(busybox_tar), img)
    a, b = unique_name(), unique_name()
    try:
        daemon.docker("run", "-d", "--name", a, "--health-timeout", "5s", img)
        hc = json.loads(daemon.docker("inspect", "-f", "{{json .Config.Healthcheck}}", a).stdout)
        assert hc["Test"] == ["CMD-SHELL", "test -f /tmp/ok"] and hc["Interval"] == SECOND
        assert hc["Timeout"] == 5 * SECOND                     # ours over the image's, field by field
        _wait_health(daemon, a, "healthy")
        daemon.docker("run", "-d", "--name", b, "--no-healthcheck", img)
        assert "Health" not in json.loads(daemon.docker("inspect", "-f", "{{json .State}}", b).stdout)
        assert daemon.docker("ps", "--filter", f"name={b}", "--format", "{{.Status}}").stdout.strip().startswith("Up")
        assert "(" not in daemon.docker("ps", "--filter", f"name={b}", "--format", "{{.Status}}").stdout
    finally:
        daemon.docker("rm", "-f", a, b)
        daemon.docker("rmi", img)


def test_probe_runs_with_the_containers_env_workdir_and_user(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000",
                  "--health-cmd", 'echo "$FOO $(pwd) $(id -u):$(id -g)"', "--health-interval", "300ms",
                  "bb", "sleep", "100")
    try:
        st, _ = _wait_health(daemon, name, "healthy")
        assert st["Log"][-1]["Output"] == "bar /tmp 1000:1000\n"
    finally:
        daemon.docker("rm", "-f", name)


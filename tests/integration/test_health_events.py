"""Health probes are execs, as in Docker: each emits exec_create, exec_start and
exec_die (execID, exitCode, the container's name/image/labels) before the
health_status event it causes, and `docker events --filter event=exec_die`
sees them."""
from __future__ import annotations

import json
import time

from conftest import unique_name


def _wait_health(daemon, name, want, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = json.loads(daemon.docker("inspect", "-f", "{{json .State.Health}}", name).stdout)
        if st and st["Status"] == want:
            return st
        time.sleep(0.1)
    raise AssertionError(f"{name} never became {want}")


def _events(daemon, name, *filters):
    args = ["events", "--since", "1m", "--until", "0s", "--format", "{{json .}}", "--filter", f"container={name}"]
    for f in filters:
        args += ["--filter", f]
    out = daemon.docker(*args, timeout=20).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _check_probe(evs, cmd, code, name, label):
    """evs: exec_create, exec_start, exec_die of one probe."""
    assert [e["Action"] for e in evs] == [f"exec_create: {cmd}", f"exec_start: {cmd}", "exec_die"]
    ids = {e["Actor"]["Attributes"]["execID"] for e in evs}
    assert len(ids) == 1 and len(ids.pop()) == 64
    for e in evs:
        a = e["Actor"]["Attributes"]
        assert e["Type"] == "container" and a["name"] == name and a["image"] == "bb" and a["probe"] == label
    assert evs[2]["Actor"]["Attributes"]["exitCode"] == code
    assert "exitCode" not in evs[0]["Actor"]["Attributes"]


def test_healthy_and_failing_probes_emit_exec_events(daemon, bb_image):
    ok, bad = unique_name(), unique_name()
    daemon.docker("run", "-d", "--name", ok, "--label", f"probe={ok}", "--health-cmd", "exit 0",
                  "--health-interval", "200ms", "bb", "sleep", "100")
    daemon.docker("run", "-d", "--name", bad, "--label", f"probe={bad}", "--health-cmd", "echo no; exit 1",
                  "--health-interval", "200ms", "--health-retries", "1", "bb", "sleep", "100")
    try:
        _wait_health(daemon, ok, "healthy")
        _wait_health(daemon, bad, "unhealthy")
        evs = _events(daemon, ok)
        assert [e["Action"] for e in evs[:2]] == ["create", "start"]
        _check_probe(evs[2:5], "/bin/sh -c exit 0", "0", ok, ok)
        assert evs[5]["Action"] == "health_status: healthy"          # after the probe that caused it
        assert evs[5]["Actor"]["Attributes"]["name"] == ok

        evs = _events(daemon, bad)
        _check_probe(evs[2:5], "/bin/sh -c echo no; exit 1", "1", bad, bad)
        assert evs[5]["Action"] == "health_status: unhealthy"

        # the CLI's event filter: exec_die exactly; exec_create by prefix; mixed with health_status
        dies = _events(daemon, bad, "event=exec_die")
        assert dies and {e["Action"] for e in dies} == {"exec_die"}
        assert {e["Actor"]["Attributes"]["exitCode"] for e in dies} == {"1"}
        creates = _events(daemon, ok, "event=exec_create")
        assert creates and {e["Action"] for e in creates} == {"exec_create: /bin/sh -c exit 0"}
        mixed = [e["Action"] for e in _events(daemon, ok, "event=exec_die", "event=health_status")]
        assert mixed[:2] == ["exec_die", "health_status: healthy"] and set(mixed) == {"exec_die",
                                                                                      "health_status: healthy"}
        # the API's own filter on a probe's execID-bearing events (docker-py)
        client = daemon.client()
        evs = list(client.events(decode=True, since=int(time.time()) - 60, until=int(time.time()) + 1,
                                 filters={"container": ok, "event": "exec_start"}))
        assert evs and all(e["Action"] == "exec_start: /bin/sh -c exit 0" for e in evs)
    finally:
        daemon.docker("rm", "-f", ok, bad)


def test_timed_out_probe_exec_dies_killed(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "-d", "--name", name, "--label", f"probe={name}", "--health-cmd", "sleep 5",
                  "--health-interval", "200ms", "--health-timeout", "200ms", "--health-retries", "1",
                  "bb", "sleep", "100")
    try:
        st = _wait_health(daemon, name, "unhealthy")
        assert st["Log"][-1]["ExitCode"] == -1
        evs = _events(daemon, name)
        _check_probe(evs[2:5], "/bin/sh -c sleep 5", "137", name, name)   # SIGKILLed, as Docker reports it
        assert evs[5]["Action"] == "health_status: unhealthy"
    finally:
        daemon.docker("rm", "-f", name)

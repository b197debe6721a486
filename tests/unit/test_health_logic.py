"""Healthcheck config merge, validation and probe command."""
from __future__ import annotations

import asyncio
import types

import pytest

from dockyard.daemon import health
from dockyard.errors import InvalidParameter
from dockyard.runtime.runtimes import Runtime

S = 1_000_000_000


def test_container_healthcheck_overrides_image_field_by_field():
    image = {"Test": ["CMD", "img-check"], "Interval": 10 * S, "Retries": 5}
    hc = health.effective({"Test": ["CMD-SHELL", "mine"], "Interval": 0, "Timeout": 2 * S}, image)
    assert hc == {"Test": ["CMD-SHELL", "mine"], "Interval": 10 * S, "Retries": 5, "Timeout": 2 * S}
    assert health.effective(None, image)["Test"] == ["CMD", "img-check"]
    assert health.effective({"Test": ["NONE"]}, image) is None
    assert health.effective(None, None) is None


def test_probe_argv():
    assert health.probe_argv({"Test": ["CMD-SHELL", "test -f /x"]}, None) == ["/bin/sh", "-c", "test -f /x"]
    assert health.probe_argv({"Test": ["CMD-SHELL", "x"]}, ["/bin/ash", "-c"]) == ["/bin/ash", "-c", "x"]
    assert health.probe_argv({"Test": ["CMD", "curl", "-f", "x"]}, None) == ["curl", "-f", "x"]
    # moby appends Test[1:] to the shell, unjoined: the 2nd arg is the script's $0
    assert health.probe_argv({"Test": ["CMD-SHELL", "echo $0-$1", "a", "b"]}, None) == \
        ["/bin/sh", "-c", "echo $0-$1", "a", "b"]


def test_test_list_without_a_known_type_runs_nothing():
    """moby's getProbe: only CMD and CMD-SHELL run; NONE, an unknown first
    word (a bare command list) or an empty Test mean no healthcheck; a
    container's empty Test takes the image's (field-by-field merge)."""
    image = {"Test": ["CMD", "img-check"], "Interval": 10 * S}
    assert health.effective({"Test": ["curl", "-f", "x"]}) is None
    assert health.effective({"Test": ["cmd", "x"]}) is None           # case matters
    assert health.effective({"Test": []}) is None
    assert health.effective({"Test": [], "Retries": 7}, image) == {**image, "Retries": 7}
    assert health.effective({"Test": ["NONE"], "Interval": S}, image) is None


def test_go_duration_wording():
    assert [health._go_duration(n) for n in (200_000_000, S, 1_500_000_000, 90 * S, 7200 * S, 1_500_000)] == \
        ["200ms", "1s", "1.5s", "1m30s", "2h0m0s", "1.5ms"]


class _D:
    """What HealthMonitor.probe touches; the 'runtime' binary drops its
    options and the container ID and execs the probe's argv, so the argv
    really runs."""

    def __init__(self, tmp_path):
        # called with: --root ROOT exec --pid-file FILE ID ARGV... (6 to drop)
        fake = tmp_path / "fake-runtime"
        fake.write_text('#!/bin/sh\nshift 6\nexec "$@"\n')
        fake.chmod(0o755)
        (tmp_path / "runtime" / "fake").mkdir(parents=True, exist_ok=True)
        rt = Runtime("fake", str(fake), str(fake), str(tmp_path / "runtime" / "fake"))
        self.runtime_for = lambda c: rt
        self.containers = types.SimpleNamespace(find=lambda cid: object())
        self.layout = types.SimpleNamespace(container=lambda cid: types.SimpleNamespace(bundle="/nonexistent"))

    def save(self, c):
        pass

    def event(self, c, action, **attrs):
        pass


def _probe(tmp_path, hc):
    c = types.SimpleNamespace(id="c" * 64, runtime="crun", config={})
    d = _D(tmp_path)
    return asyncio.run(health.HealthMonitor(d.containers, d.layout, d.runtime_for, d.save, d.event).probe(c, hc))


def test_cmd_shell_with_several_args_runs_as_dockers(tmp_path):
    res = _probe(tmp_path, {"Test": ["CMD-SHELL", "echo $0-$1", "a", "b"]})
    assert (res["ExitCode"], res["Output"]) == (0, "a-b\n")


def test_probe_output_cut_at_4096_bytes_with_dots(tmp_path):
    res = _probe(tmp_path, {"Test": ["CMD-SHELL", "head -c 10000 /dev/zero | tr '\\0' a; exit 1"]})
    assert res["ExitCode"] == 1 and res["Output"] == "a" * 4096 + "..."
    res = _probe(tmp_path, {"Test": ["CMD-SHELL", "head -c 4096 /dev/zero | tr '\\0' a"]})
    assert res["Output"] == "a" * 4096                                 # exactly the limit: no dots


def test_timed_out_probe_keeps_what_it_said(tmp_path):
    res = _probe(tmp_path, {"Test": ["CMD-SHELL", "echo partial; exec sleep 5"], "Timeout": S // 2})
    assert res["ExitCode"] == -1
    assert res["Output"] == "Health check exceeded timeout (500ms): partial\n"


@pytest.mark.parametrize("hc, msg", [
    ({"Interval": 10}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Timeout": -1}, "Timeout in Healthcheck cannot be negative"),
    ({"Retries": -2}, "Retries in Healthcheck cannot be negative"),
    ({"Test": "true"}, "invalid Healthcheck Test"),
])
def test_validate(hc, msg):
    with pytest.raises(InvalidParameter, match=msg):
        health.validate(hc)
    health.validate({"Test": ["CMD", "true"], "Interval": S, "StartPeriod": 0})


def test_record_rules():
    """Exit 0 heals; failures count only outside the start period; Retries of them is unhealthy."""
    class C:
        class state:
            health = {"Status": "starting", "FailingStreak": 0, "Log": []}
            started_at = "2000-01-01T00:00:00Z"
        short_id = "c"
    events = []

    class D:
        def save(self, c): pass
        def event(self, c, action): events.append(action)
    d = D()
    mon = health.HealthMonitor(None, None, None, d.save, d.event)
    hc = {"Test": ["CMD", "x"], "Retries": 2}
    res = lambda code: {"Start": "", "End": "", "ExitCode": code, "Output": "", "_started": 1e10}
    mon._record(C, hc, res(1))
    assert C.state.health["Status"] == "starting" and C.state.health["FailingStreak"] == 1
    mon._record(C, hc, res(0))
    assert C.state.health["Status"] == "healthy" and C.state.health["FailingStreak"] == 0
    mon._record(C, hc, res(1))
    mon._record(C, hc, res(1))
    assert C.state.health["Status"] == "unhealthy"
    for _ in range(5):
        mon._record(C, hc, res(1))
    assert len(C.state.health["Log"]) == 5 and "_started" not in C.state.health["Log"][0]
    assert events == ["health_status: healthy", "health_status: unhealthy"]
    # inside the start period a failure while starting is not counted
    C.state.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    start = {"_started": health._unix(C.state.started_at) + 1}
    mon._record(C, {"Test": ["CMD", "x"], "Retries": 1, "StartPeriod": 60 * S}, {**res(1), **start})
    assert C.state.health["FailingStreak"] == 0 and C.state.health["Status"] == "starting"

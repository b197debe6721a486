"""Healthcheck config merge, validation and probe command."""
from __future__ import annotations

import pytest

from dockyard.daemon import health
from dockyard.errors import InvalidParameter

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
    mon = health.HealthMonitor(D())
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

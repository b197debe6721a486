"""A listing keeps each row's encoded Status until its text can change
(container_views._status_until): the text must read the same at every
moment of that span, and a short one must end where the text moves on."""
from __future__ import annotations

import pytest

from dockyard.api import container_views as views
from dockyard.daemon.container import Container

START = 1_800_000_000.0
STARTED = "2027-01-15T08:00:00Z"      # START as RFC 3339


def _container(status: str = "running") -> Container:
    c = Container(id="c" * 64, name="web", created=STARTED, image="sha256:" + "0" * 64, image_ref="bb",
                  config={}, host_config={})
    c.state.status = status
    c.state.started_at = STARTED
    c.state.finished_at = STARTED
    c.state.exit_code = 3
    return c


def _text_at(monkeypatch, c: Container, t: float) -> str:
    monkeypatch.setattr(views.time, "time", lambda: t)
    return views.status_text(c)


@pytest.mark.parametrize("status", ["running", "exited", "paused", "restarting"])
@pytest.mark.parametrize("age", [0.0, 0.4, 1.0, 1.7, 59.2, 59.99, 60.0, 61.5, 119.5, 3599.0, 3600.0,
                                 5399.5, 5400.0, 47 * 3600 + 1799.0, 3 * 86400 + 5.0, 20 * 86400.0,
                                 70 * 86400.0, 800 * 86400.0])
def test_the_status_reads_the_same_until_its_span_ends(monkeypatch, status, age):
    assert views._epoch(STARTED) == START
    c = _container(status)
    now = START + age
    until = views._status_until(c, now)
    assert now < until
    first = _text_at(monkeypatch, c, now)
    span = until - now
    for i in range(200):
        t = now + span * i / 200
        assert _text_at(monkeypatch, c, t) == first, (age, t - START)
    assert _text_at(monkeypatch, c, until - 1e-6) == first
    if age < 60:       # seconds: the span is exactly up to the next whole second
        assert _text_at(monkeypatch, c, until) != first


def test_a_status_without_a_clock_never_expires():
    for status in ("created", "dead", "removing"):
        assert views._status_until(_container(status), START) == float("inf")


def test_the_row_encodes_again_when_the_state_or_the_span_moves(monkeypatch):
    c = _container("running")
    row = views._Row(("k",), c, b"{", b"}")
    made = []
    real = views.status_text
    monkeypatch.setattr(views, "status_text", lambda c: made.append(1) or real(c))
    monkeypatch.setattr(views.time, "time", lambda: START + 10.2)
    assert row.status_of(c, START + 10.2) == b'"Up 10 seconds"'
    assert row.status_of(c, START + 10.9) == b'"Up 10 seconds"' and len(made) == 1
    monkeypatch.setattr(views.time, "time", lambda: START + 11.0)
    assert row.status_of(c, START + 11.0) == b'"Up 11 seconds"' and len(made) == 2
    c.state.health = {"Status": "healthy"}
    assert row.status_of(c, START + 11.0) == b'"Up 11 seconds (healthy)"' and len(made) == 3
    c.state.health["Status"] = "unhealthy"        # changed in place
    assert row.status_of(c, START + 11.0) == b'"Up 11 seconds (unhealthy)"'
    monkeypatch.setattr(views.time, "time", lambda: START + 5.0)     # the clock set back
    assert row.status_of(c, START + 5.0) == b'"Up 5 seconds (unhealthy)"'

"""exec_* events: Docker's wording, shared by user execs and health probes;
a probe emits create/start/die around its process; moby's event filter on them."""
from __future__ import annotations

import asyncio
import os
import shlex
import types

from dockyard.daemon import event_filters as ef
from dockyard.daemon import exec_events, health
from dockyard.runtime.runtimes import Runtime

S = 1_000_000_000


class _D:
    """Just what HealthMonitor.probe and exec_events touch."""

    def __init__(self, tmp_path, runtime_argv, present=True):
        self.events = []
        rt = _runtime_running(tmp_path, runtime_argv)
        self.runtime_for = lambda c: rt
        self.containers = types.SimpleNamespace(find=lambda cid: object() if present else None)
        self.layout = types.SimpleNamespace(container=lambda cid: types.SimpleNamespace(bundle="/nonexistent"))

    def save(self, c):
        pass

    def event(self, c, action, **attrs):
        self.events.append((action, attrs))


def _runtime_running(tmp_path, argv) -> Runtime:
    """A Runtime whose 'binary' ignores its arguments and runs argv (a
    missing binary when argv names one that does not exist)."""
    root = os.path.join(str(tmp_path), "runtime", "fake")
    if not argv or not os.path.isabs(argv[0]) or os.path.exists(argv[0]):
        os.makedirs(root, exist_ok=True)
        path = os.path.join(str(tmp_path), "fake-runtime")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + "\n")
        os.chmod(path, 0o755)
    else:
        path = argv[0]
    return Runtime("fake", path, path, root)


_C = types.SimpleNamespace(id="c" * 64, runtime="crun", config={})


def _probe(d, hc):
    mon = health.HealthMonitor(d.containers, d.layout, d.runtime_for, d.save, d.event)
    return asyncio.run(mon.probe(_C, hc))


def test_action_wording_is_dockers():
    d = _D("/tmp", [])
    exec_events.created(d.event, _C, "e1", ["sh", "-c", "exit 4"])
    exec_events.started(d.event, _C, "e1", ["true"])            # moby: Entrypoint + " " + Args joined
    exec_events.died(d.event, _C, "e1", 4)
    assert d.events == [("exec_create: sh -c exit 4", {"execID": "e1"}),
                        ("exec_start: true ", {"execID": "e1"}),
                        ("exec_die", {"execID": "e1", "exitCode": 4})]


def test_probe_emits_create_start_die_with_its_exit_code(tmp_path):
    d = _D(tmp_path, ["/bin/sh", "-c", "echo out; exit 3"])
    res = _probe(d, {"Test": ["CMD-SHELL", "exit 3"]})
    assert res["ExitCode"] == 3 and res["Output"] == "out\n"
    acts = [a for a, _ in d.events]
    assert acts == ["exec_create: /bin/sh -c exit 3", "exec_start: /bin/sh -c exit 3", "exec_die"]
    ids = {attrs["execID"] for _, attrs in d.events}
    assert len(ids) == 1 and len(ids.pop()) == 64            # one exec, a full ID
    assert d.events[2][1]["exitCode"] == 3


def test_timed_out_probe_dies_killed(tmp_path):
    d = _D(tmp_path, ["sleep", "5"])     # no shell between: killing it closes the output pipe at once
    res = _probe(d, {"Test": ["CMD", "sleep", "5"], "Timeout": S // 20})
    assert res["ExitCode"] == -1
    assert d.events[-1] == ("exec_die", {"execID": d.events[0][1]["execID"], "exitCode": 137})


def test_probe_that_cannot_run_dies_126(tmp_path):
    d = _D(tmp_path, [str(tmp_path / "no-such-runtime")])
    res = _probe(d, {"Test": ["CMD", "true"]})
    assert res["ExitCode"] == -1
    assert [a for a, _ in d.events] == ["exec_create: true ", "exec_start: true ", "exec_die"]
    assert d.events[-1][1]["exitCode"] == 126


def test_probe_of_a_removed_container_ends_without_exec_die(tmp_path):
    d = _D(tmp_path, ["/bin/sh", "-c", "exit 0"], present=False)
    _probe(d, {"Test": ["CMD", "true"]})
    assert [a for a, _ in d.events] == ["exec_create: true ", "exec_start: true "]


def _ev(action):
    return {"Type": "container", "Action": action, "Actor": {"ID": "a", "Attributes": {}}, "scope": "local"}


def test_event_filter_on_exec_actions():
    create, die, healthy = _ev("exec_create: /bin/sh -c exit 0"), _ev("exec_die"), _ev("health_status: healthy")
    # exec_die alone: an exact match
    assert ef.matches(die, {"event": ["exec_die"]})
    assert not ef.matches(create, {"event": ["exec_die"]}) and not ef.matches(healthy, {"event": ["exec_die"]})
    # exec_create names an action with a suffix: the whole filter turns fuzzy (prefix)
    assert ef.matches(create, {"event": ["exec_create"]})
    assert ef.matches(die, {"event": ["exec_die", "exec_create"]})
    assert ef.matches(create, {"event": ["exec_die", "exec_create"]})
    assert not ef.matches(healthy, {"event": ["exec_die", "exec_create"]})
    assert ef.matches(healthy, {"event": ["exec_die", "health_status"]})
    # the full action also matches exactly
    assert ef.matches(create, {"event": ["exec_create: /bin/sh -c exit 0"]})
    assert not ef.matches(create, {"event": ["exec_create: /bin/sh"]})

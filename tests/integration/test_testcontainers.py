"""testcontainers-python against dockyardd: a local image, logs, exec,
wait strategies (Ryuk, the reaper, would pull from Docker Hub: disabled)."""
from __future__ import annotations

import pytest

tc = pytest.importorskip("testcontainers.core.container")


def test_testcontainers_runs_a_container(daemon, bb_image, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    ctr = (DockerContainer("bb").with_command("sh -c 'echo ready; sleep 100'").with_env("K", "v")
           .waiting_for(LogMessageWaitStrategy("ready")))
    with ctr as c:
        out = c.exec(["sh", "-c", "echo $K"])
        assert out.exit_code == 0 and out.output == b"v\n"
        cid = c.get_wrapped_container().id
    r = daemon.docker("inspect", cid, check=False)
    assert r.returncode != 0     # removed when the context ended

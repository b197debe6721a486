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


@pytest.mark.filterwarnings("ignore:The wait_for_logs function:DeprecationWarning")   # the form most code uses
def test_testcontainers_wait_for_logs_and_a_mapped_port(daemon, bb_image, monkeypatch):
    """The usual testcontainers flow: an exposed port mapped to a random host
    port, `wait_for_logs` until the service says it is up, then the test
    talks to it through the host and port testcontainers reports."""
    import re
    import time
    import urllib.request

    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy
    from testcontainers.core.waiting_utils import wait_for_logs

    script = ("mkdir -p /www && echo hello-from-tc > /www/index.html && httpd -p 8080 -h /www "
              "&& echo 'serving on 8080' && sleep 100")
    with DockerContainer("bb").with_command(["sh", "-c", script]).with_exposed_ports(8080) as c:
        waited = wait_for_logs(c, r"serving on \d+", timeout=30, raise_on_exit=True)
        assert waited < 30
        assert wait_for_logs(c, LogMessageWaitStrategy(re.compile(r"serving on 8080")), timeout=5) < 5
        host, port = c.get_container_host_ip(), int(c.get_exposed_port(8080))
        info = c.get_wrapped_container().attrs
        assert int(info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]) == port
        body, deadline = None, time.monotonic() + 10
        while body is None:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=5) as r:
                    body = r.read()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert body == b"hello-from-tc\n"
        stdout, _ = c.get_logs()
        assert stdout == b"serving on 8080\n"
        cid = c.get_wrapped_container().id
    assert daemon.docker("inspect", cid, check=False).returncode != 0

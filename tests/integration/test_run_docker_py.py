"""The foundation through docker-py (version negotiated automatically)."""
from __future__ import annotations

import docker
import pytest


def test_from_env_negotiates_and_runs(daemon, bb_image, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    client = docker.from_env()
    try:
        assert client.version()["ApiVersion"] == "1.50"
        assert client.api.api_version == "1.50"
        assert client.ping() is True
        assert client.containers.run("bb", "echo hi") == b"hi\n"
        out = client.containers.run("bb", ["sh", "-c", "echo out; echo err >&2"], stderr=True, remove=True)
        assert out == b"out\nerr\n"
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()


def test_lifecycle_and_errors(daemon, bb_image):
    client = daemon.client()
    c = client.containers.run("bb", "sleep 100", detach=True, name="pyweb", labels={"app": "x"})
    try:
        c.reload()
        assert c.status == "running" and c.attrs["State"]["Pid"] > 0
        assert [x.name for x in client.containers.list(filters={"label": "app=x"})] == ["pyweb"]
        assert client.containers.get(c.id[:6]).id == c.id
        with pytest.raises(docker.errors.APIError) as e:
            c.remove()
        assert e.value.status_code == 409
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("no-such-thing")
        c.stop(timeout=1)
        assert c.wait()["StatusCode"] == 137
        c.reload()
        assert c.status == "exited"
        c.rename("pyweb2")
        c.reload()
        assert c.name == "pyweb2"
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_restart_policy_and_wait_conditions(daemon, bb_image):
    client = daemon.client()
    c = client.containers.create("bb", ["sh", "-c", "exit 5"])
    try:
        c.start()
        assert c.wait()["StatusCode"] == 5
        logs = client.api.logs(c.id, stdout=True, stderr=True)
        assert logs == b""
        pruned = client.containers.prune()
        assert c.id in (pruned.get("ContainersDeleted") or [])
    finally:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass

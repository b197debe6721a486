"""The foundation through docker-py (version negotiated automatically)."""
from __future__ import annotations

import concurrent.futures
import time

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


def test_wait_empty_logs_and_prune(daemon, bb_image):
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


def test_wait_conditions_and_list_filters(daemon, bb_image):
    client, other = daemon.client(), daemon.client()   # the waits block on their own connections
    c = client.containers.create("bb", ["sh", "-c", "sleep 1; exit 4"])
    ids = lambda *f: daemon.docker("ps", "-a", "-q", "--no-trunc",
                                   *[a for x in f for a in ("--filter", x)]).stdout.split()
    try:
        assert c.wait(timeout=5)["StatusCode"] == 0          # not-running, and it never ran
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            nxt = pool.submit(other.containers.get(c.id).wait, condition="next-exit", timeout=30)
            time.sleep(0.5)
            assert not nxt.done()                             # created: waits for an exit to come
            c.start()
            assert nxt.result(30)["StatusCode"] == 4
        assert c.wait(timeout=5)["StatusCode"] == 4          # exited: at once
        assert c.id in ids("status=exited") and c.id in ids("exited=4") and c.id in ids("ancestor=bb")
        assert c.id not in ids("status=running") and c.id not in ids("exited=3")
        assert ids(f"id={c.id[:10]}") == [c.id]
        assert c.id not in daemon.docker("ps", "-q", "--no-trunc").stdout.split()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            nxt = pool.submit(other.containers.get(c.id).wait, condition="next-exit", timeout=30)
            time.sleep(0.5)
            assert not nxt.done()                             # exited: waits for the next run's exit
            c.start()
            assert nxt.result(30)["StatusCode"] == 4
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            gone = pool.submit(other.containers.get(c.id).wait, condition="removed", timeout=30)
            time.sleep(0.5)
            assert not gone.done()                            # stopped but there: waits for rm
            c.remove()
            assert gone.result(30)["StatusCode"] == 4
    finally:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass


def test_create_without_host_config_shows_the_whole_objects(daemon, bb_image):
    """docker-py's create_container without host_config sends Image and Cmd
    only: dockerd's inspect still has every Config and HostConfig field (Go's
    zero values, its create-time defaults), and no HostConfig.Runtime (moby
    sets it only on a HostConfig it was sent); the container runs on the
    daemon's default runtime all the same."""
    api = daemon.client().api
    cid = api.create_container("bb", ["true"])["Id"]
    try:
        i = api.inspect_container(cid)
        cfg, hc = i["Config"], i["HostConfig"]
        assert (cfg["Tty"], cfg["User"], cfg["WorkingDir"], cfg["Volumes"], cfg["OnBuild"]) == (False, "", "", None, None)
        assert (hc["Binds"], hc["Privileged"], hc["Memory"], hc["ConsoleSize"], hc["OomKillDisable"], hc["CapAdd"]) == \
            (None, False, 0, [0, 0], False, None)
        assert (hc["ShmSize"], hc["IpcMode"], hc["PidsLimit"]) == (64 << 20, "private", None)
        assert "Runtime" not in hc
        api.start(cid)
        assert api.wait(cid)["StatusCode"] == 0
        hc = api.inspect_container(api.create_container("bb", ["true"], host_config=api.create_host_config())["Id"])
        assert hc["HostConfig"]["Runtime"] == daemon.client().info()["DefaultRuntime"]
        api.remove_container(hc["Id"])
    finally:
        api.remove_container(cid, force=True)

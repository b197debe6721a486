"""Events: GET /events through docker-py and the docker CLI."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse


from conftest import unique_name


def _actions(events, cid):
    return [e["Action"] for e in events if e.get("Actor", {}).get("ID") == cid]


def test_docker_py_sees_lifecycle_in_order(daemon, bb_image):
    client = daemon.client()
    since = int(time.time()) - 1
    name = unique_name()
    c = client.containers.run("bb", "sh -c 'exit 3'", detach=True, name=name, labels={"ev": name})
    assert c.wait()["StatusCode"] == 3
    c.remove()
    until = int(time.time()) + 1
    evs = list(client.events(decode=True, since=since, until=until, filters={"container": name}))
    assert _actions(evs, c.id) == ["create", "start", "die", "destroy"]
    die = next(e for e in evs if e["Action"] == "die")
    assert die["Type"] == "container" and die["scope"] == "local"
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    assert die["Actor"]["Attributes"]["name"] == name
    assert die["Actor"]["Attributes"]["image"] == "bb"
    assert die["Actor"]["Attributes"]["ev"] == name          # labels ride along
    assert isinstance(die["time"], int) and die["timeNano"] // 10**9 == die["time"]
    # filters: type, event, label
    only_die = list(client.events(decode=True, since=since, until=until,
                                  filters={"event": "die", "label": f"ev={name}"}))
    assert [e["Action"] for e in only_die] == ["die"]
    assert list(client.events(decode=True, since=since, until=until,
                              filters={"type": "image", "container": name})) == []


def test_docker_cli_since_until_lists_finished_container(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "--name", name, "bb", "true")
    daemon.docker("rm", name)
    r = daemon.docker("events", "--filter", f"container={name}", "--since", "1m", "--until", "0s",
                      "--format", "{{.Action}}", timeout=20)
    # an attached `docker run` attaches before it starts, as with Docker
    assert r.stdout.split() == ["create", "attach", "start", "die", "destroy"]
    r = daemon.docker("events", "--filter", f"container={name}", "--since", "1m", "--until", "0s",
                      "--format", "{{json .}}", timeout=20)
    first = json.loads(r.stdout.splitlines()[0])
    assert first["Type"] == "container" and first["Action"] == "create"


def test_live_stream_delivers_without_delay(daemon, bb_image):
    """A follower sees an event before the stream ends (no buffering)."""
    client = daemon.client()
    name = unique_name()
    got = []
    stream = client.events(decode=True, filters={"container": name, "event": "create"})
    reader = threading.Thread(target=lambda: got.append(next(stream)), daemon=True)
    reader.start()
    time.sleep(0.3)                # subscribed before the event happens
    c = client.containers.create("bb", "true", name=name)
    reader.join(15)
    stream.close()
    c.remove()
    assert got and got[0]["Action"] == "create" and got[0]["Actor"]["ID"] == c.id


def test_future_until_ends_the_stream(daemon, bb_image):
    client = daemon.client()
    t0 = time.time()
    evs = list(client.events(decode=True, until=int(t0) + 2, filters={"container": unique_name()}))
    assert evs == [] and time.time() >= int(t0) + 2 - 0.05


def test_past_until_returns_at_once(daemon, bb_image):
    """`until` in the past: the matching history, then the end of the reply, no waiting."""
    client = daemon.client()
    name = unique_name()
    client.containers.create("bb", "true", name=name).remove()
    time.sleep(1.1)                 # the events are now a whole second in the past
    t0 = time.monotonic()
    evs = list(client.events(decode=True, since=int(time.time()) - 60, until=int(time.time()) - 1,
                             filters={"container": name}))
    assert [e["Action"] for e in evs] == ["create", "destroy"]
    assert time.monotonic() - t0 < 1.0           # not one poll of the live stream


def test_invalid_filter_is_400(daemon):
    status, body = daemon.api("GET", "/events?filters=" + urllib.parse.quote(json.dumps({"bogus": ["x"]})))
    assert status == 400 and json.loads(body)["message"] == "invalid filter 'bogus'"
    r = daemon.docker("events", "--filter", "bogus=1", "--until", "0s", check=False)
    assert r.returncode != 0 and "invalid filter 'bogus'" in r.stderr


def test_dropped_client_costs_nothing(daemon, bb_image):
    """A client that hangs up is unsubscribed; later events still flow to others."""
    def listeners():
        st, body = daemon.api("GET", "/info")
        return json.loads(body)["NEventsListener"]
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.sock)
    s.sendall(b"GET /v1.50/events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    assert listeners() == 1
    s.close()
    deadline = time.monotonic() + 10
    while listeners() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listeners() == 0


def test_network_and_volume_events(daemon, bb_image):
    client = daemon.client()
    since = int(time.time()) - 1
    net, vol, name = unique_name(), unique_name(), unique_name()
    n = client.networks.create(net)
    v = client.volumes.create(vol)
    c = client.containers.create("bb", "true", name=name, volumes=[f"{vol}:/data"])
    n.connect(c)
    n.disconnect(c)
    c.start()
    c.wait()
    c.remove()
    n.remove()
    v.remove()
    evs = list(client.events(decode=True, since=since, until=int(time.time()) + 1,
                             filters={"type": ["network", "volume"]}))
    got = [(e["Type"], e["Action"]) for e in evs
           if e["Actor"]["ID"] in (n.id, vol)]
    assert got == [("network", "create"), ("volume", "create"), ("network", "connect"),
                   ("network", "disconnect"), ("volume", "mount"), ("volume", "unmount"),
                   ("network", "destroy"), ("volume", "destroy")]
    connect = next(e for e in evs if e["Action"] == "connect" and e["Actor"]["ID"] == n.id)
    assert connect["Actor"]["Attributes"] == {"container": c.id, "name": net, "type": "bridge"}
    mount = next(e for e in evs if e["Action"] == "mount")
    assert mount["Actor"]["Attributes"]["destination"] == "/data"
    assert mount["Actor"]["Attributes"]["container"] == c.id


def test_exec_and_resize_events(daemon, bb_image):
    client = daemon.client()
    name = unique_name()
    since = int(time.time()) - 1
    c = client.containers.run("bb", "sleep 100", detach=True, name=name, tty=True)
    try:
        code, out = c.exec_run(["sh", "-c", "exit 4"])
        assert code == 4
        c.resize(30, 100)
        evs = list(client.events(decode=True, since=since, until=int(time.time()) + 1,
                                 filters={"container": name}))
        acts = [e["Action"] for e in evs]
        assert acts[:2] == ["create", "start"]
        assert acts[2:5] == ["exec_create: sh -c exit 4", "exec_start: sh -c exit 4", "exec_die"]
        die = evs[4]["Actor"]["Attributes"]
        assert die["exitCode"] == "4" and die["execID"] and die["name"] == name
        assert acts[5] == "resize" and evs[5]["Actor"]["Attributes"]["height"] == "30"
        fuzzy = list(client.events(decode=True, since=since, until=int(time.time()) + 1,
                                   filters={"container": name, "event": "exec_start"}))
        assert [e["Action"] for e in fuzzy] == ["exec_start: sh -c exit 4"]
    finally:
        c.remove(force=True)


def _subsequence(want, got):
    it = iter(got)
    return all(any(g == w or g.startswith(w + " ") for g in it) for w in want)


def test_container_and_image_actions_emit_dockers_events(daemon, bb_image, tmp_path):
    """kill (with its signal), top, cp out/in, rename, commit, export, restart, stop
    on a container; tag, save, untag, load, import, delete on images (docker CLI)."""
    name, img, tag = unique_name(), unique_name(), unique_name()
    daemon.docker("run", "-d", "--name", name, "bb", "sleep", "100")
    cid = daemon.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    (tmp_path / "in.txt").write_text("x")
    try:
        daemon.docker("kill", "-s", "USR1", name)          # PID 1 without a handler: ignored, still running
        daemon.docker("top", name)
        daemon.docker("cp", f"{name}:/etc/hostname", str(tmp_path / "out"))
        daemon.docker("cp", str(tmp_path / "in.txt"), f"{name}:/tmp/")
        daemon.docker("rename", name, name + "2")
        daemon.docker("commit", name + "2", img)
        daemon.docker("export", "-o", str(tmp_path / "fs.tar"), name + "2")
        daemon.docker("restart", "-t", "1", name + "2")
        daemon.docker("stop", "-t", "1", name + "2")
    finally:
        daemon.docker("rm", "-f", name + "2", name, check=False)
    daemon.docker("tag", "bb", tag)
    daemon.docker("save", "-o", str(tmp_path / "img.tar"), tag)
    daemon.docker("rmi", tag)
    daemon.docker("load", "-i", str(tmp_path / "img.tar"))
    daemon.docker("import", str(tmp_path / "fs.tar"), tag + "-imp")
    daemon.docker("rmi", tag, tag + "-imp", img)
    out = daemon.docker("events", "--since", "1m", "--until", "0s", "--filter", f"container={cid}",
                        "--format", "{{.Action}} {{.Actor.Attributes.signal}}", timeout=20).stdout
    acts = [l.replace("<no value>", "").strip() for l in out.splitlines()]
    assert _subsequence(["create", "start", "kill 10", "top", "archive-path", "extract-to-dir", "rename",
                         "commit", "export", "kill 15", "die", "stop", "start", "restart",
                         "kill 15", "die", "stop", "destroy"], acts), acts
    out = daemon.docker("events", "--since", "1m", "--until", "0s", "--filter", "type=image",
                        "--format", "{{.Action}} {{.Actor.Attributes.name}}", timeout=20).stdout
    acts = [l.replace("<no value>", "").strip() for l in out.splitlines()]
    # as moby: tag and save name the reference; untag, load and delete name the image ID
    bb_id = daemon.docker("inspect", "-f", "{{.Id}}", "bb").stdout.strip()
    assert _subsequence([f"tag {tag}:latest", f"save {tag}:latest", f"untag {bb_id}", f"load {bb_id}",
                         "import", "untag", "delete"], acts), acts


def test_attach_and_detach_events(daemon, bb_image):
    client = daemon.client()
    name = unique_name()
    since = int(time.time()) - 1
    c = client.containers.run("bb", "sh", detach=True, name=name, tty=True, stdin_open=True)
    try:
        sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stream": 1})
        raw = getattr(sock, "_sock", sock)
        raw.sendall(b"\x10\x11")                  # ctrl-p ctrl-q
        raw.settimeout(10)
        while raw.recv(4096):
            pass                                   # the daemon closes the stream on detach
        sock.close()
        evs = list(client.events(decode=True, since=since, until=int(time.time()) + 1,
                                 filters={"container": name}))
        assert [e["Action"] for e in evs] == ["create", "start", "attach", "detach"]
        c.reload()
        assert c.status == "running"
    finally:
        c.remove(force=True)


def test_history_survives_a_daemon_restart(daemon, bb_image):
    name = unique_name()
    daemon.docker("create", "--name", name, "bb", "true")
    daemon.restart()
    r = daemon.docker("events", "--filter", f"container={name}", "--since", "5m", "--until", "0s",
                      "--format", "{{.Action}}")
    assert r.stdout.split() == ["create"]
    daemon.docker("rm", name)

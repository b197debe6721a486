"""The client and the commands against a small fake daemon.

The fake is dockyard's own ApiServer with a few routes registered on a
private route table (monkeypatched, so the real daemon's routes are
untouched), running on its own event loop in a thread.
"""
import asyncio
import re
import json
import threading

import pytest

from dockyard.api import server
from dockyard.cli import stdcopy
from dockyard.cli.main import run
from dockyard.client import Client, ConnectError, DaemonError, encode_query

CID = "c0ffee" + "0" * 58


class FakeDaemon:
    def __init__(self, host):
        self.host = host
        self.requests = []     # (method, path, query) in arrival order
        self.bodies = {}       # path → parsed JSON body
        self.start_error = None
        self.exit_code = 0
        self.tty = False

    def seen(self, req):
        self.requests.append((req.method, req.path, {k: v[-1] for k, v in req.query.items()}))

    def paths(self):
        return [f"{m} {p}" for m, p, _ in self.requests]


def _error(status, message):
    return server.Response(status, json.dumps({"message": message}).encode())


def _register(fake):
    route = server.route

    @route("POST", "/containers/create")
    async def create(req):
        fake.seen(req)
        body = await req.json()
        fake.bodies[req.path] = body
        if body["Image"].startswith("missing"):
            return _error(404, "No such image: missing:latest")
        return server.Response(201, json.dumps({"Id": CID, "Warnings": []}).encode())

    @route("POST", "/containers/{id}/attach")
    async def attach(req):
        fake.seen(req)
        kind = stdcopy.RAW if fake.tty else stdcopy.MULTIPLEXED
        reader, writer, extra = await req.hijack(kind)
        await asyncio.sleep(0.05)  # output arrives after start, as from a real process
        if fake.tty:
            writer.write(b"tty says hi\r\n")
        else:
            writer.write(stdcopy.encode(1, b"to stdout\n") + stdcopy.encode(2, b"to stderr\n"))
            if req.param("stdin"):
                data = extra + await reader.read()
                writer.write(stdcopy.encode(1, b"echo:" + data))
        await writer.drain()
        writer.close()

    @route("POST", "/containers/{id}/wait")
    async def wait(req):
        fake.seen(req)

        async def body():
            await asyncio.sleep(0.1)
            yield json.dumps({"StatusCode": fake.exit_code, "Error": None}).encode()
        return server.StreamResponse(body())

    @route("POST", "/containers/{id}/start")
    async def start(req):
        fake.seen(req)
        if fake.start_error:
            return _error(400, fake.start_error)
        return None

    @route("POST", "/containers/{id}/stop")
    async def stop(req):
        fake.seen(req)
        if req.match["id"] == "nope":
            return _error(404, "No such container: nope")
        return None

    @route("GET", "/containers/json")
    async def ps(req):
        fake.seen(req)
        return [{"Id": CID, "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:" + "a" * 64,
                 "Command": "sleep 1000000000", "Created": 0, "Ports": [], "Labels": {"tier": "front"},
                 "State": "running", "Status": "Up 3 seconds"}]

    @route("GET", "/containers/{id}/json")
    async def inspect(req):
        fake.seen(req)
        if req.match["id"] != "web":
            return _error(404, f"No such container: {req.match['id']}")
        return {"Id": CID, "Name": "/web", "State": {"Pid": 42}, "Config": {"Tty": fake.tty},
                "StartTrace": {"Started": "2025-01-01T00:00:00Z", "TotalMs": 12.5, "Ok": False,
                               "Steps": [{"Step": "lookup", "Ms": 0.25, "Ok": True, "Error": ""},
                                         {"Step": "runtime", "Ms": 12.25, "Ok": False, "Error": "exit 1"}],
                               "FailedStep": "runtime", "Error": "exit 1"}}

    @route("GET", "/images/{name:path}/json")
    async def image_inspect(req):
        fake.seen(req)
        if req.match["name"] != "busybox":
            return _error(404, f"No such image: {req.match['name']}")
        return {"Id": "sha256:" + "a" * 64, "RepoTags": ["busybox:latest"]}

    @route("GET", "/containers/{id}/logs")
    async def logs(req):
        fake.seen(req)

        async def body():
            frames = stdcopy.encode(1, b"line 1\n") + stdcopy.encode(2, b"oops\n") + stdcopy.encode(1, b"line 2\n")
            for i in range(0, len(frames), 5):  # deliberately split mid-frame
                yield frames[i:i + 5]
        return server.StreamResponse(body(), content_type=stdcopy.MULTIPLEXED)

    @route("GET", "/version")
    async def version(req):
        return {"Version": "9.9.9", "ApiVersion": "1.50", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"}

    @route("POST", "/images/load")
    async def load(req):
        fake.seen(req)
        data = await req.body()
        return server.Response(200, json.dumps({"stream": f"Loaded {len(data)} bytes\n"}).encode())


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "_ROUTES", [])
    path = str(tmp_path / "d.sock")
    fake = FakeDaemon(f"unix://{path}")
    _register(fake)
    loop = asyncio.new_event_loop()
    api = server.ApiServer(None)
    loop.run_until_complete(api.listen_unix(path))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield fake
    asyncio.run_coroutine_threadsafe(api.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def cli(fake, *argv):
    return run(["-H", fake.host, *argv])


# ---------------------------------------------------------------- client

def test_query_encoding():
    assert encode_query({"a": 1, "b": None, "c": True, "changes": ["CMD x", "ENV A=1"]}) == \
        "?a=1&c=1&changes=CMD%20x&changes=ENV%20A%3D1"
    assert encode_query({}) == ""


def test_json_and_errors(daemon):
    client = Client(daemon.host)
    assert client.get("/containers/web/json")["State"]["Pid"] == 42
    with pytest.raises(DaemonError) as info:
        client.get("/containers/other/json")
    assert (info.value.status, info.value.message) == (404, "No such container: other")


def test_chunked_stream_is_read_as_it_arrives(daemon):
    resp = Client(daemon.host).call("GET", "/containers/web/logs", {"stdout": 1})
    assert resp.content_type == stdcopy.MULTIPLEXED
    frames = stdcopy.decode(b"".join(resp.chunks()))
    assert frames == [(1, b"line 1\n"), (2, b"oops\n"), (1, b"line 2\n")]


def test_unreachable_daemon(tmp_path):
    with pytest.raises(ConnectError, match="Cannot connect to the dockyard daemon"):
        Client(f"unix://{tmp_path}/absent.sock").get("/version")


def test_unreachable_daemon_from_the_cli(tmp_path, capfd):
    assert run(["-H", f"unix://{tmp_path}/absent.sock", "ps"]) == 1
    assert "Is the dockyard daemon running?" in capfd.readouterr().err


# ---------------------------------------------------------------- run

def test_run_attaches_waits_then_starts_and_exits_with_the_status(daemon, capfd):
    daemon.exit_code = 3
    assert cli(daemon, "run", "--name", "x", "-e", "A=1", "busybox", "echo", "hi") == 3
    out, err = capfd.readouterr()
    assert out == "to stdout\n" and err == "to stderr\n"
    assert daemon.paths() == ["POST /containers/create", f"POST /containers/{CID}/attach",
                              f"POST /containers/{CID}/wait", f"POST /containers/{CID}/start"]
    create_query, attach_query, wait_query = (daemon.requests[i][2] for i in range(3))
    assert create_query == {"name": "x"}
    assert attach_query == {"stream": "1", "stdout": "1", "stderr": "1"}
    assert wait_query == {"condition": "next-exit"}
    body = daemon.bodies["/containers/create"]
    assert (body["Image"], body["Cmd"], body["Env"]) == ("busybox", ["echo", "hi"], ["A=1"])


def test_run_rm_waits_for_removal(daemon, capfd):
    assert cli(daemon, "run", "--rm", "busybox") == 0
    assert daemon.requests[2][2] == {"condition": "removed"}
    assert daemon.bodies["/containers/create"]["HostConfig"]["AutoRemove"] is True


def test_run_detached_prints_the_id(daemon, capfd):
    assert cli(daemon, "run", "-d", "busybox") == 0
    assert capfd.readouterr().out == CID + "\n"
    assert daemon.paths() == ["POST /containers/create", f"POST /containers/{CID}/start"]


def test_run_forwards_stdin_with_i(daemon, capfd, monkeypatch, tmp_path):
    stdin = tmp_path / "stdin"
    stdin.write_bytes(b"piped\n")
    with open(stdin, "rb") as f:
        import os
        saved = os.dup(0)
        os.dup2(f.fileno(), 0)
        try:
            assert cli(daemon, "run", "-i", "busybox", "cat") == 0
        finally:
            os.dup2(saved, 0)
            os.close(saved)
    assert capfd.readouterr().out == "to stdout\necho:piped\n"


def test_run_with_tty_copies_raw_output(daemon, capfd):
    daemon.tty = True
    assert cli(daemon, "run", "-t", "busybox") == 0
    assert capfd.readouterr().out == "tty says hi\r\n"


def test_run_missing_image_exits_125_like_docker(daemon, capfd):
    assert cli(daemon, "run", "missing") == 125
    err = capfd.readouterr().err
    assert err.startswith("Unable to find image 'missing:latest' locally\n"
                          "dockyard: Error response from daemon: No such image: missing:latest\n")
    assert "Run 'dockyard run --help' for more information" in err


@pytest.mark.parametrize("message, code", [
    ('exec: "nope": executable file not found in $PATH', 127),
    ('exec: "/etc": permission denied', 126),
    ("something else", 125),
])
def test_run_start_failure_exit_codes(daemon, capfd, message, code):
    daemon.start_error = message
    assert cli(daemon, "run", "busybox", "nope") == code
    assert f"dockyard: Error response from daemon: {message}" in capfd.readouterr().err


def test_create_prints_the_id_and_rejects_bad_restart_policies(daemon, capfd):
    assert cli(daemon, "create", "--restart", "on-failure:2", "busybox") == 0
    assert capfd.readouterr().out == CID + "\n"
    assert daemon.bodies["/containers/create"]["HostConfig"]["RestartPolicy"] == \
        {"Name": "on-failure", "MaximumRetryCount": 2}
    assert cli(daemon, "create", "--restart", "sometimes", "busybox") == 125


# ---------------------------------------------------------------- other commands

def test_stop_reports_each_container_and_fails_if_any_failed(daemon, capfd):
    assert cli(daemon, "stop", "-t", "3", "-s", "SIGINT", "web", "nope") == 1
    out, err = capfd.readouterr()
    assert out == "web\n"
    assert err == "Error response from daemon: No such container: nope\n"
    assert daemon.requests[0][2] == {"signal": "SIGINT", "t": "3"}


def test_ps_table_and_format(daemon, capfd):
    assert cli(daemon, "ps", "-a", "--filter", "status=running") == 0
    lines = capfd.readouterr().out.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert lines[1].startswith("c0ffee000000   busybox   \"sleep 1000000000\"   ")
    assert "Up 3 seconds" in lines[1] and lines[1].endswith("web")
    assert daemon.requests[0][2] == {"all": "1", "filters": '{"status":{"running":true}}'}
    assert cli(daemon, "container", "ls", "--format", "{{.Names}} {{.Label \"tier\"}} {{.State}}") == 0
    assert capfd.readouterr().out == "web front running\n"
    assert cli(daemon, "ps", "--format", "table {{.ID}}\\t{{.Names}}") == 0
    assert capfd.readouterr().out == "CONTAINER ID   NAMES\nc0ffee000000   web\n"
    assert cli(daemon, "ps", "-q", "--no-trunc") == 0
    assert capfd.readouterr().out == CID + "\n"


def test_inspect_format_and_fallback_to_images(daemon, capfd):
    assert cli(daemon, "inspect", "--format", "{{json .StartTrace}}", "web") == 0
    trace = json.loads(capfd.readouterr().out)
    assert trace["FailedStep"] == "runtime" and trace["Steps"][0]["Ms"] == 0.25
    assert cli(daemon, "inspect", "-f", "{{.State.Pid}} {{.Nope}}", "web") == 0
    assert capfd.readouterr().out == "42 <no value>\n"
    assert cli(daemon, "inspect", "busybox") == 0
    assert json.loads(capfd.readouterr().out)[0]["RepoTags"] == ["busybox:latest"]
    assert cli(daemon, "inspect", "ghost") == 1
    out, err = capfd.readouterr()
    assert (out, err) == ("[]\n", "Error: No such object: ghost\n")


def test_trace_table(daemon, capfd):
    assert cli(daemon, "trace", "web") == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "Started: 2025-01-01T00:00:00Z"
    assert out[1].split() == ["STEP", "MS", "RESULT"]
    assert out[2].split() == ["lookup", "0.25", "ok"]
    assert out[3].split() == ["runtime", "12.25", "error:", "exit", "1"]
    assert out[4].split() == ["total", "12.5", "error"]
    assert out[5] == "Failed at step 'runtime': exit 1"


def test_logs_demultiplexes(daemon, capfd):
    assert cli(daemon, "logs", "--tail", "2", "-t", "web") == 0
    out, err = capfd.readouterr()
    assert (out, err) == ("line 1\nline 2\n", "oops\n")
    assert daemon.requests[0][2] == {"stdout": "1", "stderr": "1", "timestamps": "1", "tail": "2"}


def test_load_streams_the_file(daemon, capfd, tmp_path):
    tarball = tmp_path / "img.tar"
    tarball.write_bytes(b"x" * 200000)
    assert cli(daemon, "load", "-i", str(tarball), "-q") == 0
    assert capfd.readouterr().out == "Loaded 200000 bytes\n"
    assert daemon.requests[0][2] == {"quiet": "1"}


def test_version_shows_client_and_server(daemon, capfd):
    assert cli(daemon, "version") == 0
    out = capfd.readouterr().out
    assert out.startswith("Client:\n Version:") and "Server: Dockyard Engine" in out
    assert "\n  API version:      1.50 (minimum version 1.24)\n" in out
    assert cli(daemon, "version", "--format", "{{.Server.Version}}") == 0
    assert capfd.readouterr().out == "9.9.9\n"


def test_help_and_unknown_commands(daemon, capfd):
    assert run(["--help"]) == 0
    assert "Usage:  dockyard [OPTIONS] COMMAND" in capfd.readouterr().out
    assert run(["ps", "--help"]) == 0
    assert "Usage:  dockyard ps [OPTIONS]" in capfd.readouterr().out
    assert run(["frobnicate"]) == 1
    assert "unknown command: dockyard frobnicate" in capfd.readouterr().err


# ---------------------------------------------------------------- start-up cost (issue 16)

# What `dockyard run` must not import: each costs its start time (re, json,
# enum, collections, socket, contextlib: 1-7 ms apiece on this machine;
# importlib, threading, typing, dataclasses the same), or belongs to the
# daemon (h11, asyncio, pyroute2, dns, sqlite3, ssl for a unix socket).
HEAVY = ("re", "json", "enum", "collections", "socket", "selectors", "contextlib", "functools", "importlib",
         "threading", "typing", "dataclasses", "warnings", "signal", "ssl", "subprocess", "h11", "asyncio",
         "pyroute2", "dns", "sqlite3", "email", "http", "urllib", "dockyard.api", "dockyard.daemon",
         "dockyard.units")


def test_run_path_imports_no_heavy_module(daemon):
    """`dockyard run --rm` through the whole path (create, attach, wait,
    start, the stream, the exit status) as the installed launcher runs it
    (python -S), then the modules it imported: none of HEAVY."""
    import subprocess
    import sys
    from pathlib import Path
    src = str(Path(__file__).resolve().parents[2] / "src")
    daemon.exit_code = 3
    code = ("import sys\n"
            "from dockyard.cli.main import run\n"
            f"rc = run(['-H', {daemon.host!r}, 'run', '--rm', '-e', 'A=1', 'busybox', 'echo', 'hi'])\n"
            "sys.stdout.write('\\nrc=%d modules=%s\\n' % (rc, ' '.join(sorted(sys.modules))))\n")
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("to stdout\n") and r.stderr == "to stderr\n"
    tail = r.stdout.rsplit("\n", 2)[-2]
    assert tail.startswith("rc=3 modules=")
    modules = set(tail.split("=", 2)[2].split())
    assert {"dockyard.cli.run", "dockyard.client", "dockyard.cli.pumps"} <= modules   # the path ran
    heavy = sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY
                   or any(m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"dockyard run imported {heavy}"
    assert [p.split(" ")[1].rsplit("/", 1)[-1] for p in daemon.paths()] == ["create", "attach", "wait", "start"]


def test_run_attaches_on_the_connection_create_left_open(daemon, capfd, monkeypatch):
    """create's connection is kept alive and carries the attach; wait and
    start come on their own (the wait's answer streams until the exit)."""
    from dockyard import endpoints
    connects = []
    real = endpoints.connect

    def counting(ep):
        connects.append(ep.host)
        return real(ep)
    monkeypatch.setattr("dockyard.client.connect", counting)
    assert cli(daemon, "run", "--rm", "busybox") == 0
    assert len(connects) == 3
    connects.clear()
    assert cli(daemon, "run", "-d", "busybox") == 0      # -d: start on create's connection
    assert len(connects) == 1
    assert daemon.paths()[-2:] == ["POST /containers/create", f"POST /containers/{CID}/start"]


def test_a_kept_connection_the_daemon_closed_is_replaced(daemon, tmp_path):
    """A request on a kept-alive connection that the daemon closed before
    reading it goes again on a new connection; an answer read whole and the
    connection is left for the next request."""
    import socket
    client = Client(daemon.host)
    assert client.get("/containers/web/json")["Id"] == CID
    assert client._idle is None                      # not asked to keep it
    client.post("/containers/create", None, {"Image": "busybox"}, keep_alive=True)
    kept = client._idle
    assert kept is not None
    resp = client.call("POST", f"/containers/{CID}/start", reuse=True)
    assert resp.status == 204 and resp.sock is kept and client._idle is None
    resp.close()
    with pytest.raises(DaemonError):    # an error answer is not kept
        client.post("/containers/create", None, {"Image": "missing"}, keep_alive=True)
    assert client._idle is None

    # a connection the far end closes after reading the request, without answering
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "closing.sock"))
    listener.listen(1)

    def close_after_reading():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()
    t = threading.Thread(target=close_after_reading)
    t.start()
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    gone.connect(str(tmp_path / "closing.sock"))
    client._idle = gone
    before = len(daemon.requests)
    assert client.call("POST", f"/containers/{CID}/start", reuse=True).status == 204
    t.join(5)
    listener.close()
    assert daemon.paths()[before:] == [f"POST /containers/{CID}/start"]
    assert gone.fileno() == -1

    # one whose far end is gone already: the send fails, a new connection
    a, b = socket.socketpair()
    b.close()
    client._idle = a
    assert client.call("POST", f"/containers/{CID}/start", reuse=True).status == 204
    assert a.fileno() == -1
    client.close()


@pytest.mark.parametrize("value", [
    {"Image": "busybox", "Cmd": ["sh", "-c", "echo \"hi\"\n\t\\ é ☃ \U0001F600"], "Env": [],
     "HostConfig": {"AutoRemove": True, "Memory": 0, "NanoCpus": 1500000000, "Binds": None,
                    "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": -1}]},
     "Labels": {"a\u0000b": "\u2028", "": ""}, "Tty": False, "F": 0.1, "Big": 2 ** 70},
    [1, 2.5, -0.0, 1e300, None, True, False, "x", [], {}, [[{}]]],
    "just a string", 42, None,
    # what the fast encoder leaves to the json package: non-string keys, NaN, tuples in dicts
    {1: "one", None: "none", 2.5: "x", True: "t"}, [float("nan"), float("inf")], {"t": (1, "2")},
])
def test_client_json_is_the_json_package_s(value):
    import json

    from dockyard.client import dumps, loads
    assert dumps(value) == json.dumps(value, separators=(",", ":"))
    text = json.dumps(value)
    # repr: NaN is not equal to itself, and 1 == 1.0 == True
    assert repr(loads(text)) == repr(json.loads(text))
    assert repr(loads(text.encode())) == repr(json.loads(text.encode()))
    assert repr(loads(" \n" + text + "\r\n\t")) == repr(json.loads(text))


@pytest.mark.parametrize("text", ['{"a": 1', '{"a": 1} x', "", "nul", '{"a": "\u0001"}', '\ufeff{"a":1}',
                                  b'\xef\xbb\xbf{"a": 1}', b'\xff', '[1e400, NaN, -Infinity]', '"\\ud800"'])
def test_client_json_errors_and_edges_are_the_json_package_s(text):
    import json

    from dockyard.client import loads
    try:
        expected = json.loads(text)
    except ValueError as err:
        with pytest.raises(type(err)) as info:
            loads(text)
        assert str(info.value) == str(err)
    else:
        got = loads(text)
        assert repr(got) == repr(expected)


def test_client_json_refuses_what_the_json_package_refuses():
    import json

    from dockyard.client import dumps
    loop = []
    loop.append(loop)
    for value in ({"a": b"bytes"}, {"a": object()}, loop, {"a": {1, 2}}):
        with pytest.raises((TypeError, ValueError)) as expected:
            json.dumps(value, separators=(",", ":"))
        with pytest.raises(type(expected.value), match="^" + re.escape(str(expected.value)) + "$"):
            dumps(value)
    assert dumps({"a": [1]}) == '{"a":[1]}'     # no marker left behind by the failures

"""POST /build, /build/prune, /build/cancel over a real unix socket, driven
by docker-py, against a stand-in daemon whose builder follows a script in
the Dockerfile (the real engine is tested in the integration tests): the
reply's shapes and order as moby's streamformatter writes them, the 400s of
the query, the context dir removed whatever happens, a client going away
cancelling the build."""
import asyncio
import base64
import io
import json
import os
import socket
import tarfile
import threading
import time
import urllib.parse

import docker
import pytest

import dockyard.api.build  # noqa: F401  (registers the routes)
import dockyard.api.system  # noqa: F401
from dockyard.api.server import ApiServer
from dockyard.errors import BuildFailed, InvalidParameter


class FakeImages:
    def __init__(self, root):
        self.tmp_dir = os.path.join(root, "tmp")
        os.makedirs(self.tmp_dir)


class FakeBuilder:
    """Follows the Dockerfile's lines: `SAY text`, `SLEEP s`, `FAIL code msg`,
    `EARLY msg` (an error before any message), `CRASH` (a bug)."""

    def __init__(self):
        self.seen = []          # (opts, files in the context, dockerfile text)
        self.cancelled = threading.Event()
        self.pruned = []

    async def build(self, opts, ctx, emit):
        files = sorted(os.path.relpath(os.path.join(d, f), ctx) for d, _, fs in os.walk(ctx) for f in fs)
        text = open(os.path.join(ctx, opts.dockerfile)).read()
        self.seen.append((opts, files, text))
        try:
            for n, line in enumerate(text.splitlines(), 1):
                word, _, rest = line.partition(" ")
                if word == "EARLY":
                    raise InvalidParameter(rest)
                if word == "CRASH":
                    raise RuntimeError("boom")
                await emit({"stream": f"Step {n} : {line}\n"})
                if word == "SAY":
                    await emit({"stream": rest + "\n"})
                elif word == "SLEEP":
                    await asyncio.sleep(float(rest))
                elif word == "FAIL":
                    code, _, msg = rest.partition(" ")
                    raise BuildFailed(msg, int(code))
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        image_id = "sha256:" + "ab" * 32
        await emit({"aux": {"ID": image_id}})
        await emit({"stream": "Successfully built abababababab\n"})
        return image_id

    async def prune(self, all, filters):
        self.pruned.append((all, filters))
        return ["c1", "c2"], 1234

    def usage(self):
        return []


class FakeDaemon:
    def __init__(self, root):
        self.images = FakeImages(root)
        self.builder = FakeBuilder()


@pytest.fixture
def api(tmp_path):
    daemon = FakeDaemon(str(tmp_path))
    sock = str(tmp_path / "api.sock")
    ready, box = threading.Event(), {}

    async def main():
        server = ApiServer(daemon)
        await server.listen_unix(sock)
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await box["stop"].wait()
        await server.close()

    t = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    t.start()
    assert ready.wait(5)
    yield daemon, sock
    box["loop"].call_soon_threadsafe(box["stop"].set)
    t.join(5)


def client(sock, version="1.50") -> docker.APIClient:
    return docker.APIClient(base_url="unix://" + sock, version=version, timeout=30)


def context_tar(files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def raw_build(sock, query: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    head = f"POST /v1.50/build?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    s.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    status = int(data.split(b" ", 2)[1])
    head, _, rest = data.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        out = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        rest = out
    return status, rest


def tmp_left(daemon) -> list[str]:
    return os.listdir(daemon.images.tmp_dir)


def test_a_build_streams_moby_lines_and_leaves_no_context(api):
    daemon, sock = api
    ctx = context_tar({"Dockerfile": "SAY hello\nSAY bye\n", "app/a.txt": "a"})
    out = list(client(sock).build(fileobj=ctx, custom_context=True, decode=True, tag="app:1",
                                  buildargs={"A": "1"}, labels={"l": "v"}, target="t", nocache=True, rm=True))
    assert out == [{"stream": "Step 1 : SAY hello\n"}, {"stream": "hello\n"}, {"stream": "Step 2 : SAY bye\n"},
                   {"stream": "bye\n"}, {"aux": {"ID": "sha256:" + "ab" * 32}},
                   {"stream": "Successfully built abababababab\n"}]
    opts, files, _ = daemon.builder.seen[0]
    assert files == ["Dockerfile", "app/a.txt"]
    assert (opts.tags, opts.buildargs, opts.labels, opts.target, opts.nocache, opts.rm) == \
        (["app:1"], {"A": "1"}, {"l": "v"}, "t", True, True)
    assert tmp_left(daemon) == []
    # the wire form: JSON lines ending in \r\n, as moby's streamformatter
    st, body = raw_build(sock, "", context_tar({"Dockerfile": "SAY x\n"}).getvalue())
    assert st == 200 and body.startswith(b'{"stream": "Step 1 : SAY x\\n"}\r\n') and body.endswith(b"\r\n")


def test_the_images_build_helper_of_docker_py(api, tmp_path):
    daemon, sock = api
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("SAY hi\n")
    (tmp_path / "ctx" / "other.Dockerfile").write_text("SAY other\n")
    dc = docker.DockerClient(base_url="unix://" + sock, version="1.50")
    try:
        dc.images.build(path=str(tmp_path / "ctx"), dockerfile="other.Dockerfile", rm=True)
    except docker.errors.APIError:
        pass        # the stand-in has no /images/{id}/json: the build itself is what is checked
    opts, files, text = daemon.builder.seen[-1]
    assert opts.dockerfile == "other.Dockerfile" and text == "SAY other\n"


def test_failures_after_the_first_line_are_in_the_stream_with_the_code(api):
    daemon, sock = api
    out = list(client(sock).build(fileobj=context_tar({"Dockerfile": "SAY a\nFAIL 3 The command '/bin/sh -c exit 3' "
                                                                      "returned a non-zero code: 3\n"}),
                                  custom_context=True, decode=True))
    msg = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert out[-1] == {"errorDetail": {"code": 3, "message": msg}, "error": msg}
    st, body = raw_build(sock, "", context_tar({"Dockerfile": "SAY a\nFAIL 0 bad\n"}).getvalue())
    assert st == 200 and body.splitlines()[-1] == b'{"errorDetail": {"message": "bad"}, "error": "bad"}'
    st, body = raw_build(sock, "", context_tar({"Dockerfile": "SAY a\nCRASH\n"}).getvalue())
    assert st == 200 and json.loads(body.splitlines()[-1])["error"] == "boom"
    assert tmp_left(daemon) == []


def test_failures_before_any_line_are_http_errors(api):
    daemon, sock = api
    st, body = raw_build(sock, "", context_tar({"Dockerfile": "EARLY dockerfile parse error on line 1: "
                                                              "unknown instruction: FOO\n"}).getvalue())
    assert st == 400 and json.loads(body) == {"message": "dockerfile parse error on line 1: unknown instruction: FOO"}
    st, body = raw_build(sock, "", context_tar({"Dockerfile": "CRASH\n"}).getvalue())
    assert st == 500 and json.loads(body) == {"message": "Internal Server Error"}
    st, body = raw_build(sock, "", b"\x00garbage" * 100)
    assert st == 400
    assert tmp_left(daemon) == []


def test_quiet_sends_only_the_id_or_all_then_the_error(api):
    daemon, sock = api
    st, body = raw_build(sock, "q=1", context_tar({"Dockerfile": "SAY a\n"}).getvalue())
    assert st == 200 and body == b'{"stream": "sha256:' + b"ab" * 32 + b'\\n"}\r\n'
    st, body = raw_build(sock, "q=1", context_tar({"Dockerfile": "SAY a\nFAIL 2 no\n"}).getvalue())
    lines = [json.loads(x) for x in body.splitlines()]
    assert st == 200 and lines[:2] == [{"stream": "Step 1 : SAY a\n"}, {"stream": "a\n"}]
    assert lines[-1] == {"errorDetail": {"code": 2, "message": "no"}, "error": "no"}


def test_old_api_versions_get_no_aux(api):
    daemon, sock = api
    out = list(client(sock, "1.29").build(fileobj=context_tar({"Dockerfile": "SAY a\n"}), custom_context=True,
                                          decode=True))
    assert not any("aux" in m for m in out) and out[-1] == {"stream": "Successfully built abababababab\n"}


def test_registry_config_header_reaches_the_builder(api):
    daemon, sock = api
    auths = {"reg.example:5000": {"username": "u", "password": "p"}}
    header = base64.urlsafe_b64encode(json.dumps(auths).encode()).decode()
    st, _ = raw_build(sock, "", context_tar({"Dockerfile": "SAY a\n"}).getvalue(), {"X-Registry-Config": header})
    assert st == 200 and daemon.builder.seen[-1][0].auth_configs == auths
    st, _ = raw_build(sock, "", context_tar({"Dockerfile": "SAY a\n"}).getvalue(), {"X-Registry-Config": "%%%"})
    assert st == 200 and daemon.builder.seen[-1][0].auth_configs == {}     # garbage: none, as moby


@pytest.mark.parametrize("query, message", [
    ({"buildargs": "[1]"}, "error reading build args: json: cannot unmarshal array into Go value of type "
                           "map[string]*string"),
    ({"buildargs": '{"a": 1}'}, "error reading build args: json: cannot unmarshal number into Go value of type "
                                "string"),
    ({"buildargs": "{"}, "error reading build args: unexpected end of JSON input"),
    ({"labels": "x"}, "error reading labels: invalid character 'x' looking for beginning of value"),
    ({"labels": '{"a": null, "b": [1]}'}, "error reading labels: json: cannot unmarshal array into Go value of "
                                          "type string"),
    ({"cachefrom": '"a"'}, "error reading cache-from: json: cannot unmarshal string into Go value of type "
                           "[]string"),
    ({"ulimits": '[{"Name": "nofile", "Hard": "x"}]'}, "error reading ulimit settings: json: cannot unmarshal "
                                                       "string into Go struct field Ulimit.Hard of type int64"),
    ({"outputs": "[{"}, "invalid outputs specified: unexpected end of JSON input"),
    ({"outputs": '[{"Type": "local"}]'}, 'exporter "local" could not be found'),
    ({"outputs": '[{"Type": "moby"}, {"Type": "moby"}]'}, "multiple outputs not supported"),
    ({"shmsize": "1g"}, 'strconv.ParseInt: parsing "1g": invalid syntax'),
    ({"isolation": "hyperv"}, 'unsupported isolation: "hyperv"'),
    ({"securityopt": "x"}, "security options are not supported on linux"),
    ({"squash": "1"}, "squash is only supported with experimental mode"),
    ({"version": "3"}, 'invalid version "3"'),
    ({"version": "2"}, "buildkit is not enabled on daemon"),
    ({"t": "Bad:Name"}, "invalid reference format: repository name (library/Bad) must be lowercase"),
    ({"t": "a@sha256:" + "0" * 64}, "build tag cannot contain a digest"),
    ({"platform": "windows/amd64"}, "operating system is not supported"),
    ({"platform": "plan10/amd64"}, '"plan10/amd64": unknown operating system or architecture: invalid argument'),
])
def test_bad_query_values_are_400_in_moby_words_before_the_upload(api, query, message):
    daemon, sock = api
    st, body = raw_build(sock, urllib.parse.urlencode(query), context_tar({"Dockerfile": "SAY a\n"}).getvalue())
    assert (st, json.loads(body)) == (400, {"message": message})
    assert daemon.builder.seen == [] and tmp_left(daemon) == []


def test_query_values_parsed_as_moby_reads_them(api):
    daemon, sock = api
    import platform as host
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(host.machine(), host.machine())
    q = [("t", "a"), ("t", "a:latest"), ("t", "b:2"), ("extrahosts", "h:1.2.3.4"), ("rm", "0"),
         ("memory", "12x"), ("cpushares", "512"), ("shmsize", "1024"), ("pull", "1"), ("forcerm", "0"),
         ("buildargs", '{"A": null, "B": "b"}'), ("cachefrom", '["x", null]'), ("networkmode", "host"),
         ("platform", f"linux/{arch}"), ("outputs", '[{"type": "moby", "attrs": {}}]'),
         ("ulimits", '[{"name": "nofile", "soft": 10, "hard": 20}]'), ("dockerfile", ".dockerfile.123"),
         ("isolation", "default"), ("version", "1")]
    ctx = context_tar({".dockerfile.123": "SAY a\n"}).getvalue()
    st, _ = raw_build(sock, urllib.parse.urlencode(q), ctx)
    opts = daemon.builder.seen[-1][0]
    assert st == 200
    assert opts.tags == ["a:latest", "b:2"] and opts.extra_hosts == ["h:1.2.3.4"] and opts.rm is False
    assert (opts.memory, opts.cpushares, opts.shmsize, opts.pull) == (0, 512, 1024, True)
    assert opts.buildargs == {"A": None, "B": "b"} and opts.cache_from == ["x", ""]
    assert opts.platform == f"linux/{arch}" and opts.networkmode == "host"
    assert opts.ulimits == [{"Name": "nofile", "Soft": 10, "Hard": 20}]
    raw_build(sock, "forcerm=1&rm=0", context_tar({"Dockerfile": "SAY a\n"}).getvalue())
    assert daemon.builder.seen[-1][0].rm is True and daemon.builder.seen[-1][0].forcerm is True
    st, body = raw_build(sock, "remote=https://example.com/ctx.tar", b"")
    assert st == 501 and "remote context" in json.loads(body)["message"]


@pytest.mark.parametrize("quiet", [False, True])
def test_a_client_going_away_cancels_the_build(api, quiet):
    """Whether lines were sent or not (q=1 sends nothing until the end), the
    build task is cancelled within a moment and its context dir removed."""
    daemon, sock = api
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    body = context_tar({"Dockerfile": "SAY a\nSLEEP 30\nSAY never\n"}).getvalue()
    s.sendall(f"POST /v1.50/build?q={int(quiet)} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
              .encode() + body)
    deadline = time.time() + 5
    while not daemon.builder.seen and time.time() < deadline:
        time.sleep(0.05)
    if not quiet:
        assert b"Step 1" in s.recv(65536)
    assert [n[:6] for n in tmp_left(daemon)] == ["build-"]      # the unpacked context, while it builds
    s.close()
    assert daemon.builder.cancelled.wait(5)
    deadline = time.time() + 5
    while tmp_left(daemon) and time.time() < deadline:
        time.sleep(0.05)
    assert tmp_left(daemon) == []


def test_prune_and_cancel(api):
    daemon, sock = api
    c = client(sock)
    assert c.prune_builds() == {"CachesDeleted": ["c1", "c2"], "SpaceReclaimed": 1234}
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b'POST /v1.50/build/prune?all=1&filters=%7B%22until%22%3A%5B%221h%22%5D%7D&reserved-space=10 '
              b'HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and daemon.builder.pruned[-1] == (True, {"until": ["1h"]})
    with pytest.raises(docker.errors.APIError) as e:
        c._result(c._post(c._url("/build/prune"), params={"keep-storage": "1GB"}), True)
    assert e.value.response.status_code == 400 and e.value.explanation == (
        'keep-storage is in bytes and expects an integer, got 1GB: strconv.Atoi: parsing "1GB": invalid syntax')
    r = c._post(c._url("/build/cancel"), params={"id": "xyz"})
    assert r.status_code == 200 and r.content == b""
    r = c._post(c._url("/build/cancel"))
    assert r.status_code == 400 and r.json() == {"message": "build ID not provided"}


def test_a_context_larger_than_the_pipe_buffer_arrives_whole(api):
    """20 MB (past BodyPipe's 8 MB in memory): unpacked while it is sent, all of it."""
    daemon, sock = api
    big = os.urandom(1 << 20) * 20
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in {"Dockerfile": b"SAY big\n", "big.bin": big}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    seen = {}
    real_build = daemon.builder.build

    async def build(opts, ctx, emit):
        seen["size"] = os.path.getsize(os.path.join(ctx, "big.bin"))
        return await real_build(opts, ctx, emit)
    daemon.builder.build = build
    st, body = raw_build(sock, "", buf.getvalue())
    assert st == 200 and seen["size"] == len(big) and b"Successfully built" in body
    assert tmp_left(daemon) == []


@pytest.mark.parametrize("compress", ["gz", "bz2", "xz", "bare"])
def test_compressed_contexts_and_a_bare_dockerfile(api, compress):
    daemon, sock = api
    if compress == "bare":
        body = b"SAY bare\n"
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=f"w:{compress}") as t:
            for name, data in {"Dockerfile": b"SAY packed\n", "f": b"x"}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        body = buf.getvalue()
    st, out = raw_build(sock, "", body)
    opts, files, text = daemon.builder.seen[-1]
    assert st == 200 and b"Successfully built" in out
    assert text == ("SAY bare\n" if compress == "bare" else "SAY packed\n")
    assert files == (["Dockerfile", "f"] if compress != "bare" else [opts.dockerfile])
    assert tmp_left(daemon) == []


def test_a_client_gone_mid_upload_leaves_nothing(api):
    daemon, sock = api
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in {"Dockerfile": b"SAY x\n", "big": os.urandom(4 << 20)}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    body = buf.getvalue()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(f"POST /v1.50/build HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
              + body[:len(body) // 2])
    deadline = time.time() + 5
    while not tmp_left(daemon) and time.time() < deadline:
        time.sleep(0.02)
    s.close()
    deadline = time.time() + 5
    while tmp_left(daemon) and time.time() < deadline:
        time.sleep(0.05)
    assert tmp_left(daemon) == [] and daemon.builder.seen == []
    st, _ = raw_build(sock, "", context_tar({"Dockerfile": "SAY next\n"}).getvalue())
    assert st == 200                                   # and the next build works

"""api/server.py's limits on what a client sends, over a real unix socket
against a stand-in daemon: the JSON body cap (413), malformed HTTP (400 with
a JSON body), `Allow` on 405, the idle and header timeouts, the connection
cap that still answers /_ping."""
import asyncio
import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest

import dockyard.api.system  # noqa: F401  (/_ping)
from dockyard.api.server import ApiServer, Limits, StreamResponse, route

LIMITS = Limits(max_body=1 << 20, header_timeout=0.5, idle_timeout=2.0, max_connections=4)


@route("POST", "/_limits_test/json")
async def _echo_json(req):
    return {"got": await req.json(default=None)}


@route("PUT", "/_limits_test/upload")
async def _upload(req):
    n = 0
    async for c in req.stream():
        n += len(c)
    return {"bytes": n}


@route("GET", "/_limits_test/slow")
async def _slow(req):
    async def chunks():
        for i in range(3):
            await asyncio.sleep(0.9)      # longer than the idle timeout in all
            yield b"%d\n" % i
    return StreamResponse(chunks())


class _Criu:
    async def get(self):
        return SimpleNamespace(usable=False)


@pytest.fixture
def sock(tmp_path):
    path = str(tmp_path / "api.sock")
    ready, box = threading.Event(), {}

    async def main():
        server = ApiServer(SimpleNamespace(criu=_Criu()), LIMITS)
        await server.listen_unix(path)
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await box["stop"].wait()
        await server.close()

    t = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    t.start()
    assert ready.wait(5)
    yield path
    box["loop"].call_soon_threadsafe(box["stop"].set)
    t.join(5)


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_reply(s):
    """(status, headers, body) of one reply; the connection is read to EOF
    when the reply has no Content-Length."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise ConnectionError(f"closed before a reply head: {buf!r}")
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = int(headers.get("content-length", -1))
    while n < 0 or len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return status, headers, body


def exchange(path, raw):
    with connect(path) as s:
        s.sendall(raw)
        return read_reply(s)


def closed_by_server(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\nContent-Length: -5\r\n\r\n",
    b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\nContent-Length: ten\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nBad Header\r\n\r\n",
    b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"PUT /_limits_test/upload HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
])
def test_malformed_requests_get_400_with_a_json_body(sock, raw):
    status, headers, body = exchange(sock, raw)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert "bytearray" not in json.loads(body)["message"]


def test_405_says_which_methods_are_allowed(sock):
    status, headers, body = exchange(sock, b"DELETE /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert json.loads(body)["message"]


def test_a_json_body_past_the_limit_is_refused_without_reading_it(sock):
    with connect(sock) as s:   # told by Content-Length: answered before the body is sent
        s.sendall(b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\nContent-Length: 200000000\r\n\r\n")
        status, headers, body = read_reply(s)
    assert status == 413 and "too large" in json.loads(body)["message"]
    with connect(sock) as s:   # chunked: counted as it comes, refused past the limit
        s.sendall(b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        try:
            for _ in range(200):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body = read_reply(s)
    assert status == 413 and headers["connection"] == "close"


def test_a_json_body_under_the_limit_and_an_upload_over_it_are_served(sock):
    doc = {"k": "v" * 1000}
    raw = json.dumps(doc).encode()
    status, _, body = exchange(sock, b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n%s"
                               % (len(raw), raw))
    assert status == 200 and json.loads(body)["got"] == doc
    size = 3 << 20
    with connect(sock) as s:
        s.sendall(b"PUT /_limits_test/upload HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % size)
        s.sendall(b"x" * size)
        status, _, body = read_reply(s)
    assert status == 200 and json.loads(body)["bytes"] == size


def test_idle_and_half_sent_connections_are_closed(sock):
    idle, half, kept = connect(sock), connect(sock), connect(sock)
    half.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n")
    kept.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    assert read_reply(kept)[0] == 200
    t0 = time.monotonic()
    assert closed_by_server(half)
    assert time.monotonic() - t0 < 0.75 * LIMITS.idle_timeout    # the header timeout, not the idle one
    assert closed_by_server(idle) and closed_by_server(kept)
    assert time.monotonic() - t0 < 2 * LIMITS.idle_timeout
    for s in (idle, half, kept):
        s.close()


def test_a_slow_streamed_reply_is_not_idle(sock):
    status, _, body = exchange(sock, b"GET /_limits_test/slow HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == 200 and b"0\n" in body and b"2\n" in body


def test_past_the_connection_cap_ping_answers_and_others_get_503(sock):
    held = [connect(sock) for _ in range(LIMITS.max_connections + 6)]
    try:
        time.sleep(0.1)
        for ping in (b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n", b"HEAD /v1.44/_ping HTTP/1.1\r\nHost: d\r\n\r\n"):
            status, headers, _ = exchange(sock, ping)
            assert status == 200 and headers["connection"] == "close"
        status, headers, body = exchange(sock, b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\n"
                                               b"Content-Length: 2\r\n\r\n{}")
        assert status == 503 and "too many connections" in json.loads(body)["message"]
    finally:
        for s in held:
            s.close()
    time.sleep(0.1)   # the held ones are gone: served again
    status, _, _ = exchange(sock, b"POST /_limits_test/json HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}")
    assert status == 200

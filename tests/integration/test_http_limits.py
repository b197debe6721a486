"""What a hostile or broken client can make dockyardd hold (issue 15, item 4,
and the HTTP part of item 5): a 200 MB create body is refused with 413
without the daemon's memory following it; idle and half-sent connections
are closed by the timeouts and never keep /_ping from answering; streams
that wait (run attached, events) are not idle; malformed HTTP gets 400 with
a JSON body; 405 says Allow; unknown create fields are never stored; the
database and its WAL shrink back after large containers are removed."""
import json
import os
import socket
import sqlite3
import time

import pytest

from conftest import running_daemon

IDLE, HEADER, MAX_CONNS = 3.0, 2.0, 200


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    """This module's own dockyardd, with short timeouts and a small connection cap."""
    yield from running_daemon(request, tmp_path_factory, label="dockyardd-limits",
                              extra_args=("--idle-timeout", str(IDLE), "--header-timeout", str(HEADER),
                                          "--max-connections", str(MAX_CONNS), "--max-request-body", "32m"))


def daemon_pid(daemon):
    return int(daemon.pidfile.read_text())


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def connect(daemon, timeout=30.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(daemon.sock)     # blocking: waits while the listen backlog is full
    s.settimeout(timeout)
    return s


def read_reply(s):
    """(status, headers, body) of one reply read off a raw socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise ConnectionError(f"closed without an answer (got {buf!r})")
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    n = int(headers.get("content-length", -1))
    while n < 0 or len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return int(lines[0].split()[1]), headers, body


def raw_exchange(daemon, raw):
    with connect(daemon) as s:
        s.sendall(raw)
        return read_reply(s)


def closed_by_peer(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def test_a_200mb_create_body_gets_413_and_the_daemon_does_not_grow(daemon, bb_image):
    pid = daemon_pid(daemon)
    rss_before = status_kb(pid, "VmRSS")
    junk = b'"%s": "%s", '
    chunk = b"".join(junk % (b"Junk%05d" % i, b"x" * 4000) for i in range(16))   # ~64 KiB of junk keys
    sent = 0
    with connect(daemon, timeout=60) as s:
        s.sendall(b"POST /v1.44/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")

        def send(data):
            s.sendall(b"%x\r\n%s\r\n" % (len(data), data))

        try:
            send(b'{"Image": "%s", ' % bb_image.encode())
            while sent < 200_000_000:     # streamed: never built in memory here
                send(chunk)
                sent += len(chunk)
            send(b'"Cmd": ["true"]}')
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass                      # refused before the end: the answer is waiting
        status, headers, body = read_reply(s)
    assert status == 413, (status, body[:200])
    assert headers["content-type"] == "application/json"
    assert "too large" in json.loads(body)["message"]
    assert sent < 100_000_000         # refused well before the end of the body
    peak, rss_after = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
    assert peak - rss_before < 120 * 1024, (rss_before, peak)
    assert rss_after - rss_before < 80 * 1024, (rss_before, rss_after)
    assert daemon.ping()


def test_1000_idle_connections_do_not_stop_ping_and_are_closed_by_the_idle_timeout(daemon):
    idle = []
    try:
        for _ in range(1000):
            idle.append(connect(daemon, timeout=IDLE * 4))
        half = connect(daemon, timeout=IDLE * 4)
        half.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n")     # a head never finished
        idle.append(half)
        t0 = time.monotonic()
        for _ in range(5):
            assert daemon.api("GET", "/_ping", timeout=2)[0] == 200
            assert daemon.api("HEAD", "/v1.44/_ping", timeout=2)[0] == 200
        # past the cap, anything but /_ping is told to come back later
        status, body = daemon.api("GET", "/version", timeout=2)
        assert status == 503 and "too many connections" in json.loads(body)["message"]
        assert all(closed_by_peer(s) for s in idle)      # blocks until each is closed
        assert time.monotonic() - t0 < IDLE * 3
    finally:
        for s in idle:
            s.close()
    time.sleep(0.5)
    assert daemon.api("GET", "/version")[0] == 200


def test_waiting_streams_are_not_idle(daemon, bb_image):
    events = connect(daemon, timeout=IDLE * 5)
    try:
        events.sendall(b"GET /v1.44/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\n"
                       b"Host: docker\r\n\r\n")
        # attached run: the wait stream and the attach stream sit silent for longer than the idle timeout
        r = daemon.docker("run", "--rm", bb_image, "sh", "-c", f"sleep {IDLE + 2}; echo done")
        assert r.stdout == "done\n"
        got = b""
        while b'"destroy"' not in got:
            d = events.recv(65536)
            assert d, f"events stream closed: {got[-300:]!r}"
            got += d
    finally:
        events.close()


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: -5\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: many\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: docker\r\nno colon here\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nnot-hex\r\n{}\r\n0\r\n\r\n",
], ids=["request-line", "negative-length", "non-numeric-length", "bad-header", "bad-chunked"])
def test_malformed_requests_get_400_with_a_json_body(daemon, raw):
    status, headers, body = raw_exchange(daemon, raw)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["message"]
    assert daemon.ping()


def test_405_has_allow(daemon):
    status, headers, body = raw_exchange(daemon, b"DELETE /v1.44/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, body = raw_exchange(daemon, b"GET /v1.44/containers/create HTTP/1.1\r\nHost: docker\r\n\r\n")
    assert status == 405 and "POST" in headers["allow"].split(", ")   # (and DELETE: /containers/{id})


def stored_record(daemon, cid):
    db = sqlite3.connect(f"file:{daemon.data_root}/dockyard.db?mode=ro", uri=True)
    try:
        row = db.execute("SELECT rec FROM containers WHERE id=?", (cid,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def test_unknown_create_fields_are_not_stored(daemon, bb_image):
    body = {"Image": bb_image, "Cmd": ["true"], "Labels": {"keep": "me"}, "JunkTop": "x" * 1000,
            "HostConfig": {"JunkHost": {"a": 1}, "ShmSize": 1 << 20},
            "NetworkingConfig": {"EndpointsConfig": {"bridge": {"JunkEndpoint": 1}}}}
    status, out = daemon.api("POST", "/v1.44/containers/create", body)
    assert status == 201, out
    cid = json.loads(out)["Id"]
    try:
        info = json.loads(daemon.api("GET", f"/v1.44/containers/{cid}/json")[1])
        assert "JunkTop" not in info["Config"] and "JunkHost" not in info["HostConfig"]
        assert info["Config"]["Labels"]["keep"] == "me" and info["HostConfig"]["ShmSize"] == 1 << 20
        rec = stored_record(daemon, cid)
        assert rec is not None and "Junk" not in rec
        assert '"keep"' in rec
    finally:
        daemon.api("DELETE", f"/v1.44/containers/{cid}?force=1")


def test_the_database_and_its_wal_shrink_after_large_containers_are_removed(daemon, bb_image):
    ids = []
    for i in range(24):
        body = {"Image": bb_image, "Cmd": ["true"], "Labels": {"big": f"{i}" + "y" * (1 << 20)}}
        status, out = daemon.api("POST", "/v1.44/containers/create", body)
        assert status == 201, out
        ids.append(json.loads(out)["Id"])
    db, wal = daemon.data_root / "dockyard.db", daemon.data_root / "dockyard.db-wal"
    assert db.stat().st_size + wal.stat().st_size > 20 << 20     # they did hold it
    for cid in ids:
        assert daemon.api("DELETE", f"/v1.44/containers/{cid}")[0] == 204
    assert wal.stat().st_size <= 4 << 20
    assert db.stat().st_size < 8 << 20
    assert os.path.getsize(db) + wal.stat().st_size < 12 << 20

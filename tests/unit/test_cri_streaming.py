"""cri/streaming.py: the CRI streaming server with a fake backend (exec runs a
local subprocess, port-forward reaches a local echo server), driven by a test
client that speaks as client-go does. The client's SPDY framing is written here
from moby/spdystream's spdy/{read,write}.go and its stream handling from
client-go's tools/remotecommand (v2..v4 createStreams: error, stdin, stdout,
stderr, resize, each SYN_STREAM waiting for its SYN_REPLY; stdin half-closed by
an empty DATA with FIN) and tools/portforward (error stream first, closed at
once, then the data stream, both with port and requestID headers); it shares no
code with the server but the SPDY/3 dictionary (checked in test_cri_spdy.py).
The WebSocket client is wsproto, framing client-go's channel protocol."""
import base64
import ctypes
import fcntl
import json
import os
import pty
import queue
import socket
import struct
import subprocess
import termios
import threading
import time
import urllib.parse
import zlib
from types import SimpleNamespace

import pytest

from dockyard.cri import streaming
from dockyard.cri.spdy import DICTIONARY

# ====================================================================== the client


class GoSpdyClient:
    """client-go's SPDY executor, reduced to what the tests need."""

    def __init__(self, url, protocols, method="POST", tunnel=None):
        if tunnel is not None:      # already upgraded (SPDY over a WebSocket)
            self._setup(tunnel, 101, {}, b"")
            return
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=20)
        head = [f"{method} {u.path} HTTP/1.1", f"Host: {u.netloc}", "User-Agent: crictl/test",
                "Connection: Upgrade", "Upgrade: SPDY/3.1"]
        head += [f"X-Stream-Protocol-Version: {p}" for p in protocols]   # one line each, as Header.Add
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        raw_head, _, rest = buf.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers.setdefault(k.strip().lower(), []).append(v.strip())
        self._setup(self.sock, int(lines[0].split()[1]), self.headers, rest)

    def _setup(self, sock, status, headers, rest):
        self.sock, self.status, self.headers, self.body = sock, status, headers, rest
        self.comp = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self.decomp = zlib.decompressobj(15, DICTIONARY)
        self.next_id = 1
        self.data = {}            # stream id -> bytearray
        self.fin = {}             # stream id -> threading.Event (FIN or RST seen)
        self.replies = {}         # stream id -> threading.Event
        self.resets = set()
        self.goaway = threading.Event()
        self.eof = threading.Event()
        self.wlock = threading.Lock()
        if self.status == 101:
            self.inbuf = bytearray(rest)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        else:
            while True:   # the rest of an error body (Connection: close)
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                self.body += chunk
            self.sock.close()

    # -- writeSynStreamFrame / writeDataFrame
    def _write(self, b):
        with self.wlock:
            self.sock.sendall(b)

    def create_stream(self, headers):
        sid = self.next_id
        self.next_id += 2
        self.data[sid] = bytearray()
        self.fin[sid] = threading.Event()
        self.replies[sid] = threading.Event()
        block = struct.pack(">I", len(headers))
        for k, v in headers.items():
            k, v = k.lower().encode(), v.encode()
            block += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        with self.wlock:
            hb = self.comp.compress(block) + self.comp.flush(zlib.Z_SYNC_FLUSH)
            body = struct.pack(">IIBB", sid, 0, 0, 0) + hb
            self.sock.sendall(struct.pack(">HHI", 0x8003, 1, len(body)) + body)
        assert self.replies[sid].wait(10), f"no SYN_REPLY for stream {sid}"
        assert sid not in self.resets, f"stream {sid} refused"
        return sid

    def write(self, sid, data, fin=False):
        self._write(struct.pack(">II", sid, (int(fin) << 24) | len(data)) + data)

    def close_stream(self, sid):
        self.write(sid, b"", fin=True)

    def read_all(self, sid, timeout=20):
        assert self.fin[sid].wait(timeout) or self.eof.wait(0), f"stream {sid} not finished"
        return bytes(self.data[sid])

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # -- ReadFrame
    def _read(self):
        try:
            while True:
                while len(self.inbuf) >= 8:
                    w1, w2 = struct.unpack_from(">II", self.inbuf)
                    n = w2 & 0xFFFFFF
                    if len(self.inbuf) < 8 + n:
                        break
                    payload = bytes(self.inbuf[8:8 + n])
                    del self.inbuf[:8 + n]
                    self._frame(w1, w2 >> 24, payload)
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.inbuf += chunk
        except OSError:
            pass
        finally:
            self.eof.set()
            for e in self.fin.values():
                e.set()

    def _frame(self, w1, flags, p):
        if w1 & 0x80000000:
            ftype = w1 & 0xFFFF
            if ftype == 2:                                  # SYN_REPLY
                sid = struct.unpack_from(">I", p)[0]
                self.decomp.decompress(p[4:])
                self.replies[sid].set()
                if flags & 1:
                    self.fin[sid].set()
            elif ftype == 3:                                # RST_STREAM
                sid = struct.unpack_from(">I", p)[0]
                self.resets.add(sid)
                self.replies[sid].set()
                self.fin[sid].set()
            elif ftype == 7:                                # GOAWAY
                self.goaway.set()
            elif ftype == 6:                                # PING from the server: echo it
                self._write(struct.pack(">HHI", 0x8003, 6, 4) + p)
        else:
            sid = w1 & 0x7FFFFFFF
            self.data[sid] += p
            if flags & 1:
                self.fin[sid].set()


def remotecommand(url, protocol="v4.channel.k8s.io", stdin=False, stdout=True, stderr=True, tty=False,
                  resizing=True):
    """v2/v3/v4 createStreams order; returns the client and its stream ids."""
    c = GoSpdyClient(url, [protocol] if isinstance(protocol, str) else protocol)
    assert c.status == 101, (c.status, c.body)
    ids = {"error": c.create_stream({"streamtype": "error"})}
    if stdin:
        ids["stdin"] = c.create_stream({"streamtype": "stdin"})
    if stdout:
        ids["stdout"] = c.create_stream({"streamtype": "stdout"})
    if stderr and not tty:
        ids["stderr"] = c.create_stream({"streamtype": "stderr"})
    if tty and resizing:
        ids["resize"] = c.create_stream({"streamtype": "resize"})
    return c, ids


def decode_v4_status(message):
    """client-go's errorDecoderV4: the exit code, None for success, or the error text."""
    if not message:
        return None
    st = json.loads(message)
    if st["status"] == "Success":
        return None
    if st.get("reason") == "NonZeroExitCode":
        for cause in st["details"]["causes"]:
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
        raise AssertionError("no ExitCode cause")
    return st["message"]


# ====================================================================== the backend

class FakeBackend:
    def __init__(self):
        self.calls = []
        self.resizes = []
        self.netns = {}

    def exec(self, container_id, cmd, tty, stdin, stdout, stderr, resize):
        self.calls.append(("exec", container_id, cmd, tty))
        if cmd[0] == "boom":
            raise RuntimeError(f"container {container_id} is not running")
        if cmd[0] == "raise-exit":
            raise streaming.ExitCode(int(cmd[1]))
        if tty:
            size = resize.next(timeout=10)
            self.resizes.append(size)
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))
            p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
            os.close(slave)
            try:
                while True:
                    try:
                        data = os.read(master, 4096)
                    except OSError:
                        break
                    if not data:
                        break
                    stdout.write(data)
            finally:
                os.close(master)
            return p.wait()
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threads = []

        def copy_out(src, dst):
            while data := src.read1(65536):
                if dst is not None:
                    dst.write(data)

        def copy_in():
            while data := stdin.read(65536):
                p.stdin.write(data)
                p.stdin.flush()
            p.stdin.close()
        threads.append(threading.Thread(target=copy_out, args=(p.stdout, stdout)))
        threads.append(threading.Thread(target=copy_out, args=(p.stderr, stderr)))
        if stdin is not None:
            threads.append(threading.Thread(target=copy_in, daemon=True))
        for t in threads:
            t.start()
        for t in threads[:2]:
            t.join()
        return p.wait()

    def attach(self, container_id, tty, stdin, stdout, stderr, resize):
        self.calls.append(("attach", container_id, tty))
        stdout.write(b"attached to " + container_id.encode() + b"\n")
        if stdin is not None:
            while data := stdin.read():
                stdout.write(data.upper())

    def port_forward(self, pod_id, port, stream):
        self.calls.append(("portforward", pod_id, port))
        sock = streaming.connect_in_netns(self.netns.get(pod_id), port)
        streaming.splice(stream, sock)


@pytest.fixture
def server():
    backend = FakeBackend()
    srv = streaming.StreamServer(backend, stream_creation_timeout=5)
    srv.start()
    yield srv
    srv.stop()


def exec_url(srv, cmd, **kw):
    req = SimpleNamespace(container_id="c1", cmd=cmd, tty=kw.get("tty", False), stdin=kw.get("stdin", False),
                          stdout=kw.get("stdout", True), stderr=kw.get("stderr", not kw.get("tty", False)))
    return srv.get_exec_url(req)


# ====================================================================== exec / attach over SPDY

def test_exec_stdout_stderr_and_exit_code(server):
    url = exec_url(server, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert url.startswith(f"http://127.0.0.1:{server.port}/exec/") and len(url.rsplit("/", 1)[1]) == 8
    c, ids = remotecommand(url)
    assert c.headers["x-stream-protocol-version"] == ["v4.channel.k8s.io"]
    assert c.headers["upgrade"] == ["SPDY/3.1"]
    try:
        assert c.read_all(ids["stdout"]) == b"out\n"
        assert c.read_all(ids["stderr"]) == b"err\n"
        status = json.loads(c.read_all(ids["error"]))
        assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
        assert status["message"].startswith("command terminated with non-zero exit code")
        assert decode_v4_status(json.dumps(status)) == 3
        assert c.goaway.wait(5)
    finally:
        c.close()
    assert server.backend.calls == [("exec", "c1", ["sh", "-c", "echo out; echo err >&2; exit 3"], False)]


def test_exec_success_and_the_client_offering_v5_first(server):
    # client-go's SPDY executor offers v5 first; kubelet's server speaks up to v4 over SPDY
    c, ids = remotecommand(exec_url(server, ["echo", "hi"]),
                           protocol=["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                                     "v2.channel.k8s.io", "channel.k8s.io"])
    try:
        assert c.headers["x-stream-protocol-version"] == ["v4.channel.k8s.io"]
        assert c.read_all(ids["stdout"]) == b"hi\n"
        assert json.loads(c.read_all(ids["error"])) == {"metadata": {}, "status": "Success"}
    finally:
        c.close()


def test_exec_stdin(server):
    c, ids = remotecommand(exec_url(server, ["sh", "-c", "cat; echo done"], stdin=True), stdin=True)
    try:
        c.write(ids["stdin"], b"hello ")
        c.write(ids["stdin"], b"world\n" * 20000)          # past any 64 KiB window
        c.close_stream(ids["stdin"])
        assert c.read_all(ids["stdout"]) == b"hello " + b"world\n" * 20000 + b"done\n"
        assert decode_v4_status(c.read_all(ids["error"])) is None
    finally:
        c.close()


def test_exec_tty_and_resize(server):
    c, ids = remotecommand(exec_url(server, ["stty", "size"], tty=True, stdin=True),
                           stdin=True, tty=True)
    try:
        assert "stderr" not in ids and "resize" in ids
        c.write(ids["resize"], json.dumps({"Width": 91, "Height": 17}).encode() + b"\n")
        assert c.read_all(ids["stdout"]).strip() == b"17 91"
        assert decode_v4_status(c.read_all(ids["error"])) is None
    finally:
        c.close()
    assert server.backend.resizes == [streaming.TerminalSize(91, 17)]


@pytest.mark.parametrize("protocol", ["v2.channel.k8s.io", "v3.channel.k8s.io"])
def test_exec_older_protocols_report_failure_as_text(server, protocol):
    c, ids = remotecommand(exec_url(server, ["sh", "-c", "exit 7"]), protocol=protocol)
    try:
        msg = c.read_all(ids["error"]).decode()
        assert msg.startswith("command terminated with non-zero exit code") and "7" in msg
    finally:
        c.close()
    c, ids = remotecommand(exec_url(server, ["true"]), protocol=protocol)
    try:
        assert c.read_all(ids["error"]) == b""
    finally:
        c.close()


def test_exec_backend_error_is_an_internal_error_status(server):
    c, ids = remotecommand(exec_url(server, ["boom"]))
    try:
        st = json.loads(c.read_all(ids["error"]))
        assert st["reason"] == "InternalError" and st["code"] == 500
        assert st["message"] == "Internal error occurred: error executing command in container: " \
                                "container c1 is not running"
    finally:
        c.close()


def test_exec_exit_code_raised_by_the_backend(server):
    c, ids = remotecommand(exec_url(server, ["raise-exit", "9"]))
    try:
        assert decode_v4_status(c.read_all(ids["error"])) == 9
        assert c.read_all(ids["stdout"]) == b"" and c.read_all(ids["stderr"]) == b""
    finally:
        c.close()


def test_connect_in_netns_reports_a_bad_namespace():
    with pytest.raises(OSError):
        streaming.connect_in_netns("/nonexistent/netns", 80)
    with open("/dev/null") as f:                       # not a namespace: setns refuses it
        with pytest.raises(OSError):
            streaming.connect_in_netns(f"/proc/self/fd/{f.fileno()}", 80)


def test_attach(server):
    req = SimpleNamespace(container_id="c9", tty=False, stdin=True, stdout=True, stderr=False)
    url = server.get_attach_url(req)
    assert "/attach/" in url
    c, ids = remotecommand(url, stdin=True, stderr=False)
    try:
        c.write(ids["stdin"], b"abc")
        c.close_stream(ids["stdin"])
        assert c.read_all(ids["stdout"]) == b"attached to c9\nABC"
        assert decode_v4_status(c.read_all(ids["error"])) is None
    finally:
        c.close()


def test_stream_creation_timeout_closes_the_connection():
    srv = streaming.StreamServer(FakeBackend(), stream_creation_timeout=0.5)
    srv.start()
    try:
        c = GoSpdyClient(exec_url(srv, ["true"]), ["v4.channel.k8s.io"])
        try:
            assert c.status == 101
            c.create_stream({"streamtype": "error"})      # stdout and stderr never come
            assert c.eof.wait(15)
        finally:
            c.close()
        assert srv.backend.calls == []
    finally:
        srv.stop()


# ====================================================================== tokens and refusals

def test_tokens_are_single_use_and_kind_bound(server):
    url = exec_url(server, ["true"])
    c, ids = remotecommand(url)
    c.read_all(ids["error"])
    c.close()
    again = GoSpdyClient(url, ["v4.channel.k8s.io"])
    assert (again.status, again.body) == (404, b"404 page not found\n")
    other = exec_url(server, ["true"]).replace("/exec/", "/attach/")
    wrong = GoSpdyClient(other, ["v4.channel.k8s.io"])
    assert wrong.status == 404
    unknown = GoSpdyClient(f"{server.base_url}/exec/AAAAAAAA", ["v4.channel.k8s.io"])
    assert unknown.status == 404
    nothing = GoSpdyClient(f"{server.base_url}/nothing/here", ["v4.channel.k8s.io"])
    assert nothing.status == 404


def test_tokens_expire():
    now = [1000.0]
    cache = streaming.TokenCache(ttl=60, clock=lambda: now[0])
    a = cache.insert("exec", "A")
    b = cache.insert("exec", "B")
    assert a != b
    now[0] += 59
    assert cache.consume(a).request == "A"
    now[0] += 2
    assert cache.consume(b) is None          # past its minute
    small = streaming.TokenCache(max_in_flight=2)
    small.insert("exec", 1)
    small.insert("exec", 2)
    with pytest.raises(streaming.StreamingError) as e:
        small.insert("exec", 3)
    assert e.value.code == "ResourceExhausted"


def test_protocol_negotiation_failure_is_403_with_the_accepted_versions(server):
    c = GoSpdyClient(exec_url(server, ["true"]), ["v9.channel.k8s.io"])
    assert c.status == 403
    assert c.headers["x-accepted-stream-protocol-versions"] == streaming.SPDY_REMOTECOMMAND_PROTOCOLS
    assert b"unable to negotiate protocol" in c.body


def test_missing_upgrade_headers_are_400(server):
    url = urllib.parse.urlsplit(exec_url(server, ["true"]))
    s = socket.create_connection((url.hostname, url.port), timeout=10)
    s.sendall(f"GET {url.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"unable to upgrade: missing upgrade headers in request" in reply


@pytest.mark.parametrize("kw, msg", [
    ({"container_id": ""}, "missing required container_id"),
    ({"tty": True, "stderr": True}, "tty and stderr cannot both be true"),
    ({"stdin": False, "stdout": False, "stderr": False}, "one of stdin, stdout, or stderr must be set"),
])
def test_get_exec_url_validates_as_kubelet(server, kw, msg):
    req = dict(container_id="c1", cmd=["true"], tty=False, stdin=False, stdout=True, stderr=True)
    req.update(kw)
    with pytest.raises(streaming.StreamingError) as e:
        server.get_exec_url(SimpleNamespace(**req))
    assert (e.value.code, str(e.value)) == ("InvalidArgument", msg)
    with pytest.raises(streaming.StreamingError) as e:
        server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="", port=[80]))
    assert str(e.value) == "missing required pod_sandbox_id"


# ====================================================================== port-forward

@pytest.fixture
def echo_server():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield ls.getsockname()[1]
    stop.set()
    ls.shutdown(socket.SHUT_RDWR)     # wakes the accept
    ls.close()
    t.join(5)


def _echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(b"echo:" + data)


def _forward(c, port, request_id, payload):
    """client-go's handleConnection: error stream (closed at once), then data."""
    hdr = {"streamtype": "error", "port": str(port), "requestid": str(request_id)}
    err = c.create_stream(hdr)
    c.close_stream(err)
    data = c.create_stream({**hdr, "streamtype": "data"})
    c.write(data, payload)
    c.close_stream(data)
    return err, data


def test_port_forward_to_an_echo_server(server, echo_server):
    url = server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="pod1", port=[echo_server]))
    assert "/portforward/" in url
    c = GoSpdyClient(url, ["portforward.k8s.io"])
    assert c.status == 101 and c.headers["x-stream-protocol-version"] == ["portforward.k8s.io"]
    try:
        e1, d1 = _forward(c, echo_server, 0, b"one")
        e2, d2 = _forward(c, echo_server, 1, b"two" * 100000)
        assert c.read_all(d1) == b"echo:one"
        got = c.read_all(d2)
        assert got.replace(b"echo:", b"") == b"two" * 100000
        assert c.read_all(e1) == b"" and c.read_all(e2) == b""
    finally:
        c.close()
    assert server.backend.calls == [("portforward", "pod1", echo_server)] * 2


def test_port_forward_error_goes_to_the_error_stream(server):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed_port = s.getsockname()[1]      # bound, never listening: refused
    try:
        c = GoSpdyClient(server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="pod1", port=[closed_port])),
                         ["portforward.k8s.io"])
        try:
            err, data = _forward(c, closed_port, 0, b"x")
            msg = c.read_all(err).decode()
            assert msg.startswith(f"error forwarding port {closed_port} to pod pod1")
            assert "refused" in msg.lower()
        finally:
            c.close()
    finally:
        s.close()


def test_port_forward_refuses_streams_without_a_valid_port(server):
    c = GoSpdyClient(server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="pod1", port=[])),
                     ["portforward.k8s.io"])
    try:
        with pytest.raises(AssertionError, match="refused"):
            c.create_stream({"streamtype": "data", "port": "0", "requestid": "0"})
        with pytest.raises(AssertionError, match="refused"):
            c.create_stream({"streamtype": "bogus", "port": "80", "requestid": "0"})
    finally:
        c.close()


_CLONE_NEWNET = 0x40000000


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
def test_port_forward_enters_the_pods_netns(server):
    """An echo server inside a fresh network namespace (made by a thread that
    unshares, so nothing outlives the test): reachable only through the pod's
    netns path, not from ours."""
    libc = ctypes.CDLL(None, use_errno=True)
    ready: queue.Queue = queue.Queue()
    stop = threading.Event()

    def pod():
        if libc.unshare(_CLONE_NEWNET) != 0:
            ready.put(OSError(ctypes.get_errno(), "unshare"))
            return
        nsfd = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ifr = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH", fcntl.ioctl(ctl, 0x8913, ifr)[:18])[1]      # SIOCGIFFLAGS
        fcntl.ioctl(ctl, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b"\0" * 14))   # IFF_UP
        ctl.close()
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        ls.settimeout(0.2)
        ready.put((nsfd, ls.getsockname()[1]))
        try:
            while not stop.is_set():
                try:
                    conn, _ = ls.accept()
                except socket.timeout:
                    continue
                _echo(conn)
        finally:
            ls.close()
    t = threading.Thread(target=pod, daemon=True)
    t.start()
    got = ready.get(timeout=10)
    if isinstance(got, Exception):
        pytest.skip(f"cannot make a network namespace here: {got}")
    nsfd, port = got
    try:
        server.backend.netns["podns"] = f"/proc/self/fd/{nsfd}"
        with pytest.raises(OSError):                 # not in our namespace
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        c = GoSpdyClient(server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="podns", port=[port])),
                         ["portforward.k8s.io"])
        try:
            err, data = _forward(c, port, 0, b"inside")
            assert c.read_all(data) == b"echo:inside"
            assert c.read_all(err) == b""
        finally:
            c.close()
    finally:
        stop.set()
        t.join(5)
        os.close(nsfd)


# ====================================================================== WebSockets

class WsClient:
    """client-go's websocket executor framing (wsproto underneath)."""

    def __init__(self, url, protocols):
        from wsproto import WSConnection
        from wsproto.connection import ConnectionType
        from wsproto.events import Request
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=20)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=u.netloc, target=u.path, subprotocols=protocols)))
        self.accepted = None
        self.rejected = None
        self.channels = {}
        self.closed = None
        self.events = []
        while self.accepted is None and self.rejected is None:
            self._pump()

    def _pump(self):
        from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, RejectConnection,
                                    RejectData)
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        for ev in self.ws.events():
            if isinstance(ev, AcceptConnection):
                self.accepted = ev
            elif isinstance(ev, RejectConnection):
                self.rejected = ev
            elif isinstance(ev, RejectData):
                pass
            elif isinstance(ev, BytesMessage):
                self.events.append(ev.data)
                ch, payload = ev.data[0], ev.data[1:]
                self.channels.setdefault(ch, bytearray()).extend(payload)
            elif isinstance(ev, CloseConnection):
                self.closed = ev.code
                try:
                    self.sock.sendall(self.ws.send(ev.response()))
                except Exception:
                    pass
        return bool(data)

    def send(self, channel, data):
        from wsproto.events import BytesMessage
        self.sock.sendall(self.ws.send(BytesMessage(data=bytes([channel]) + data)))

    def run_to_close(self):
        while self.closed is None and self._pump():
            pass
        self.sock.close()


def test_websocket_v5_exec_with_stdin_and_its_close_signal(server):
    url = exec_url(server, ["sh", "-c", "cat; echo err >&2; exit 4"], stdin=True)
    c = WsClient(url, ["v5.channel.k8s.io", "v4.channel.k8s.io"])
    assert c.accepted is not None and c.accepted.subprotocol == "v5.channel.k8s.io"
    c.send(streaming.STDIN, b"over websocket\n")
    c.send(streaming.WS_CLOSE_SIGNAL, bytes([streaming.STDIN]))   # v5: stdin is done, cat ends
    c.run_to_close()
    assert c.events[0] == bytes([streaming.STDOUT])               # the empty "ready" message first
    assert bytes(c.channels[streaming.STDOUT]) == b"over websocket\n"
    assert bytes(c.channels[streaming.STDERR]) == b"err\n"
    assert decode_v4_status(bytes(c.channels[streaming.ERROR])) == 4
    assert c.closed == 1000


def test_websocket_v4_exit_code_and_plain_channel_protocol(server):
    c = WsClient(exec_url(server, ["sh", "-c", "echo hi; exit 2"]), ["v4.channel.k8s.io"])
    c.run_to_close()
    assert bytes(c.channels[streaming.STDOUT]) == b"hi\n"
    assert decode_v4_status(bytes(c.channels[streaming.ERROR])) == 2
    c = WsClient(exec_url(server, ["sh", "-c", "exit 2"]), ["channel.k8s.io"])
    assert c.accepted.subprotocol == "channel.k8s.io"
    c.run_to_close()
    assert bytes(c.channels[streaming.ERROR]).startswith(b"command terminated with non-zero exit code")


def test_websocket_tty_resize(server):
    c = WsClient(exec_url(server, ["stty", "size"], tty=True), ["v5.channel.k8s.io"])
    c.send(streaming.RESIZE, b'{"Width":120,"Height":40}')
    c.run_to_close()
    assert bytes(c.channels[streaming.STDOUT]).strip() == b"40 120"
    assert decode_v4_status(bytes(c.channels[streaming.ERROR])) is None


def test_websocket_unknown_subprotocol_is_refused(server):
    c = WsClient(exec_url(server, ["true"]), ["v9.channel.k8s.io"])
    assert c.rejected is not None and c.rejected.status_code == 403
    c.sock.close()
    assert server.backend.calls == []


class WsTunnel:
    """client-go's TunnelingConnection: a byte stream in binary messages, socket-shaped."""

    def __init__(self, ws_client):
        self.c = ws_client
        self.pending = bytearray()
        self.lock = threading.Lock()

    def recv(self, n):
        from wsproto.events import BytesMessage, CloseConnection, Ping
        while not self.pending:
            data = self.c.sock.recv(65536)
            if not data:
                return b""
            self.c.ws.receive_data(data)
            for ev in self.c.ws.events():
                if isinstance(ev, BytesMessage):
                    self.pending += ev.data
                elif isinstance(ev, Ping):
                    self.sendraw(ev.response())
                elif isinstance(ev, CloseConnection):
                    return b""
        chunk = bytes(self.pending[:n])
        del self.pending[:n]
        return chunk

    def sendraw(self, ev):
        with self.lock:
            self.c.sock.sendall(self.c.ws.send(ev))

    def sendall(self, data):
        from wsproto.events import BytesMessage
        self.sendraw(BytesMessage(data=data))

    def shutdown(self, how):
        self.c.sock.shutdown(how)

    def close(self):
        self.c.sock.close()


def test_port_forward_spdy_tunnelled_in_a_websocket(server, echo_server):
    url = server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="pod1", port=[echo_server]))
    ws = WsClient(url, ["SPDY/3.1+portforward.k8s.io"])
    assert ws.accepted.subprotocol == "SPDY/3.1+portforward.k8s.io"
    c = GoSpdyClient(None, None, tunnel=WsTunnel(ws))
    try:
        err, data = _forward(c, echo_server, 0, b"tunnelled")
        assert c.read_all(data) == b"echo:tunnelled"
        assert c.read_all(err) == b""
    finally:
        c.close()
    # exec's subprotocols are not port-forward's
    ws = WsClient(server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="pod1", port=[])),
                  ["v4.channel.k8s.io"])
    assert ws.rejected is not None and ws.rejected.status_code == 403
    ws.sock.close()


def test_server_stop_ends_live_sessions():
    backend = FakeBackend()
    srv = streaming.StreamServer(backend)
    srv.start()
    c, ids = remotecommand(exec_url(srv, ["cat"], stdin=True), stdin=True)   # ends when stdin does
    t0 = time.monotonic()
    srv.stop(timeout=5)
    assert c.eof.wait(10)
    c.close()
    assert time.monotonic() - t0 < 10
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


def test_tokens_are_url_safe():
    # kubelet's tokens: 8 characters of RawURLEncoding
    tok = streaming.TokenCache().insert("exec", None)
    assert len(tok) == 8 and base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))


# ====================================================================== the real client (dev only)

CLIENT_GO_PROBE = r'''package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	remoteclient "k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	"sigs.k8s.io/cri-tools/pkg/common"
)

type sizeQueue struct{ sent bool }

func (q *sizeQueue) Next() *remoteclient.TerminalSize {
	if q.sent {
		time.Sleep(3 * time.Second)
		return nil
	}
	q.sent = true
	return &remoteclient.TerminalSize{Width: 77, Height: 33}
}

func main() {
	mode, transport, raw := os.Args[1], os.Args[2], os.Args[3]
	u, _ := url.Parse(raw)
	switch mode {
	case "exec", "exectty", "execnostdin":
		ex, err := common.GetExecutor(transport, u, &rest.TLSClientConfig{})
		if err != nil {
			panic(err)
		}
		opts := remoteclient.StreamOptions{Stdout: os.Stdout}
		if mode != "execnostdin" {
			opts.Stdin = os.Stdin
		}
		if mode == "exectty" {
			opts.Tty = true
			opts.TerminalSizeQueue = &sizeQueue{}
		} else {
			opts.Stderr = os.Stderr
		}
		err = ex.StreamWithContext(context.Background(), opts)
		if ce, ok := err.(exec.CodeExitError); ok {
			fmt.Printf("EXIT %d\n", ce.Code)
			return
		}
		if err != nil {
			fmt.Printf("ERROR %v\n", err)
			return
		}
		fmt.Println("EXIT 0")
	case "portforward":
		d, err := common.GetDialer(transport, u, &rest.TLSClientConfig{})
		if err != nil {
			panic(err)
		}
		stop, ready := make(chan struct{}), make(chan struct{})
		pf, err := portforward.NewForStreaming(d, []string{"0:" + os.Args[4]}, stop, ready, io.Discard, os.Stderr)
		if err != nil {
			panic(err)
		}
		go func() {
			if err := pf.ForwardPorts(); err != nil {
				fmt.Printf("ERROR %v\n", err)
				os.Exit(1)
			}
		}()
		<-ready
		ports, _ := pf.GetPorts()
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(c, "hello %d", i)
			c.(*net.TCPConn).CloseWrite()
			b, _ := io.ReadAll(c)
			c.Close()
			fmt.Printf("GOT %s\n", strings.TrimSpace(string(b)))
		}
		close(stop)
	}
}
'''


@pytest.mark.skipif(not os.environ.get("DOCKYARD_CRI_TOOLS"),
                    reason="dev only: DOCKYARD_CRI_TOOLS=<cri-tools source tree> [DOCKYARD_GO=<go>] "
                           "builds a client on crictl's own streaming code (client-go, vendored)")
def test_client_go_against_the_server(tmp_path, server, echo_server):
    """crictl's exec/port-forward code path (pkg/common.GetExecutor/GetDialer and
    client-go) for both transports, built from cri-tools' vendored sources."""
    import shutil
    src = tmp_path / "cri-tools"
    shutil.copytree(os.environ["DOCKYARD_CRI_TOOLS"], src, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "build", "_output"))
    (src / "cmd" / "h19probe").mkdir()
    (src / "cmd" / "h19probe" / "main.go").write_text(CLIENT_GO_PROBE)
    env = dict(os.environ, GOFLAGS="-mod=vendor", GOPROXY="off", GOTOOLCHAIN="local", CGO_ENABLED="0")
    env.setdefault("GOCACHE", str(tmp_path / "gocache"))
    subprocess.run([os.environ.get("DOCKYARD_GO", "go"), "build", "-o", str(tmp_path / "probe"), "./cmd/h19probe"],
                   cwd=src, env=env, check=True, timeout=900)

    def run(mode, transport, url, stdin=b"", extra=()):
        p = subprocess.run([str(tmp_path / "probe"), mode, transport, url, *extra], input=stdin,
                           capture_output=True, timeout=60)
        return p.stdout, p.stderr

    for tr in ("spdy", "websocket"):
        out, err = run("exec", tr, exec_url(server, ["sh", "-c", "cat; echo err >&2; exit 5"], stdin=True),
                       b"piped stdin\n")
        assert (out, err) == (b"piped stdin\nEXIT 5\n", b"err\n"), tr
        out, _ = run("execnostdin", tr, exec_url(server, ["echo", "ok"]))
        assert out == b"ok\nEXIT 0\n", tr
        out, _ = run("exectty", tr, exec_url(server, ["stty", "size"], tty=True, stdin=True))
        assert out == b"33 77\r\nEXIT 0\n", tr
        out, _ = run("exec", tr, exec_url(server, ["boom"], stdin=True))
        assert out == b"ERROR Internal error occurred: error executing command in container: " \
                      b"container c1 is not running\n", tr
        url = server.get_port_forward_url(SimpleNamespace(pod_sandbox_id="p", port=[echo_server]))
        out, _ = run("portforward", tr, url, extra=(str(echo_server),))
        assert out == b"GOT echo:hello 0\nGOT echo:hello 1\n", tr

"""The docker CLI's own share of a figure: the same command against a server
that answers at once.

`docker ps` with 1000 rows and `docker exec CTR true` are mostly the docker
CLI's own work (its start-up; decoding and formatting the rows). FloorServer
serves the requests those two commands make from canned replies (the listing
an engine really sent, captured once), so the time the CLI takes against it is
the floor no engine can go under, and an engine's figure minus that floor is
the part the engine controls. Used by scale_bench.py; nothing asserts on it.

    with FloorServer(path, api_version="1.50", listing=body) as fs:
        subprocess.run(["docker", "-H", fs.host, "ps"])
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading

_INSPECT = json.dumps({
    "Id": "f" * 64, "Name": "/floor", "Created": "2026-01-01T00:00:00Z", "Path": "sleep", "Args": ["1000000"],
    "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False, "OOMKilled": False,
              "Dead": False, "Pid": 1, "ExitCode": 0, "Error": "", "StartedAt": "2026-01-01T00:00:00Z",
              "FinishedAt": "0001-01-01T00:00:00Z"},
    "Config": {"Tty": False, "OpenStdin": False, "Image": "bb", "Cmd": ["sleep", "1000000"]},
    "HostConfig": {"NetworkMode": "none"}}).encode()
_EXEC_ID = "e" * 64
_EXEC_INSPECT = json.dumps({"ID": _EXEC_ID, "Running": False, "ExitCode": 0, "Pid": 0, "OpenStdin": False,
                            "OpenStdout": True, "OpenStderr": True, "ContainerID": "f" * 64}).encode()


class FloorServer:
    """An Engine API look-alike on a unix socket that answers `docker ps` and
    `docker exec CTR CMD` at once: the listing given, any container is running,
    an exec's stream ends at once and it exited 0."""

    def __init__(self, path: str, *, api_version: str, listing: bytes = b"[]"):
        self.path, self.api_version, self.listing = path, api_version, listing
        self.host = "unix://" + path
        self._sock: socket.socket | None = None

    def __enter__(self) -> FloorServer:
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.bind(self.path)
        self._sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._sock is not None:
            self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            while True:
                line = f.readline()
                if not line:
                    return
                method, target = (line.decode("latin-1").split(" ") + ["", ""])[:2]
                length = 0
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":", 1)[1])
                if length:
                    f.read(length)
                if not self._answer(conn, method, target.split("?", 1)[0]):
                    return

    def _answer(self, conn: socket.socket, method: str, path: str) -> bool:
        """Send the reply; False when the connection is done (a hijacked stream)."""
        path = re.sub(r"^/v[0-9.]+", "", path)
        status, body = "200 OK", b"{}"
        if path == "/_ping":
            body = b"OK"
        elif path == "/containers/json":
            body = self.listing
        elif re.fullmatch(r"/containers/[^/]+/json", path):
            body = _INSPECT
        elif re.fullmatch(r"/containers/[^/]+/exec", path) and method == "POST":
            status, body = "201 Created", json.dumps({"Id": _EXEC_ID}).encode()
        elif re.fullmatch(r"/exec/[^/]+/start", path):
            conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                         b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            conn.shutdown(socket.SHUT_WR)
            return False
        elif re.fullmatch(r"/exec/[^/]+/json", path):
            body = _EXEC_INSPECT
        else:
            status, body = "404 Not Found", json.dumps({"message": f"floor server: no {method} {path}"}).encode()
        head = (f"HTTP/1.1 {status}\r\nApi-Version: {self.api_version}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        conn.sendall(head if method == "HEAD" else head + body)
        return True

"""A throwaway Distribution registry (Debian's docker-registry) on
127.0.0.1 with a random port and a temp storage dir, optionally with
htpasswd basic auth; and a tiny bearer-token server in front of the same
credentials' idea, for the token flow."""
from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    def __init__(self, users: dict[str, str] | None = None, token_realm: str | None = None):
        self.dir = tempfile.mkdtemp(prefix="dyreg-")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.users = users or {}
        auth = ""
        if self.users:
            htpasswd = os.path.join(self.dir, "htpasswd")
            for i, (u, p) in enumerate(self.users.items()):
                subprocess.run(["htpasswd", "-B", "-b"] + ([] if i else ["-c"]) + [htpasswd, u, p],
                               check=True, capture_output=True)
            auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.dir}/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{self.port}
  secret: dockyard-test
{auth}""")
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return          # 401: up, with auth
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not start: " + open(os.path.join(self.dir, "log")).read()[-2000:])

    def blob_bytes(self) -> int:
        total = 0
        for root, _, files in os.walk(os.path.join(self.dir, "data")):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class TokenServer:
    """Issues opaque bearer tokens for user/password; a proxy in front of an
    open registry demands them (WWW-Authenticate: Bearer realm=...)."""

    def __init__(self, upstream: str, users: dict[str, str]):
        self.upstream = upstream
        self.users = users
        self.tokens: set[str] = set()
        self.scopes: list[str] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, code, body=b"", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        n = int(self.rfile.readline().strip(), 16)
                        if n == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(n)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _any(self):
                if self.path.startswith("/token"):
                    authz = self.headers.get("Authorization", "")
                    if authz.startswith("Basic "):
                        u, _, p = base64.b64decode(authz[6:]).decode().partition(":")
                        if outer.users.get(u) != p:
                            return self._reply(401, json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                               "message": "invalid username or password"}]}).encode())
                    q = self.path.partition("?")[2]
                    outer.scopes.append(q)
                    tok = base64.b16encode(os.urandom(8)).decode()
                    outer.tokens.add(tok)
                    return self._reply(200, json.dumps({"token": tok}).encode(),
                                       [("Content-Type", "application/json")])
                authz = self.headers.get("Authorization", "")
                if not authz.startswith("Bearer ") or authz[7:] not in outer.tokens:
                    realm = f"http://{outer.host}/token"
                    return self._reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                                       [("WWW-Authenticate", f'Bearer realm="{realm}",service="test"')])
                body = self._body()
                req = urllib.request.Request(f"http://{outer.upstream}{self.path}", data=body or None,
                                             method=self.command,
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() not in ("authorization", "host", "transfer-encoding",
                                                                           "content-length")})
                if body or self.command in ("PUT", "PATCH", "POST"):
                    req.add_header("Content-Length", str(len(body)))
                try:
                    with urllib.request.urlopen(req) as r:
                        data, code, hdrs = r.read(), r.status, r.headers
                except urllib.error.HTTPError as e:
                    data, code, hdrs = e.read(), e.code, e.headers
                out = []
                for k, v in hdrs.items():
                    if k.lower() in ("content-length", "connection", "transfer-encoding", "date"):
                        continue
                    out.append((k, v.replace(outer.upstream, outer.host)))
                self._reply(code, data, out)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        urllib.request.install_opener(urllib.request.build_opener(NoRedirect))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

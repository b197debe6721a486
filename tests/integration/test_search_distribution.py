"""`docker search` against an index of the test's own on loopback (the
v1 search API, as Docker Hub's index serves it), and distribution inspect
against a real registry on loopback."""
from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from pathlib import Path

import pytest

from registry_util import REGISTRY_BIN, LocalRegistry

RESULTS = [
    {"name": "team/busybox", "description": "small", "star_count": 12, "is_official": False, "is_automated": True},
    {"name": "busybox", "description": "the official one", "star_count": 3000, "is_official": True,
     "is_automated": False},
    {"name": "me/busy-thing", "description": "", "star_count": 0, "is_official": False, "is_automated": False},
]


@pytest.fixture(scope="module")
def index():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query)
            seen.append((u.path, q))
            if u.path != "/v1/search":
                self.send_response(404)
                self.end_headers()
                return
            term = q.get("q", [""])[0]
            hits = [r for r in RESULTS if term in r["name"]][: int(q.get("n", ["25"])[0])]
            body = json.dumps({"num_results": len(hits), "query": term, "results": hits}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


def test_docker_search_asks_the_terms_index(daemon, index):
    host, seen = index
    r = daemon.docker("search", "--no-trunc", "--format", "{{.Name}} {{.StarCount}}", f"{host}/busy")
    assert r.stdout.splitlines() == ["team/busybox 12", "busybox 3000", "me/busy-thing 0"]
    assert seen[-1][0] == "/v1/search" and seen[-1][1]["q"] == ["busy"]
    r = daemon.docker("search", "--filter", "is-official=true", "--format", "{{.Name}}", f"{host}/busy")
    assert r.stdout.split() == ["busybox"]
    r = daemon.docker("search", "--filter", "stars=10", "--limit", "1", "--format", "{{.Name}}", f"{host}/busy")
    assert r.stdout.split() == ["team/busybox"]


@pytest.mark.parametrize("query,words", [
    ("term=x&limit=0", "limit 0 is outside the range of [1, 100]"),
    ("term=x&limit=101", "limit 101 is outside the range of [1, 100]"),
    ('term=x&filters={"stars":["many"]}', "invalid filter 'stars=many'"),
    ('term=x&filters={"is-official":["maybe"]}', "invalid filter 'is-official=maybe'"),
    ('term=x&filters={"colour":["red"]}', "invalid filter 'colour'"),
])
def test_search_checks_its_input_first(daemon, query, words):
    status, body = daemon.api("GET", "/images/search?" + query.replace('"', "%22").replace("{", "%7B")
                              .replace("}", "%7D").replace("[", "%5B").replace("]", "%5D"))
    assert status == 400, body
    assert words in json.loads(body)["message"]


@pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason="docker-registry is not installed")
def test_distribution_inspect_of_a_pushed_image(daemon, bb_image):
    reg = LocalRegistry()
    try:
        ref = f"{reg.host}/dist/bb:1"
        daemon.docker("tag", bb_image, ref)
        out = daemon.docker("push", ref, timeout=120).stdout
        digest = out.split("digest: ")[1].split()[0]
        status, body = daemon.api("GET", f"/distribution/{ref}/json")
        assert status == 200, body
        doc = json.loads(body)
        assert doc["Descriptor"]["digest"] == digest
        assert doc["Descriptor"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert doc["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
        status, body = daemon.api("GET", f"/distribution/{reg.host}/dist/nothing:1/json")
        assert status == 404, body
        daemon.docker("rmi", ref)
    finally:
        reg.stop()

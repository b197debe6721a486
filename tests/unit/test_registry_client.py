"""Registry client pieces: auth header and challenge parsing, insecure
hosts, and pull against an in-process fake registry (a corrupted blob is
refused and leaves nothing; a dropped connection resumes with Range; one
that cannot resume leaves nothing and the next pull starts clean)."""
from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import json
import os
import threading

import pytest

from dockyard.errors import InvalidParameter, NotFound
from dockyard.images.progress import Progress, bar, human
from dockyard.images.pull import Puller, parse_platform
from dockyard.images.reference import parse_normalized
from dockyard.images.registry import AuthConfig, RegistryError, is_insecure, is_loopback, parse_challenges
from dockyard.images.service import ImageService
from dockyard.store.db import Database
from test_images_tars import entry, make_tar


# ---------------------------------------------------------------- parsing

def test_challenges():
    assert parse_challenges('Bearer realm="https://auth.io/token",service="registry.io",'
                            'scope="repository:a/b:pull,push"') == [
        ("bearer", {"realm": "https://auth.io/token", "service": "registry.io",
                    "scope": "repository:a/b:pull,push"})]
    assert parse_challenges('Basic realm="basic-realm"') == [("basic", {"realm": "basic-realm"})]
    assert parse_challenges('Basic realm=x, Bearer realm="y"') == [("basic", {"realm": "x"}),
                                                                   ("bearer", {"realm": "y"})]
    assert parse_challenges(r'Bearer realm="a\"b"') == [("bearer", {"realm": 'a"b'})]
    assert parse_challenges("") == []


def test_x_registry_auth_header():
    doc = {"username": "u", "password": "p?>", "serveraddress": "127.0.0.1:5000"}
    raw = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    a = AuthConfig.from_header(raw.rstrip("="))          # padding is optional
    assert (a.username, a.password, a.serveraddress) == ("u", "p?>", "127.0.0.1:5000")
    b = AuthConfig.from_dict({"auth": base64.b64encode(b"x:y:z").decode()})
    assert (b.username, b.password) == ("x", "y:z")
    assert not AuthConfig.from_header("%%%not-base64").has_basic
    assert not AuthConfig.from_header(base64.b64encode(b"[1]").decode()).has_basic


def test_insecure_hosts():
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("10.0.0.1:5000") and not is_loopback("registry.io")
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert is_insecure("myreg:5000", ["myreg:5000"]) and is_insecure("myreg:5000", ["myreg"])
    assert not is_insecure("other:5000", ["myreg:5000"])


def test_platform_and_progress_text():
    assert parse_platform("linux/arm64/v8") == ("linux", "arm64", "v8")
    with pytest.raises(InvalidParameter):
        parse_platform("linux//")
    assert human(1234567) == "1.235MB" and human(999) == "999B"
    assert bar(0, 100).startswith("[ ") and bar(100, 100).startswith("[" + "=" * 49 + ">]")


# ---------------------------------------------------------------- fake registry

def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class FakeRegistry:
    def __init__(self, layer_tar: bytes, corrupt: bool = False, cut_after: int | None = None,
                 cut_ranges: bool = False):
        self.blob = gzip.compress(layer_tar, mtime=0)
        self.served = self.blob if not corrupt else self.blob[:-8] + b"\x00" * 8
        self.cut_after = cut_after
        self.cut_ranges = cut_ranges      # every resume is cut too: the pull gives up
        self.ranges: list[str] = []
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [_sha(layer_tar)]}}).encode()
        self.config = cfg
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(cfg), "digest": _sha(cfg)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(self.blob), "digest": _sha(self.blob)}]}).encode()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                p = self.path
                if p == "/v2/":
                    return self._send(200, b"{}")
                if p == "/v2/app/manifests/1":
                    return self._send(200, outer.manifest, "application/vnd.docker.distribution.manifest.v2+json")
                if p.endswith(_sha(outer.config)):
                    return self._send(200, outer.config)
                if p.endswith(_sha(outer.blob)):
                    rng = self.headers.get("Range")
                    if rng:
                        outer.ranges.append(rng)
                        start = int(rng.split("=")[1].rstrip("-"))
                        body = outer.served[start:]
                        self.send_response(206)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        if outer.cut_ranges:
                            self.close_connection = True
                            return
                        self.wfile.write(body)
                        return
                    if outer.cut_after is not None:
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(outer.served)))
                        self.end_headers()
                        self.wfile.write(outer.served[:outer.cut_after])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    return self._send(200, outer.served)
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')

            def _send(self, code, body, ctype="application/json"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


LAYER = make_tar([entry("hello", data=b"world" * 50000)])


@pytest.fixture
def svc(tmp_path):
    return ImageService(Database(str(tmp_path / "db.sqlite")), str(tmp_path / "image"))


def _pull(svc, host: str, tag: str = "1") -> list[dict]:
    msgs: list[dict] = []
    p = Puller(svc, parse_normalized(f"{host}/app:{tag}"), AuthConfig())
    p.resolve()
    p.run(Progress(msgs.append))
    return msgs


def test_pull_verifies_and_records(svc):
    reg = FakeRegistry(LAYER)
    try:
        msgs = _pull(svc, reg.host)
    finally:
        reg.stop()
    img = svc.resolve(f"{reg.host}/app:1")
    assert img.diff_ids == [_sha(LAYER)]
    # the blob is kept as the registry had it; save reads the plain tar back out of it
    assert open(svc.layers.blob_path(img.diff_ids[0]), "rb").read() == reg.blob
    f, size = svc.layers.open_tar(img.diff_ids[0])
    with f:
        assert f.read() == LAYER and size == len(LAYER)
    statuses = [m.get("status") for m in msgs]
    short = _sha(reg.blob)[7:19]
    downloading = [m for m in msgs if m.get("status") == "Downloading"]
    assert downloading and all(m["id"] == short for m in downloading), msgs     # one line per layer
    assert downloading[0]["progressDetail"]["total"] == len(reg.blob)
    assert 0 < downloading[0]["progressDetail"]["current"] <= len(reg.blob)
    assert downloading[0]["progress"].startswith("[")
    assert {"status": "Pull complete", "progressDetail": {}, "id": short} in msgs
    assert "Pull complete" in statuses and statuses[-1].startswith("Status: Downloaded newer image")
    assert svc.inspect(f"{reg.host}/app:1")["RepoDigests"] == [f"{reg.host}/app@{_sha(reg.manifest)}"]


def test_corrupted_layer_is_refused_and_leaves_nothing(svc):
    reg = FakeRegistry(LAYER, corrupt=True)
    try:
        with pytest.raises(InvalidParameter):
            _pull(svc, reg.host)
    finally:
        reg.stop()
    with pytest.raises(NotFound):
        svc.resolve(f"{reg.host}/app:1")
    assert [n for n in os.listdir(svc.layers.dir)] == []
    assert os.listdir(svc.tmp_dir) == []


def test_interrupted_pull_leaves_nothing_then_restarts_cleanly(svc):
    reg = FakeRegistry(LAYER, cut_after=100, cut_ranges=True)
    try:
        with pytest.raises(RegistryError) as e:
            _pull(svc, reg.host)
        assert "downloading sha256:" in str(e.value), e.value
        assert len(reg.ranges) == 5                       # resumed, then gave up
        with pytest.raises(NotFound):
            svc.resolve(f"{reg.host}/app:1")
        assert os.listdir(svc.layers.dir) == [] and os.listdir(svc.tmp_dir) == []
        assert svc.list() == []
        reg.cut_after, reg.cut_ranges = None, False       # the registry is well again
        msgs = _pull(svc, reg.host)
    finally:
        reg.stop()
    assert msgs[-1]["status"] == f"Status: Downloaded newer image for {reg.host}/app:1"
    assert svc.resolve(f"{reg.host}/app:1").diff_ids == [_sha(LAYER)]
    f, _ = svc.layers.open_tar(_sha(LAYER))
    with f:
        assert f.read() == LAYER


def test_dropped_connection_resumes_with_range(svc):
    reg = FakeRegistry(LAYER, cut_after=100)
    try:
        _pull(svc, reg.host)
    finally:
        reg.stop()
    assert reg.ranges and reg.ranges[0].startswith("bytes=")
    assert svc.resolve(f"{reg.host}/app:1").diff_ids == [_sha(LAYER)]


def test_unknown_tag_is_the_registrys_message(svc):
    reg = FakeRegistry(LAYER)
    try:
        with pytest.raises(NotFound) as e:
            _pull(svc, reg.host, tag="nope")
    finally:
        reg.stop()
    assert str(e.value) == f"manifest for {reg.host}/app:nope not found: manifest unknown: manifest unknown"


def test_index_resolves_to_the_requested_platform(svc):
    reg = FakeRegistry(LAYER)
    other = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "0" * 64, "size": 1},
                        "layers": []}).encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                             "digest": _sha(other), "size": len(other),
                             "platform": {"os": "linux", "architecture": "s390x"}},
                            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                             "digest": _sha(reg.manifest), "size": len(reg.manifest),
                             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                        ]}).encode()
    handler = reg.server.RequestHandlerClass
    orig = handler.do_GET

    def do_GET(self):
        if self.path == "/v2/app/manifests/multi":
            return self._send(200, index, "application/vnd.oci.image.index.v1+json")
        if self.path == f"/v2/app/manifests/{_sha(reg.manifest)}":
            return self._send(200, reg.manifest, "application/vnd.docker.distribution.manifest.v2+json")
        return orig(self)
    handler.do_GET = do_GET
    try:
        p = Puller(svc, parse_normalized(f"{reg.host}/app:multi"), AuthConfig(), platform="linux/arm64")
        p.resolve()
        p.run(Progress(lambda m: None))
        assert p.manifest_digest == _sha(index)           # RepoDigests name the index, as in Docker
        with pytest.raises(NotFound) as e:
            Puller(svc, parse_normalized(f"{reg.host}/app:multi"), AuthConfig(), platform="linux/riscv64").resolve()
        assert "no matching manifest for linux/riscv64" in str(e.value)
    finally:
        reg.stop()
    assert svc.resolve(f"{reg.host}/app:multi").diff_ids == [_sha(LAYER)]


def test_where_a_reference_is_pulled_from():
    from dockyard.images.registry import registry_host
    r = parse_normalized("127.0.0.1:5000/team/app:1")
    assert (registry_host(r.domain), r.path, r.tag) == ("127.0.0.1:5000", "team/app", "1")
    r = parse_normalized("busybox")
    assert (registry_host(r.domain), r.path) == ("registry-1.docker.io", "library/busybox")
    r = parse_normalized("localhost:5000/x@sha256:" + "b" * 64)
    assert registry_host(r.domain) == "localhost:5000" and r.digest == "sha256:" + "b" * 64


def test_platform_os_refused_before_the_registry_and_lone_parts():
    """A platform whose OS is not linux is refused before any registry is
    asked (dockerd 20.10's `unsupported os X`, as a 400: the client's input);
    a lone part is an OS or an architecture, as containerd's platforms.Parse
    reads it."""
    assert parse_platform("arm64") == ("linux", "arm64", "")
    assert parse_platform("aarch64") == ("linux", "arm64", "")
    assert parse_platform("linux")[0] == "linux"
    assert parse_platform("darwin")[0] == "darwin"
    with pytest.raises(InvalidParameter, match='"bogus": unknown operating system or architecture'):
        parse_platform("bogus")
    for platform, os_ in (("windows/amd64", "windows"), ("Windows/arm64", "windows"), ("darwin", "darwin")):
        with pytest.raises(InvalidParameter, match=f"^unsupported os {os_}$"):
            Puller(None, parse_normalized("127.0.0.1:9/app:1"), AuthConfig(), platform=platform)

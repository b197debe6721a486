"""Schemathesis over Docker's Engine API spec (v1.50): no request makes
dockyardd answer 5xx or die.

Every operation of ../shared/reference/docker-engine-api-v1.50.yaml except
swarm, plugins and session (and those in SKIPPED, each with its
reason) gets a fixed, bounded number of generated requests, schema-valid
and schema-violating ones, from a fixed seed (`derandomize`), sent over the
test daemon's unix socket. Path ids are sometimes those of a real busybox
container (so container verbs reach the services, not only the 404), and a
few inputs are constrained where they would reach beyond the test daemon
(see `_constrain`). A 5xx fails the operation's test with the request and
the daemon's traceback; the last test checks the daemon is still alive.
What the fuzzer made (containers, networks, volumes, images, execs) goes
with the module's daemon (fixture cleanup and leak check).

Needs schemathesis (the `test` extras); skipped without it or the spec.
"""
from __future__ import annotations

import io
import ipaddress
import json
import os
import tarfile
import time
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# the project's shared/ lies beside the checkout (as in CI); DOCKYARD_API_SPEC names another copy
SPEC_CANDIDATES = (Path(os.environ.get("DOCKYARD_API_SPEC", "/nonexistent")),
                   Path(__file__).resolve().parents[3] / "shared" / "reference" / "docker-engine-api-v1.50.yaml")
SPEC = next((p for p in SPEC_CANDIDATES if p.exists()), None)
if SPEC is None:
    pytest.skip("the Engine API spec (../shared/reference/docker-engine-api-v1.50.yaml) is not here",
                allow_module_level=True)

EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "15"))   # per operation; more with the env var
EXCLUDED_PREFIXES = ("/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs", "/plugins",
                     "/session")
# Every other operation is fuzzed. Those that reach registries (pull, push, login,
# search, distribution inspect) are pointed at a registry and an index of this
# module's own on loopback (see `_constrain`): no traffic leaves the machine.
# POST /build only gets hostile tars (test_no_5xx_for_hostile_tars): a generated
# Dockerfile's FROM would name registries beyond that; its 400s are unit-tested.
SKIPPED: dict[str, str] = {"POST /build": "a FROM pulls from any registry (tests/unit/test_build_api.py)"}
CONTAINER = "fuzzbox"       # a real container that path ids sometimes name
TIMEOUT = 30.0

schemathesis.serializer.alias("application/x-tar", "application/octet-stream")
schema = (schemathesis.openapi.from_path(str(SPEC))
          .exclude(path_regex="^(" + "|".join(EXCLUDED_PREFIXES) + ")")
          .exclude(func=lambda ctx: _label(ctx.operation) in SKIPPED))


def _label(op) -> str:
    return f"{op.method.upper()} {op.path}"


@pytest.fixture(scope="module")
def session(daemon):
    import requests
    from docker.transport import UnixHTTPAdapter
    s = requests.Session()
    s.mount("http://localhost", UnixHTTPAdapter("http+unix://" + daemon.sock, timeout=TIMEOUT))
    yield s
    s.close()


@pytest.fixture(scope="module")
def remotes():
    """A registry (Debian's docker-registry) and a v1 search index, both on
    loopback: where the registry-reaching operations are sent."""
    import http.server
    import threading

    from registry_util import REGISTRY_BIN, LocalRegistry
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry is not installed")
    reg = LocalRegistry()

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"num_results": 0, "query": "", "results": []}'
            self.send_response(200 if self.path.startswith("/v1/search") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    idx = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=idx.serve_forever, daemon=True).start()
    yield reg.host, f"127.0.0.1:{idx.server_address[1]}"
    idx.shutdown()
    idx.server_close()
    reg.stop()


@pytest.fixture(scope="module")
def _box_module(daemon, busybox_tar):
    yield CONTAINER
    daemon.docker("rm", "-f", CONTAINER, check=False)


@pytest.fixture
def fuzzbox(daemon, busybox_tar, _box_module):
    """The real container, running and unpaused at the start of each operation's test
    (the fuzzer may have removed, stopped or paused it)."""
    if daemon.api("GET", "/images/bb/json")[0] != 200:
        daemon.docker("import", str(busybox_tar), "bb")
    status, body = daemon.api("GET", f"/containers/{CONTAINER}/json")
    if status == 404:
        daemon.docker("run", "-d", "--name", CONTAINER, "bb", "sleep", "3600")
    elif status == 200 and json.loads(body)["State"]["Status"] == "paused":
        daemon.docker("unpause", CONTAINER)
    elif status == 200 and json.loads(body)["State"]["Status"] != "running":
        daemon.docker("start", CONTAINER)
    return CONTAINER


def _loopback_name(value, host: str) -> str:
    """A generated image name, moved under the loopback registry (as text:
    still as malformed as the fuzzer made it)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{host}/{text.lstrip('/')}"


def _constrain(case, now: int, remotes: tuple[str, str]) -> None:
    """Keep a generated request inside the test daemon, and keep it short."""
    label = f"{case.method.upper()} {case.path}"
    if not isinstance(case.query, dict):
        case.query = {}
    q = case.query
    reg, index = remotes
    if label == "POST /images/create":
        if "fromImage" in q:
            q["fromImage"] = _loopback_name(q["fromImage"], reg)
        if "fromSrc" in q:
            q["fromSrc"] = "-"                         # an import reads the body, never a URL
    if label in ("POST /images/{name}/push", "GET /distribution/{name}/json"):
        params = case.path_parameters or {}
        if "name" in params:
            case.path_parameters = {**params, "name": _loopback_name(params["name"], reg)}
    if label == "GET /images/search" and "term" in q:
        q["term"] = _loopback_name(q["term"], index)
    if label == "POST /auth" and isinstance(case.body, dict):
        case.body["serveraddress"] = reg
    if label == "POST /containers/{id}/attach":
        q["stream"] = "0"                              # the box runs for an hour: no endless stream
    if label == "GET /containers/{id}/attach/ws":
        q["stream"] = "0"
    if case.path == "/events":
        q["until"] = str(now)                          # no endless stream
    if case.path.endswith("/logs"):
        q["follow"] = "0"                              # logs -f: answer once and end
    if case.path.endswith("/stats"):
        q["stream"] = "0"                              # stats streams by default
    if label in ("POST /containers/{id}/stop", "POST /containers/{id}/restart") and "t" in q:
        q["t"] = "1"                                   # the box's sleep ignores SIGTERM: no long grace
    body = case.body if isinstance(case.body, dict) else None
    if label == "POST /networks/create" and body is not None:
        # random subnets must not clash with the host's routes: valid ones are dropped,
        # invalid strings stay (they test the 400s); no bridge names of the fuzzer's choice
        ipam = body.get("IPAM")
        configs = ipam.get("Config") if isinstance(ipam, dict) else None
        for cfg in configs if isinstance(configs, list) else []:
            if isinstance(cfg, dict):
                for k in ("Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"):
                    if _parses_as_ip(cfg.get(k)) or k == "AuxiliaryAddresses":
                        cfg.pop(k, None)
        opts = body.get("Options")
        if isinstance(opts, dict):
            for k in list(opts):
                if str(k).startswith("com.docker.network"):
                    del opts[k]
    if label == "POST /containers/create" and body is not None:
        hc = body.get("HostConfig")
        if isinstance(hc, dict):                       # nothing of the host's in a container
            for k in ("Binds", "Mounts", "Devices", "DeviceRequests", "VolumesFrom", "Privileged"):
                hc.pop(k, None)
    if label == "POST /containers/{id}/update" and body is not None:
        for k in ("Memory", "MemorySwap", "MemoryReservation", "KernelMemory", "PidsLimit"):
            body.pop(k, None)                          # keep the shared box alive for the other verbs


_NAMES = st.sampled_from(["f", "d", "d/f", "/abs", "./x", "../up", "d/../f", "", "/etc/passwd", "missing"])


@st.composite
def tars(draw) -> bytes:
    """Small tar archives with any entry type, links to anywhere (absolute,
    missing, climbing out): what `docker cp` and `load` must refuse with a 400."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for _ in range(draw(st.integers(0, 4))):
            ti = tarfile.TarInfo(draw(_NAMES))
            ti.type = draw(st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                                            tarfile.FIFOTYPE]))
            ti.linkname = draw(_NAMES) if ti.type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            ti.mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0]))
            data = draw(st.binary(max_size=64)) if ti.type == tarfile.REGTYPE else b""
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    return raw[:draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw   # sometimes cut short


def _parses_as_ip(v) -> bool:
    if not isinstance(v, str):
        return False
    try:
        ipaddress.ip_network(v, strict=False)
        return True
    except ValueError:
        return False


def _send(session, case) -> "requests.Response":  # noqa: F821
    kw = case.as_transport_kwargs(base_url="http://localhost/v1.50")
    kw["timeout"] = TIMEOUT
    kw.pop("verify", None)
    # the status is in the head: a streamed body (events, logs, stats, wait) is never read to its end
    r = session.request(**kw, stream=True)
    if r.status_code < 500:
        r.close()
    return r


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_5xx(case, daemon, session, fuzzbox, remotes):
    """Schemathesis' phases: the spec's examples, coverage (boundary and
    wrong-type values for every parameter and body field), then fuzzing.
    A container id of even length becomes the real container's (a fixed
    rule, so runs stay reproducible): the verbs reach the services too."""
    cid = (case.path_parameters or {}).get("id")
    if case.path.startswith("/containers/") and not case.path.endswith("/wait") and isinstance(cid, str) \
            and len(cid) % 2 == 0:      # (waiting for the running box would never end)
        case.path_parameters = {**case.path_parameters, "id": fuzzbox}
    _constrain(case, int(time.time()), remotes)
    r = _send(session, case)
    assert r.status_code < 500, f"{r.status_code} {r.text.strip()[:300]}\n{case.as_curl_command()[:600]}"


@pytest.mark.parametrize("method,path", [("PUT", f"/containers/{CONTAINER}/archive?path=/tmp"),
                                         ("PUT", f"/containers/{CONTAINER}/archive?path=/tmp&copyUIDGID=1"),
                                         ("PUT", f"/containers/{CONTAINER}/archive?path=/tmp&noOverwriteDirNonDir=1"),
                                         ("POST", "/images/load?quiet=1"),
                                         ("POST", "/build?t=hostile&q=1")])
def test_no_5xx_for_hostile_tars(method, path, daemon, session, fuzzbox):
    """Archives with every entry type and links to anywhere (absolute,
    missing, climbing out), sometimes cut short: a 400 at worst."""
    @settings(max_examples=EXAMPLES * 2, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(tar=tars())
    def run(tar):
        r = session.request(method, "http://localhost/v1.50" + path, data=tar, timeout=TIMEOUT,
                            headers={"Content-Type": "application/x-tar"})
        assert r.status_code < 500, f"{r.status_code} {r.text.strip()[:300]}\n{tar!r}"
    run()


def test_the_daemon_is_alive_and_answers_after_the_fuzz(daemon, session):
    assert daemon.running, daemon.log_tail()
    assert daemon.ping(timeout=5)
    assert daemon.api("GET", "/containers/json?all=1")[0] == 200

"""Integration fixtures: a real dockyardd on temporary roots, driven through
the real docker CLI, docker-py and our own CLI, and a host leak check after
it stops.

    def test_echo(daemon, bb_image):
        r = daemon.docker("run", "--rm", bb_image, "echo", "hi")
        assert r.stdout == "hi\\n"

`daemon` is one dockyardd per test module (`--daemon-scope session` for one
per run). Each gets a fresh temp base /tmp/dytXXXXXX (short: unix socket
paths are limited to 108 bytes) holding data/, exec/, the socket d.sock and
a docker CLI config dir, and its own bridge (named like the temp base,
dyt + 6 hex) and --bip 10.2xx.y.1/24, so runs never collide with each other,
docker0 or a real dockerd.

Teardown: SIGTERM (then SIGKILL); processes still naming the roots (conmon,
crun, container processes) are killed, runtime state and mounts under the
roots removed; `dockyard.network.cleanup.purge` removes the network; then
tests/leaks.py compares the host with the snapshot taken before the start
and fails the module with the list of anything left.

Every test under tests/integration gets the `integration` marker; they are
skipped, with that reason, only when not run as root.

The `Daemon` class has no pytest dependency beyond this module's import, so
bench/run_bench.py loads it too.
"""
from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Any

import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import leaks  # noqa: E402  (tests/leaks.py)
# the host's used nets and a CLI failure's message, as the private dockerd's harness has them
from refdockerd import CommandFailed, free_net, used_ipv4_nets  # noqa: E402,F401

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
# Never hand these to the CLIs: they would point them somewhere else.
_FOREIGN_ENV = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION")


# ------------------------------------------------------------------ helpers

def venv_script(name: str) -> list[str] | None:
    """A console script of this Python's environment (the venv's dockyardd),
    else one on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    found = shutil.which(name)
    return [found] if found else None


def unique_name() -> str:
    """dyt + 6 hex chars: a bridge name (<= 15 chars) and temp dir name."""
    return "dyt" + secrets.token_hex(3)


def free_bip() -> str:
    """A 10.(200-255).x.1/24 that overlaps nothing on the host."""
    return f"{free_net(range(200, 256), 24).network_address + 1}/24"


def free_subnet() -> str:
    """A 10.(100-189).x.0/24 that overlaps nothing on the host, for a test's user network."""
    return str(free_net(range(100, 190), 24))


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def unix_http(sock: str, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """One HTTP request over a unix socket: (status, body). A dict or list
    body is sent as JSON."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# ------------------------------------------------------------------ daemon

class Daemon:
    """One dockyardd on its own temp roots, bridge and socket."""

    def __init__(self, *, runtime: str = "crun", log_path: Path | None = None,
                 tmp_dir: str = "/tmp", extra_args: tuple[str, ...] = ()):
        while True:
            self.bridge = unique_name()
            self.base = Path(tmp_dir) / self.bridge
            try:
                self.base.mkdir(mode=0o711)
                break
            except FileExistsError:
                continue
        self.data_root = self.base / "data"
        self.exec_root = self.base / "exec"
        self.sock = str(self.base / "d.sock")
        self.host = "unix://" + self.sock
        self.cri_sock = str(self.base / "cri.sock")     # the CRI's, under this daemon's root
        self.cni_conf_dir = self.base / "net.d"         # its CNI config (empty: pods get loopback only)
        self.pidfile = self.base / "d.pid"
        self.bip = free_bip()
        self.runtime = runtime
        self.extra_args = tuple(extra_args)
        self.log_path = Path(log_path) if log_path else self.base / "dockyardd.log"
        self.docker_config = self.base / "docker-config"
        self.docker_config.mkdir()
        self.scope = leaks.Scope(roots=(str(self.base),), bridge=self.bridge)
        self.proc: subprocess.Popen | None = None
        self._clients: list[Any] = []
        self._starts = 0

        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env.update(DOCKER_HOST=self.host, DOCKYARD_HOST=self.host,
                   DOCKER_CONFIG=str(self.docker_config), DOCKER_CLI_HINTS="false")
        self.env = env

    def __repr__(self) -> str:
        return f"<Daemon {self.host} bridge={self.bridge} pid={self.proc.pid if self.proc else None}>"

    # -- lifecycle

    def argv(self) -> list[str]:
        exe = venv_script("dockyardd") or [sys.executable, "-m", "dockyard.dockyardd"]
        return [*exe, "-H", self.host,
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "--default-runtime", self.runtime,
                "--bridge", self.bridge, "--bip", self.bip, "--log-level", "debug",
                # containers' cgroups under a parent of this daemon's own, so the
                # leak check never mistakes another test run's for ours
                "--cgroup-parent", f"dockyard-{self.bridge}",
                "--cri-socket", "unix://" + self.cri_sock, "--cni-conf-dir", str(self.cni_conf_dir),
                *self.extra_args]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ping(self, timeout: float = 2.0) -> bool:
        try:
            return self.api("GET", "/_ping", timeout=timeout)[0] == 200
        except OSError:
            return False

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start dockyardd (no-op when it runs) and wait for /_ping."""
        if self.running:
            return
        self._starts += 1
        argv = self.argv()
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {self._starts}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping(timeout=1.0):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyardd exited {self.proc.returncode} before /_ping answered\n"
                                   f"{' '.join(argv)}\n--- {self.log_path} ---\n{self.log_tail()}")
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"dockyardd did not answer /_ping within {timeout:.0f} s\n"
                           f"--- {self.log_path} ---\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after timeout seconds."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def kill9(self) -> None:
        """SIGKILL the daemon (a crash): its conmons and containers stay."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 60, width: int = 400) -> str:
        """The last lines of the daemon's log, each cut to width chars."""
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return "\n".join(l if len(l) <= width else l[:width] + " [...]" for l in tail)

    # -- talking to it

    def api(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 30.0) -> tuple[int, bytes]:
        """A raw Engine API request: (status, body bytes)."""
        return unix_http(self.sock, method, path, body, headers, timeout)

    def _run(self, cmd: list[str], check: bool, timeout: float, **kw: Any) -> subprocess.CompletedProcess:
        kw.setdefault("text", True)
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        r = subprocess.run(cmd, env=kw.pop("env", self.env), capture_output=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise CommandFailed(r.returncode, cmd, r.stdout, r.stderr)
        return r

    def docker(self, *args: str, check: bool = True, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
        """The real docker CLI against this daemon: docker -H unix://SOCK ARGS."""
        exe = shutil.which("docker")
        if exe is None:
            raise RuntimeError("docker CLI not on PATH: scripts/install.sh --deps-only installs it")
        return self._run([exe, "-H", self.host, *map(str, args)], check, timeout, **kw)

    def dockyard(self, *args: str, check: bool = True, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
        """Our CLI against this daemon (DOCKYARD_HOST in env)."""
        exe = venv_script("dockyard") or [sys.executable, "-m", "dockyard.cli.main"]
        return self._run([*exe, *map(str, args)], check, timeout, **kw)

    def client(self, **kw: Any):
        """A docker-py DockerClient on this daemon (closed at teardown)."""
        import docker
        kw.setdefault("version", "auto")
        kw.setdefault("timeout", 60)
        c = docker.DockerClient(base_url=self.host, **kw)
        self._clients.append(c)
        return c

    # -- teardown

    def cleanup(self) -> list[str]:
        """Stop the daemon and remove what it may have left: processes naming
        the roots, runtime state, mounts under the roots, the network. Returns
        problems (empty when all went well)."""
        problems: list[str] = []
        self.stop()
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients.clear()
        # Containers that outlived the daemon: their runtime state names their
        # cgroups, which stay once their processes are killed.
        runtime_state = sorted(leaks.find_runtime_state(self.scope.needles))
        cgroups = leaks.container_cgroups(leaks.find_state_files([str(self.exec_root)]) + [
            os.path.join(root, cid, f) for _rt, root, cid in runtime_state for f in ("status", "state.json")])
        problems += leaks.reap({
            "processes": sorted(leaks.find_processes(self.scope.needles)),
            "runtime_state": runtime_state,
        }, self.scope)
        problems += leaks.remove_cgroups(cgroups)
        try:
            from dockyard.network.cleanup import purge
        except ImportError:
            pass   # not written yet: the leak check reports what stays
        else:
            try:
                purge(bridge=self.bridge, exec_root=str(self.exec_root))
            except Exception as e:
                problems.append(f"purge(bridge={self.bridge!r}) failed: {e!r}")
        problems += leaks.unmount_under(self.scope.roots)
        return problems

    def remove(self) -> list[str]:
        """Delete the temp base (never across a mount that is still there)."""
        if leaks.mounts_under(self.scope.roots):
            return [f"not removing {self.base}: mounts are left under it"]
        return leaks.remove_tree(str(self.base))


def shut_down(d: Daemon, before: leaks.Snapshot | None, strict_shutdown: bool) -> tuple[list[str], list[str]]:
    """The fixture's teardown: (errors that fail the module, warnings)."""
    errors: list[str] = []
    notes: list[str] = []
    d.stop()
    if before is not None:
        left = leaks.check(before, d.scope, kinds=("processes", "mounts"))
        if left:
            msg = "after SIGTERM, " + leaks.format_leaks(left, d.scope) + "\n(the fixture removed them)"
            (errors if strict_shutdown else notes).append(msg)
    errors += d.cleanup()
    if before is not None:
        found = leaks.check(before, d.scope)
        if found:
            errors.append(leaks.format_leaks(found, d.scope))
            errors += [f"could not remove: {p}" for p in leaks.reap(found, d.scope)]
    errors += d.remove()
    return errors, notes


# ---------------------------------------------------------------- fixtures

def _daemon_scope(fixture_name: str, config: pytest.Config) -> str:
    return config.getoption("daemon_scope")


def running_daemon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, *,
                   runtime: str | None = None, extra_args: tuple[str, ...] = (), label: str = "dockyardd",
                   make: Any = None):
    """Body of a daemon fixture (`yield from` it): a started dockyardd, shut
    down afterwards with the leak check; teardown errors fail the module.
    `make` builds the Daemon (a subclass) from Daemon's keyword arguments."""
    cfg = request.config
    d = (make or Daemon)(runtime=runtime or cfg.getoption("dockyard_runtime"), extra_args=extra_args,
                         log_path=tmp_path_factory.mktemp(label) / "dockyardd.log")
    before = None if cfg.getoption("no_leak_check") else leaks.snapshot(d.scope)
    ok = False
    try:
        d.start()
        yield d
        ok = True
    finally:
        errors, notes = shut_down(d, before, cfg.getoption("strict_shutdown"))
        where = f"{request.node.nodeid or 'session'} ({label}, log: {d.log_path})"
        for n in notes:
            warnings.warn(f"{where}: {n}", stacklevel=1)
        if errors:
            text = f"teardown of dockyardd for {where}:\n" + "\n".join(errors)
            if ok:
                pytest.fail(text, pytrace=False)
            warnings.warn(text, stacklevel=1)   # do not hide the error that got us here


@pytest.fixture(scope=_daemon_scope)
def daemon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A running dockyardd (see the module doc and `Daemon`)."""
    yield from running_daemon(request, tmp_path_factory)


@pytest.fixture
def bb_image(daemon: Daemon, busybox_tar: Path) -> str:
    """The busybox rootfs imported as `bb` (again if a test removed it)."""
    if daemon.api("GET", "/images/bb/json")[0] != 200:
        daemon.docker("import", str(busybox_tar), "bb")
    return "bb"


@pytest.fixture(scope="module")
def ref_dockerd(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory):
    """A private reference dockerd (tests/refdockerd.py: its own roots, socket,
    bridge and containerd; stopped and checked for leftovers afterwards) with
    the busybox rootfs imported as `bb`. Skips, with the reason, where
    dockerd is not installed or does not start, unless
    DOCKYARD_REQUIRE_DOCKERD=1 (CI where docker.io is installed) makes that
    a failure."""
    import refdockerd   # tests/refdockerd.py
    required = os.environ.get("DOCKYARD_REQUIRE_DOCKERD") == "1"
    reason = refdockerd.unavailable_reason()
    try:
        if reason:
            raise refdockerd.Unavailable(reason)
        d = refdockerd.start_private_dockerd(image_tar=busybox_tar, log_dir=tmp_path_factory.mktemp("refdockerd"))
    except refdockerd.Unavailable as e:
        (pytest.fail if required else pytest.skip)(f"no private dockerd: {e}")
    try:
        yield d
    finally:
        problems = d.stop()
        if problems:
            pytest.fail("the private dockerd left these behind (removed where possible):\n"
                        + "\n".join(problems), pytrace=False)


# ------------------------------------------------------------------- hooks

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    need_root = pytest.mark.skip(reason="integration tests need root (mounts, namespaces, cgroups, "
                                        "nftables): run pytest as root")
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                item.add_marker(need_root)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that used a daemon shows the end of its log."""
    outcome = yield
    rep = outcome.get_result()
    d = getattr(item, "funcargs", {}).get("daemon")
    if rep.failed and isinstance(d, Daemon):
        rep.sections.append((f"dockyardd log, last lines ({d.log_path})", d.log_tail()))
    rd = getattr(item, "funcargs", {}).get("ref_dockerd")
    if rep.failed and rd is not None:
        rep.sections.append((f"private dockerd log, last lines ({rd.log_path})", rd.log_tail()))


@pytest.fixture
def cri(daemon):
    """A CRI v1 client of the module's daemon: .rt (RuntimeService) and .img (ImageService)."""
    import grpc

    from dockyard.cri.proto import grpc_pb
    ch = grpc.insecure_channel("unix:" + daemon.cri_sock)
    grpc.channel_ready_future(ch).result(timeout=10)
    try:
        yield types.SimpleNamespace(rt=grpc_pb.RuntimeServiceStub(ch), img=grpc_pb.ImageServiceStub(ch))
    finally:
        ch.close()


@pytest.fixture
def pods(cri):
    """Pods a test makes, removed afterwards whatever happened."""
    from dockyard.cri.proto import pb
    made: list[str] = []

    def run(cfg) -> str:
        pid = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
        made.append(pid)
        return pid
    yield run
    for pid in made:
        cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))


def cri_connect(daemon):
    """A gRPC channel to the daemon's CRI socket, ready, and its RuntimeService stub:
    (channel, stub). For tests that reconnect after a daemon restart."""
    import grpc

    from dockyard.cri.proto import grpc_pb
    ch = grpc.insecure_channel("unix:" + daemon.cri_sock)
    grpc.channel_ready_future(ch).result(timeout=10)
    return ch, grpc_pb.RuntimeServiceStub(ch)


def remove_pods(rt, pod_ids) -> None:
    """RemovePodSandbox each, whatever state it is in (a test's cleanup)."""
    import grpc

    from dockyard.cri.proto import pb
    for pid in pod_ids:
        try:
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
        except grpc.RpcError:
            pass

"""Checkpoint and restore (issue 7) through the real docker CLI, our CLI and
the raw API: a counter keeps counting, a published httpd answers again, an
established TCP session resumes, a container moves to a second dockyardd,
and bad requests fail clearly and leave nothing behind.

Skipped (with the reason) only where CRIU cannot work on this host, and
never in CI once scripts/install-criu.sh has installed its CRIU (CI=true and
/opt/dockyard-criu/bin/criu there, or DOCKYARD_TEST_REQUIRE_CRIU=1): then an
unusable CRIU fails every test here. The module's dockyardd runs its default
crun: scripts/install-crun.sh's (/opt/dockyard-crun, built with CRIU) when
there, else the host's; runc only when that crun has no CRIU built in (Debian
12's). A crun without CRIU (the host's, named by daemon.json) gets the 501
tested below."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import time
import urllib.request

import pytest

from dockyard.runtime import checkpoint as rtc
from dockyard.runtime.criu import PRIVATE_PREFIX_CRIU, discover
from dockyard.runtime.runtimes import private_crun

CRIU = asyncio.run(discover(None))
REQUIRED = os.environ.get("DOCKYARD_TEST_REQUIRE_CRIU") == "1" or (
    os.environ.get("CI", "").lower() in ("1", "true", "yes") and os.access(PRIVATE_PREFIX_CRIU, os.X_OK))
pytestmark = pytest.mark.skipif(not CRIU.usable and not REQUIRED,
                                reason=f"CRIU unusable here: {CRIU.reason} "
                                       "(scripts/install-criu.sh installs a working one)")


@pytest.fixture(autouse=True)
def _criu_required():
    """In CI with install-criu.sh's CRIU in place, an unusable CRIU is a failure, not a skip."""
    if not CRIU.usable:
        pytest.fail(f"CRIU is required here (CI with {PRIVATE_PREFIX_CRIU} installed, or "
                    f"DOCKYARD_TEST_REQUIRE_CRIU=1) but unusable: {CRIU.reason}", pytrace=False)

COUNTER = "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done"


def _conftest():
    for m in list(sys.modules.values()):
        if (getattr(m, "__file__", None) or "").endswith(os.path.join("integration", "conftest.py")):
            return m
    raise RuntimeError("tests/integration/conftest.py is not loaded")


PRIVATE_CRUN = private_crun()


def _daemons_crun() -> str | None:
    """The crun a dockyardd runs by default: the private prefix's, else PATH's."""
    return PRIVATE_CRUN.wrapper if PRIVATE_CRUN else shutil.which("crun")


def _runtime(default: str) -> str:
    """crun when it can checkpoint here (built with CRIU), else runc."""
    if default == "crun":
        crun = _daemons_crun()
        if crun and rtc._crun_has_criu(crun):
            return "crun"
        if PRIVATE_CRUN and REQUIRED:
            pytest.fail(f"{PRIVATE_CRUN.wrapper} (scripts/install-crun.sh) has no CRIU", pytrace=False)
    return "runc"


def _daemon_fixture(name: str):
    @pytest.fixture(scope="module")
    def fixture(request, tmp_path_factory):
        runtime = _runtime(request.config.getoption("dockyard_runtime"))
        yield from _conftest().running_daemon(request, tmp_path_factory, runtime=runtime, label=name)
    return fixture


daemon = _daemon_fixture("dockyardd-checkpoint")     # overrides conftest's: runtime that can checkpoint
daemon2 = _daemon_fixture("dockyardd-checkpoint-2")  # the "second host"


# ---------------------------------------------------------------- helpers

def _name(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def _inspect(d, ref) -> dict:
    return json.loads(d.docker("inspect", ref).stdout)[0]


def _numbers(d, ref, prefix: str = "") -> list[int]:
    out = d.docker("logs", ref).stdout.split()
    return [int(x[len(prefix):]) for x in out if x.startswith(prefix) and x[len(prefix):].isdigit()]


def _wait(cond, what: str, timeout: float = 15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _consecutive(nums: list[int]) -> bool:
    return nums == list(range(nums[0], nums[0] + len(nums))) if nums else False


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def _error(d, method, path, body=None) -> tuple[int, str]:
    st, raw = d.api(method, path, body)
    return st, (json.loads(raw).get("message", "") if raw else "")


# ---------------------------------------------------------------- support is reported

def test_ping_and_info_report_checkpoint_support(daemon):
    conn = _conftest()._UnixHTTPConnection(daemon.sock, 10)
    try:
        conn.request("GET", "/_ping")
        assert conn.getresponse().getheader("Docker-Experimental") == "true"
    finally:
        conn.close()
    r = daemon.docker("info", "--format", "{{json .ExperimentalBuild}}")
    assert r.stdout.strip() == "true"
    # the docker CLI decides from /_ping's Docker-Experimental header
    assert "checkpoint" in daemon.docker("--help").stdout
    assert daemon.docker("checkpoint", "--help").returncode == 0


# ---------------------------------------------------------------- acceptance, docker CLI

def test_counter_continues_and_published_port_answers_after_restore(daemon, bb_image):
    name, port = _name("ctr"), _free_port()
    daemon.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", bb_image, "sh", "-c",
                  f"echo hello > /index.html; httpd -p 80 -h /; {COUNTER}")
    try:
        _wait(lambda: len(_numbers(daemon, name)) >= 3, "the counter to count")
        assert _http_get(f"http://127.0.0.1:{port}/index.html") == "hello\n"
        before = _inspect(daemon, name)
        ip = before["NetworkSettings"]["IPAddress"]

        daemon.docker("checkpoint", "create", name, "cp1")
        st = _inspect(daemon, name)["State"]
        assert st["Running"] is False and st["Status"] == "exited"
        last = _numbers(daemon, name)[-1]

        daemon.docker("start", "--checkpoint", "cp1", name)
        _wait(lambda: _numbers(daemon, name)[-1] > last + 2, "the restored counter to count on")
        nums = _numbers(daemon, name)
        assert nums[0] == 0 and _consecutive(nums), f"the counter restarted or skipped: {nums}"
        assert _http_get(f"http://127.0.0.1:{port}/index.html") == "hello\n"

        after = _inspect(daemon, name)
        assert after["State"]["Running"] is True
        assert after["State"]["StartedAt"] > before["State"]["StartedAt"]
        assert after["State"]["Pid"] > 0 and after["State"]["Pid"] != before["State"]["Pid"]
        assert after["NetworkSettings"]["IPAddress"] == ip      # same address, same namespace setup
        assert after["StartTrace"]["Ok"] is True
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_leave_running_ls_and_rm(daemon, bb_image):
    name = _name("lr")
    # a named volume and a bind mount: runc hands them to CRIU as external mounts
    daemon.docker("run", "-d", "--name", name, "-v", f"{name}:/data", "-v", "/etc/hostname:/hn:ro", bb_image,
                  "sh", "-c", f"echo kept > /data/f; {COUNTER}")
    try:
        daemon.docker("checkpoint", "create", "--leave-running", name, "cp1")
        daemon.docker("checkpoint", "create", "--leave-running", name, "cp2")
        assert _inspect(daemon, name)["State"]["Running"] is True
        n = len(_numbers(daemon, name))
        _wait(lambda: len(_numbers(daemon, name)) > n + 2, "the original to keep counting")
        assert daemon.docker("checkpoint", "ls", name).stdout.split() == ["CHECKPOINT", "NAME", "cp1", "cp2"]
        daemon.docker("checkpoint", "rm", name, "cp1")
        assert daemon.docker("checkpoint", "ls", name).stdout.split() == ["CHECKPOINT", "NAME", "cp2"]
        # a checkpoint of a running container restores after a stop (our CLI this time)
        daemon.docker("stop", "-t", "0", name)
        daemon.dockyard("start", "--checkpoint", "cp2", name)
        assert _inspect(daemon, name)["State"]["Running"] is True
        assert daemon.docker("exec", name, "cat", "/data/f").stdout == "kept\n"
    finally:
        daemon.docker("rm", "-f", "-v", name, check=False)
        daemon.docker("volume", "rm", name, check=False)


def test_custom_checkpoint_dir(daemon, bb_image, tmp_path):
    name = _name("cd")
    cpdir = tmp_path / "checkpoints"
    daemon.docker("run", "-d", "--name", name, bb_image, "sh", "-c", COUNTER)
    try:
        _wait(lambda: _numbers(daemon, name), "the counter")
        daemon.docker("checkpoint", "create", "--checkpoint-dir", str(cpdir), name, "mine")
        assert (cpdir / "mine" / "checkpoint.json").is_file() and (cpdir / "mine" / "images").is_dir()
        assert daemon.docker("checkpoint", "ls", name).stdout.split() == ["CHECKPOINT", "NAME"]
        assert "mine" in daemon.docker("checkpoint", "ls", "--checkpoint-dir", str(cpdir), name).stdout
        last = _numbers(daemon, name)[-1]
        daemon.docker("start", "--checkpoint", "mine", "--checkpoint-dir", str(cpdir), name)
        _wait(lambda: _numbers(daemon, name)[-1] > last, "the counter after restore")
        assert _consecutive(_numbers(daemon, name))
        daemon.docker("checkpoint", "rm", "--checkpoint-dir", str(cpdir), name, "mine")
        assert not (cpdir / "mine").exists()
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_established_tcp_session_resumes(daemon, bb_image):
    """nc <-> nc over the container's loopback: the stream goes on, unbroken."""
    name = _name("tcp")
    cmd = ("sleep 100000 | nc -l -p 5000 & sleep 0.3; "
           "i=0; while :; do echo m$i; i=$((i+1)); sleep 0.1; done | nc 127.0.0.1 5000")
    daemon.docker("run", "-d", "--name", name, bb_image, "sh", "-c", cmd)
    try:
        _wait(lambda: len(_numbers(daemon, name, "m")) >= 3, "data over the TCP session")
        daemon.docker("checkpoint", "create", name, "tcp1")
        last = _numbers(daemon, name, "m")[-1]
        daemon.docker("start", "--checkpoint", "tcp1", name)
        _wait(lambda: _numbers(daemon, name, "m")[-1] > last + 2, "data over the restored session")
        nums = _numbers(daemon, name, "m")
        assert nums[0] == 0 and _consecutive(nums), nums
        assert "ESTABLISHED" in daemon.docker("exec", name, "netstat", "-tn").stdout
    finally:
        daemon.docker("rm", "-f", name, check=False)


def _host_flock() -> list[str] | None:
    """The host's util-linux flock, run inside a container through the host's
    loader from a read-only bind of /usr at /host/usr (busybox has no flock)."""
    flock = shutil.which("flock", path="/usr/bin")
    loaders = [p for p in ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1") if os.path.exists(p)]
    if not flock or not loaders:
        return None
    loader = os.path.realpath(loaders[0])
    if not loader.startswith("/usr/") or not os.path.realpath(flock).startswith("/usr/"):
        return None
    return ["/host" + loader, "--library-path", "/host" + os.path.dirname(loader), "/host" + os.path.realpath(flock)]


def test_file_lock_kept_and_restart_policy_holds_off(daemon, bb_image):
    """A flock held across checkpoint and restore is still held (--file-locks);
    a checkpointed `--restart always` container is not restarted by its policy."""
    flock = _host_flock()
    if flock is None:
        pytest.skip("needs util-linux flock and the loader under /usr on the host (merged /usr)")
    name = _name("lock")
    # through sh: the start path looks the command up in the image only, not in binds
    daemon.docker("run", "-d", "--name", name, "--restart", "always", "-v", "/usr:/host/usr:ro", bb_image,
                  "sh", "-c", f"exec {' '.join(flock)} /tmp/lock sh -c '{COUNTER}'")
    probe = ("exec", name, "sh", "-c", f"exec {' '.join(flock)} -n /tmp/lock true")
    try:
        _wait(lambda: len(_numbers(daemon, name)) >= 3, "the counter under the lock")
        assert daemon.docker(*probe, check=False).returncode == 1, "the lock is not held before the checkpoint"
        daemon.docker("checkpoint", "create", name, "lk")
        time.sleep(1.5)      # the restart policy's first retry comes after 100 ms
        st = _inspect(daemon, name)["State"]
        assert st["Status"] == "exited", f"the restart policy brought a checkpointed container back: {st}"
        last = _numbers(daemon, name)[-1]
        daemon.docker("start", "--checkpoint", "lk", name)
        _wait(lambda: _numbers(daemon, name)[-1] > last + 2, "the restored counter")
        assert _consecutive(_numbers(daemon, name))
        r = daemon.docker(*probe, check=False)
        assert r.returncode == 1, f"the lock was lost in the restore: {r.returncode} {r.stderr}"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_default_runtime_checkpoints_with_the_private_crun(daemon, bb_image):
    """With scripts/install-crun.sh's crun in place, a container created
    without --runtime is crun's, and that crun checkpoints and restores it."""
    if not PRIVATE_CRUN:
        pytest.skip("no /opt/dockyard-crun here (scripts/install-crun.sh makes it)")
    assert daemon.runtime == "crun"
    info = json.loads(daemon.api("GET", "/info")[1])
    assert info["DefaultRuntime"] == "crun" and info["Runtimes"]["crun"]["path"] == PRIVATE_CRUN.wrapper
    name = _name("dflt")
    daemon.docker("run", "-d", "--name", name, bb_image, "sh", "-c", COUNTER)
    try:
        assert _inspect(daemon, name)["HostConfig"]["Runtime"] == "crun"
        _wait(lambda: len(_numbers(daemon, name)) >= 3, "the counter")
        daemon.docker("checkpoint", "create", name, "c1")
        assert _inspect(daemon, name)["State"]["Running"] is False
        daemon.docker("start", "--checkpoint", "c1", name)
        last = _numbers(daemon, name)[-1]
        _wait(lambda: _numbers(daemon, name)[-1] > last + 2, "the restored counter")
        assert _consecutive(_numbers(daemon, name))
    finally:
        daemon.docker("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def system_crun_daemon(request, tmp_path_factory):
    """A dockyardd whose crun is the host's (daemon.json runtimes.crun.path),
    when that crun has no CRIU built in (Debian 12's)."""
    crun = shutil.which("crun", path="/usr/bin:/usr/sbin:/bin:/sbin")
    if not crun:
        pytest.skip("no crun on this host")
    if rtc._crun_has_criu(crun):
        pytest.skip(f"this host's crun ({crun}) has CRIU: nothing to refuse")
    conf = tmp_path_factory.mktemp("system-crun") / "daemon.json"
    conf.write_text(json.dumps({"runtimes": {"crun": {"path": crun}}}))
    yield from _conftest().running_daemon(request, tmp_path_factory, runtime="crun",
                                          extra_args=("--config-file", str(conf)), label="dockyardd-system-crun")


def test_crun_without_criu_is_refused_with_the_fix(system_crun_daemon, busybox_tar):
    """Debian 12's crun has no CRIU: its containers get a 501 naming the fix and keep running."""
    d = system_crun_daemon
    if d.api("GET", "/images/bb/json")[0] != 200:
        d.docker("import", str(busybox_tar), "bb")
    name = _name("crun")
    d.docker("run", "-d", "--name", name, "bb", "sleep", "1000")
    try:
        assert _inspect(d, name)["HostConfig"]["Runtime"] == "crun"
        st, msg = _error(d, "POST", f"/containers/{name}/checkpoints", {"CheckpointID": "c1"})
        assert st == 501 and "built without CRIU" in msg and "--runtime runc" in msg, (st, msg)
        r = d.docker("checkpoint", "create", name, "c1", check=False)
        assert r.returncode != 0 and "--runtime runc" in r.stderr
        assert _inspect(d, name)["State"]["Running"] is True
        assert d.docker("checkpoint", "ls", name).stdout.split() == ["CHECKPOINT", "NAME"]
    finally:
        d.docker("rm", "-f", name, check=False)


# ---------------------------------------------------------------- our CLI, to a second daemon

def test_export_and_import_to_a_second_daemon(daemon, daemon2, bb_image, busybox_tar, tmp_path):
    if daemon2.api("GET", "/images/bb/json")[0] != 200:
        daemon2.docker("import", str(busybox_tar), "bb")
    name, tar = _name("mig"), tmp_path / "mig.tar"
    daemon.dockyard("run", "-d", "--name", name, bb_image, "sh", "-c", f"echo moved > /marker; {COUNTER}")
    try:
        _wait(lambda: len(_numbers(daemon, name)) >= 3, "the counter")
        daemon.dockyard("checkpoint", "create", name, "mig")
        last = _numbers(daemon, name)[-1]
        daemon.dockyard("checkpoint", "export", name, "mig", "-o", str(tar))
        cid = daemon2.dockyard("run", "--restore", str(tar)).stdout.strip()   # = `checkpoint import`
        try:
            info = _inspect(daemon2, cid)
            assert info["Name"] == "/" + name and info["State"]["Running"] is True
            _wait(lambda: _numbers(daemon2, cid), "the counter on the second daemon")
            first = _numbers(daemon2, cid)[0]
            assert first > last - 1, f"restarted from scratch: first={first}, checkpointed at {last}"
            assert daemon2.docker("exec", cid, "cat", "/marker").stdout == "moved\n"
            # a restored container is re-adopted like any other after a daemon restart
            daemon2.restart()
            n = _numbers(daemon2, cid)[-1]
            _wait(lambda: _numbers(daemon2, cid)[-1] > n + 1, "the counter after a daemon restart")
            assert _inspect(daemon2, cid)["State"]["Running"] is True
            # the first daemon's container is untouched (stopped, restorable)
            assert _inspect(daemon, name)["State"]["Status"] == "exited"
        finally:
            daemon2.docker("rm", "-f", cid, check=False)
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_import_of_garbage_leaves_nothing(daemon, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    n = len(daemon.client().containers.list(all=True))
    r = daemon.dockyard("checkpoint", "import", str(junk), check=False)
    assert r.returncode != 0 and "not a dockyard checkpoint export" in r.stderr
    assert len(daemon.client().containers.list(all=True)) == n


# ---------------------------------------------------------------- bad input and errors

def test_errors_and_nothing_left_behind(daemon, bb_image, tmp_path):
    a, b = _name("ea"), _name("eb")
    daemon.docker("create", "--name", a, bb_image, "sleep", "1000")
    daemon.docker("run", "-d", "--name", b, bb_image, "sleep", "1000")
    try:
        # not running -> 409
        st, msg = _error(daemon, "POST", f"/containers/{a}/checkpoints", {"CheckpointID": "x1"})
        assert (st, msg) == (409, f"container {a} is not running")
        # invalid name -> 400
        st, msg = _error(daemon, "POST", f"/containers/{b}/checkpoints", {"CheckpointID": "bad/name"})
        assert st == 400 and "Invalid checkpoint ID (bad/name)" in msg
        # unknown checkpoint on start -> 404 naming it
        st, msg = _error(daemon, "POST", f"/containers/{a}/start?checkpoint=nope")
        assert st == 404 and "checkpoint nope does not exist" in msg
        assert _inspect(daemon, a)["State"]["Status"] == "created"

        # a checkpoint made for another container -> 400, and `a` stays created
        cpdir = tmp_path / "shared"
        daemon.docker("checkpoint", "create", "--leave-running", "--checkpoint-dir", str(cpdir), b, "of-b")
        st, msg = _error(daemon, "POST", f"/containers/{a}/start?checkpoint=of-b&checkpoint-dir={cpdir}")
        assert st == 400 and "was made for container" in msg
        assert _inspect(daemon, a)["State"]["Status"] == "created"

        # a corrupted checkpoint -> a clear error; `b`, stopped, stays stopped with nothing leaked
        daemon.docker("stop", "-t", "0", b)
        images = cpdir / "of-b" / "images"
        for f in images.iterdir():
            if f.name.startswith(("pages-", "core-")):
                f.write_bytes(b"")
        st, msg = _error(daemon, "POST", f"/containers/{b}/start?checkpoint=of-b&checkpoint-dir={cpdir}")
        assert st == 500 and "restore from checkpoint of-b failed" in msg
        info = _inspect(daemon, b)
        assert info["State"]["Status"] == "exited" and info["StartTrace"]["FailedStep"] == "supervise"
        bid = info["Id"]
        assert not os.path.exists(os.path.join(daemon.exec_root, "netns", bid))
        assert not os.path.exists(os.path.join(daemon.exec_root, "c", bid))
        assert not [l for l in open("/proc/self/mountinfo") if bid in l]
        assert not [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, bid)]
        # and it still starts normally
        daemon.docker("start", b)
        assert _inspect(daemon, b)["State"]["Running"] is True
    finally:
        daemon.docker("rm", "-f", a, b, check=False)


def _cmdline_has(pid: str, needle: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return needle.encode() in f.read()
    except OSError:
        return False


# ---------------------------------------------------------------- CRIU unusable: reported, refused, nothing else changes

def test_unusable_criu_is_reported_and_refused(daemon2, busybox_tar):
    """Last in the module: restarts the second daemon with a CRIU that is not there."""
    if daemon2.api("GET", "/images/bb/json")[0] != 200:
        daemon2.docker("import", str(busybox_tar), "bb")
    saved = daemon2.extra_args
    daemon2.extra_args = saved + ("--criu-path", "/nonexistent/criu")
    daemon2.restart()
    name = _name("nocriu")
    try:
        conn = _conftest()._UnixHTTPConnection(daemon2.sock, 10)
        try:
            conn.request("GET", "/_ping")
            assert conn.getresponse().getheader("Docker-Experimental") == "false"
        finally:
            conn.close()
        assert daemon2.docker("info", "--format", "{{json .ExperimentalBuild}}").stdout.strip() == "false"
        daemon2.docker("run", "-d", "--name", name, "bb", "sleep", "1000")
        st, msg = _error(daemon2, "POST", f"/containers/{name}/checkpoints", {"CheckpointID": "c1"})
        assert st == 501 and "checkpoint/restore is not available" in msg and "/nonexistent/criu" in msg
        st, msg = _error(daemon2, "POST", f"/containers/{name}/start?checkpoint=c1")
        assert st == 501
        assert _inspect(daemon2, name)["State"]["Running"] is True
        assert daemon2.api("GET", f"/containers/{name}/checkpoints") == (200, b"[]\n")
    finally:
        daemon2.docker("rm", "-f", name, check=False)
        daemon2.extra_args = saved
        daemon2.restart()

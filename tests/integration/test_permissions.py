"""Secrets stay root's: as dockerd, the data root and exec root are 0710 and
every file holding container config, env or logs is root-only, so another
local user (`nobody`) finds no container's `-e SECRET=…` anywhere; the API
socket is 0660 root:<-G group>."""
from __future__ import annotations

import grp
import os
import secrets
import stat
import subprocess

import pytest

from conftest import running_daemon

GROUP = "nogroup"     # nobody's own group: with -G it may use the socket


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=60, cwd="/")


def nobody_hits(paths: list[str], secret: str) -> list[str]:
    """Which of these files `nobody` reads the secret from: by their paths,
    as one who knows (or guesses) them, since the roots are not listable."""
    r = as_nobody("grep", "-l", "-a", "-F", secret, *paths)
    return r.stdout.split()


def root_hits(daemon, secret: str) -> list[str]:
    r = subprocess.run(["grep", "-r", "-l", "-a", "-F", secret, str(daemon.data_root), str(daemon.exec_root)],
                       capture_output=True, text=True, timeout=60)
    return r.stdout.split()


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    yield from running_daemon(request, tmp_path_factory, label="dockyardd-perms", extra_args=("-G", GROUP))


def test_nobody_reads_no_container_env_config_or_logs(daemon, bb_image):
    secret = "s3cr3t-" + secrets.token_hex(8)
    # a finished container: its env in the database, its output in ctr.log
    r = daemon.docker("run", "--name", "perm-done", "-e", f"SECRET_TOKEN={secret}", bb_image,
                      "sh", "-c", 'echo "token is $SECRET_TOKEN"')
    assert secret in r.stdout
    # a running one: its bundle's config.json, an exec's env, logs still written
    daemon.docker("run", "-d", "--name", "perm-run", "-e", f"SECRET_TOKEN={secret}", bb_image,
                  "sh", "-c", 'while :; do echo "log $SECRET_TOKEN"; sleep 0.2; done')
    try:
        r = daemon.docker("exec", "-e", f"EXEC_SECRET={secret}", "perm-run", "sh", "-c", "echo $EXEC_SECRET")
        assert r.stdout.strip() == secret
        assert secret in daemon.docker("logs", "perm-done").stdout
        # the test means something: the secret is on disk (root finds it), in the db or its WAL too
        found = root_hits(daemon, secret)
        assert any(os.path.basename(p).startswith("dockyard.db") for p in found), found
        assert any(p.startswith(str(daemon.exec_root)) for p in found), found
        assert any(os.path.basename(p) == "ctr.log" for p in found), found

        assert nobody_hits(found, secret) == []
        r = as_nobody("grep", "-r", "-l", "-a", "-F", secret, str(daemon.data_root), str(daemon.exec_root))
        assert r.stdout == ""
        for name in ("dockyard.db", "dockyard.db-wal", "dockyard.db-shm"):
            path = daemon.data_root / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
                r = as_nobody("cat", str(path))
                assert r.returncode != 0 and "Permission denied" in r.stderr, name
        for root in (daemon.data_root, daemon.exec_root):
            st = root.stat()
            assert stat.S_IMODE(st.st_mode) & 0o077 in (0o010, 0o000), oct(st.st_mode)
            assert (st.st_uid, st.st_gid) == (0, 0)

        # containers keep working: a non-root user reads the daemon-written /etc files
        r = daemon.docker("run", "--rm", "--user", "65534", bb_image, "sh", "-c",
                          "cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null && echo ok")
        assert r.stdout == "ok\n"
    finally:
        daemon.docker("rm", "-f", "perm-run", "perm-done", check=False)


PROBE = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
         "s.sendall(b'GET /_ping HTTP/1.0\\r\\n\\r\\n'); print(s.recv(4096).split(b'\\r\\n')[0].decode())")


def ping_as(gid: int, sock: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--reuid=65534", f"--regid={gid}", "--clear-groups",
                           "/usr/bin/python3", "-c", PROBE, sock], capture_output=True, text=True, timeout=60)


def test_roots_from_an_older_dockyard_are_tightened_at_start(daemon, bb_image):
    os.chmod(daemon.data_root, 0o755)
    os.chmod(daemon.exec_root, 0o755)
    os.chmod(daemon.data_root / "dockyard.db", 0o644)
    daemon.stop()
    # and a second socket in the exec root, where the default one lives
    inner = str(daemon.exec_root / "api.sock")
    daemon.extra_args += ("-H", "unix://" + inner)
    try:
        daemon.start()
        assert stat.S_IMODE(daemon.data_root.stat().st_mode) == 0o710
        assert stat.S_IMODE(daemon.exec_root.stat().st_mode) == 0o710
        assert stat.S_IMODE((daemon.data_root / "dockyard.db").stat().st_mode) == 0o600
        assert daemon.docker("run", "--rm", bb_image, "echo", "up").stdout == "up\n"
        # the socket's group passes the exec root to reach it (and only that: 0710)
        gid = grp.getgrnam(GROUP).gr_gid
        assert daemon.exec_root.stat().st_gid == gid
        assert ping_as(gid, inner).stdout.split()[1:2] == ["200"]
        r = ping_as(1, inner)
        assert r.returncode != 0 and "PermissionError" in r.stderr
    finally:
        daemon.extra_args = daemon.extra_args[:-2]
        daemon.stop()
        daemon.start()


def test_socket_group_from_G(daemon):
    st = os.stat(daemon.sock)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert (st.st_uid, st.st_gid) == (0, grp.getgrnam(GROUP).gr_gid)
    # nobody, in that group, may talk to the daemon; not in it, refused
    r = ping_as(st.st_gid, daemon.sock)
    assert r.stdout.split()[1:2] == ["200"], r.stderr
    r = ping_as(1, daemon.sock)
    assert r.returncode != 0 and "PermissionError" in r.stderr


def test_unknown_group_refused_at_start(daemon):
    argv = daemon.argv() + ["--group", "no-such-group-dy"]
    argv[argv.index("-H") + 1] = "unix://" + str(daemon.base / "other.sock")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "group no-such-group-dy not found" in r.stderr
    assert not os.path.exists(daemon.base / "other.sock")

"""The Engine API over TCP with mutual TLS, driven by the docker CLI and
docker-py as a remote user drives dockerd: certificates made here with
openssl (a CA, a server certificate for 127.0.0.1, a client one, and a
second CA's client certificate that must be refused), and the hijacked
streams (attach with stdin, exec -it, logs -f) over TLS."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Daemon, running_daemon, unique_name, venv_script
from registry_util import free_port

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> dict[str, Path]:
    """CA, server (SAN 127.0.0.1, localhost), client; and a rogue CA's client."""
    d.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={ca}",
                 "-keyout", f"{ca}-key.pem", "-out", f"{ca}.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, ca, ext in (("server", "ca", "server.ext"), ("client", "ca", "client.ext"),
                          ("rogue", "rogue-ca", "client.ext")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
                 "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{name}.pem", cwd=d)
    for p in d.glob("*-key.pem"):
        p.chmod(0o600)
    return {k: d / f"{k}.pem" for k in ("ca", "server", "server-key", "client", "client-key",
                                          "rogue", "rogue-key", "rogue-ca")}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory, pki, tls_port):
    """dockyardd on its unix socket and on tcp://127.0.0.1:PORT with --tlsverify."""
    yield from running_daemon(request, tmp_path_factory, extra_args=(
        "-H", f"tcp://127.0.0.1:{tls_port}", "--tlsverify", "--tlscacert", str(pki["ca"]),
        "--tlscert", str(pki["server"]), "--tlskey", str(pki["server-key"])))


def tls_docker(daemon: Daemon, pki, port: int, *args: str, cert: str = "client", check: bool = True,
               timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    exe = shutil.which("docker")
    env = {k: v for k, v in daemon.env.items() if k not in ("DOCKER_HOST", "DOCKYARD_HOST")}
    cmd = [exe, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(pki["ca"]),
           "--tlscert", str(pki[cert]), "--tlskey", str(pki[f"{cert}-key"]), *args]
    kw.setdefault("text", True)
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} exited {r.returncode}: {r.stderr}")
    return r


def test_docker_cli_runs_a_container_over_mutual_tls(daemon, bb_image, pki, tls_port):
    r = tls_docker(daemon, pki, tls_port, "run", "--rm", bb_image, "echo", "hi")
    assert r.stdout == "hi\n", (r.returncode, r.stderr)
    info = tls_docker(daemon, pki, tls_port, "info", "--format", "{{.Name}}")
    assert info.stdout.strip()


def _handshake(port: int, cafile: Path, cert: Path | None, key: Path | None) -> bytes:
    """Connect with TLS and ask for /_ping; the refusal comes during the
    handshake (TLS 1.2) or as an alert at the first read (TLS 1.3)."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(4096)


def test_a_client_without_a_certificate_is_refused(daemon, pki, tls_port):
    assert b"HTTP/1.1 200" in _handshake(tls_port, pki["ca"], pki["client"], pki["client-key"])
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(tls_port, pki["ca"], None, None)
    r = subprocess.run([shutil.which("docker"), "-H", f"tcp://127.0.0.1:{tls_port}", "--tls",
                        "--tlscacert", str(pki["ca"]), "version"], capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"}, timeout=30)
    assert r.returncode != 0
    assert "certificate" in r.stderr.lower() or "tls" in r.stderr.lower(), r.stderr


def test_a_client_certificate_of_another_ca_is_refused(daemon, pki, tls_port):
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(tls_port, pki["ca"], pki["rogue"], pki["rogue-key"])
    r = tls_docker(daemon, pki, tls_port, "version", cert="rogue", check=False)
    assert r.returncode != 0


def test_plain_http_to_the_tls_port_gets_no_api(daemon, tls_port):
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        try:
            data = s.recv(4096)
        except ConnectionError:
            data = b""
    assert b"HTTP/1.1 200" not in data


def test_docker_py_with_tls_config(daemon, bb_image, pki, tls_port, monkeypatch):
    import docker
    # requests lets these override a session's own CA (its trust_env merge)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = docker.tls.TLSConfig(client_cert=(str(pki["client"]), str(pki["client-key"])),
                               ca_cert=str(pki["ca"]), verify=True)
    c = docker.DockerClient(base_url=f"tcp://127.0.0.1:{tls_port}", tls=tls, version="auto", timeout=60)
    try:
        out = c.containers.run(bb_image, ["echo", "from-docker-py"], remove=True)
        assert out == b"from-docker-py\n"
    finally:
        c.close()


def test_attach_with_stdin_over_tls(daemon, bb_image, pki, tls_port):
    """`docker run -i` hijacks the connection; stdin's end (a TLS
    close_notify from the CLI's CloseWrite) must reach the container and
    its output must still come back."""
    r = tls_docker(daemon, pki, tls_port, "run", "-i", "--rm", bb_image, "sh", "-c", "cat; echo done",
                   input="line one\nline two\n")
    assert r.stdout == "line one\nline two\ndone\n"


def test_logs_follow_over_tls(daemon, bb_image, pki, tls_port):
    name = unique_name()
    tls_docker(daemon, pki, tls_port, "run", "-d", "--name", name, bb_image, "sh", "-c",
               "for i in 1 2 3; do echo n$i; sleep 0.2; done")
    try:
        r = tls_docker(daemon, pki, tls_port, "logs", "-f", name, timeout=30)
        assert r.stdout.split() == ["n1", "n2", "n3"]
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_exec_with_a_tty_over_tls(daemon, bb_image, pki, tls_port):
    pexpect = pytest.importorskip("pexpect")
    name = unique_name()
    tls_docker(daemon, pki, tls_port, "run", "-d", "--name", name, bb_image, "sleep", "60")
    try:
        env = {k: v for k, v in daemon.env.items() if k not in ("DOCKER_HOST", "DOCKYARD_HOST")}
        child = pexpect.spawn(shutil.which("docker"), [
            "-H", f"tcp://127.0.0.1:{tls_port}", "--tlsverify", "--tlscacert", str(pki["ca"]),
            "--tlscert", str(pki["client"]), "--tlskey", str(pki["client-key"]),
            "exec", "-it", name, "sh"], env=env, timeout=30, encoding="utf-8")
        child.sendline("tty; echo mark-$((40+2))")
        child.expect("mark-42")
        assert "/dev/pts/" in child.before
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 3
    finally:
        daemon.docker("rm", "-f", name, check=False)


# ------------------------------------------------------------------ start-up refusals

def _dockyardd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    exe = venv_script("dockyardd") or [sys.executable, "-m", "dockyard.dockyardd"]
    return subprocess.run([*exe, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _roots(tmp_path: Path) -> list[str]:
    return ["--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"),
            "-H", f"unix://{tmp_path}/d.sock", "--bridge", unique_name()]


def test_plain_tcp_needs_an_explicit_tls_false(tmp_path):
    port = free_port()
    r = _dockyardd(*_roots(tmp_path), "-H", f"tcp://127.0.0.1:{port}")
    assert r.returncode != 0
    assert "failed to load listeners" in r.stderr and "--tls=false" in r.stderr, r.stderr
    assert not (tmp_path / "d.sock").exists()


def test_missing_certificate_fails_the_start(tmp_path, pki):
    port = free_port()
    r = _dockyardd(*_roots(tmp_path), "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                   "--tlscacert", str(pki["ca"]), "--tlscert", str(tmp_path / "nope.pem"),
                   "--tlskey", str(pki["server-key"]))
    assert r.returncode != 0
    assert "nope.pem" in r.stderr and "no such file" in r.stderr, r.stderr
    assert not (tmp_path / "d.sock").exists()


def test_a_used_port_fails_the_start(tmp_path, pki):
    roots = _roots(tmp_path)
    bridge = roots[roots.index("--bridge") + 1]
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        r = _dockyardd(*roots, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                       "--tlscacert", str(pki["ca"]), "--tlscert", str(pki["server"]),
                       "--tlskey", str(pki["server-key"]), timeout=60)
    assert r.returncode != 0
    assert f"listen tcp 127.0.0.1:{port}" in r.stderr and "in use" in r.stderr, r.stderr
    assert not (tmp_path / "d.sock").exists()
    # refused before anything was made: no bridge, no nft tables of that daemon
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert bridge not in tables


def test_plain_tcp_with_tls_false_warns_in_info(request, tmp_path_factory):
    port = free_port()
    gen = running_daemon(request, tmp_path_factory, extra_args=("-H", f"tcp://127.0.0.1:{port}", "--tls=false"),
                         label="plain-tcp")
    d = next(gen)
    try:
        import json
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=10) as resp:
            info = json.load(resp)
        assert any(f"http://127.0.0.1:{port} without encryption" in w for w in info["Warnings"])
        deadline = time.monotonic() + 5
        while "Binding to IP address without --tlsverify" not in d.log_path.read_text():
            assert time.monotonic() < deadline, d.log_tail()
            time.sleep(0.1)
    finally:
        with pytest.raises(StopIteration):
            next(gen)


# ------------------------------------------------------------------ dockyard's CLI, remotely

def _dockyard_env(daemon: Daemon, **extra: str) -> dict:
    env = {k: v for k, v in daemon.env.items() if k not in ("DOCKER_HOST", "DOCKYARD_HOST")}
    env.update(extra)
    return env


def _dockyard(daemon: Daemon, *args: str, env: dict, input: str | None = None) -> subprocess.CompletedProcess:
    exe = venv_script("dockyard") or [sys.executable, "-m", "dockyard.cli.main"]
    return subprocess.run([*exe, *args], env=env, capture_output=True, text=True, timeout=60,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def test_dockyard_cli_over_tls_with_flags_and_with_env(daemon, bb_image, pki, tls_port):
    host = f"tcp://127.0.0.1:{tls_port}"
    r = _dockyard(daemon, "-H", host, "--tlsverify", "--tlscacert", str(pki["ca"]), "--tlscert",
                  str(pki["client"]), "--tlskey", str(pki["client-key"]), "run", "--rm", "-i", bb_image,
                  "sh", "-c", "cat; echo end", env=_dockyard_env(daemon), input="through tls\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "through tls\nend\n"
    certs = pki["ca"].parent / "certdir"
    certs.mkdir(exist_ok=True)
    for src, dst in (("ca", "ca.pem"), ("client", "cert.pem"), ("client-key", "key.pem")):
        shutil.copy(pki[src], certs / dst)
    env = _dockyard_env(daemon, DOCKER_HOST=host, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs))
    r = _dockyard(daemon, "run", "--rm", bb_image, "echo", "env-tls", env=env)
    assert (r.returncode, r.stdout) == (0, "env-tls\n"), r.stderr
    # without a client certificate the daemon refuses
    env = _dockyard_env(daemon, DOCKER_HOST=host)
    r = _dockyard(daemon, "--tls", "--tlscacert", str(pki["ca"]), "--tlscert", "/nonexistent",
                  "--tlskey", "/nonexistent", "version", "--format", "{{.Server.Version}}", env=env)
    assert r.returncode != 0


def test_dockyard_cli_uses_a_docker_context(daemon, bb_image, pki, tls_port, tmp_path):
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    env = _dockyard_env(daemon, DOCKER_CONFIG=str(cfg))
    subprocess.run([shutil.which("docker"), "context", "create", "remote-tls", "--docker",
                    f"host=tcp://127.0.0.1:{tls_port},ca={pki['ca']},cert={pki['client']},"
                    f"key={pki['client-key']}"], env=env, check=True, capture_output=True, timeout=30)
    r = _dockyard(daemon, "--context", "remote-tls", "run", "--rm", bb_image, "echo", "ctx", env=env)
    assert (r.returncode, r.stdout) == (0, "ctx\n"), r.stderr
    subprocess.run([shutil.which("docker"), "context", "use", "remote-tls"], env=env, check=True,
                   capture_output=True, timeout=30)
    r = _dockyard(daemon, "info", "--format", "{{.Name}}", env=env)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    r = _dockyard(daemon, "--context", "no-such", "ps", env=env)
    assert r.returncode != 0 and "no-such" in r.stderr

"""`docker -H ssh://root@127.0.0.1:PORT` against dockyardd, as a user
reaches a remote engine: an sshd this test starts on a loopback port with
its own host key, authorized keys and config (the machine's ssh setup is
not touched), and an `ssh` on the client's PATH that reads this test's
client config (ssh reads ~/.ssh from the passwd entry, not $HOME).

Two far ends: the docker CLI's own `docker system dial-stdio` reaching
dockyard's socket (sshd's SetEnv DOCKER_HOST), and dockyard's
`dockyard system dial-stdio` (forced for the second key by command=)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import venv_script
from registry_util import free_port

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")),
                                reason="openssh-server/client not installed")


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   capture_output=True)
    return (path.with_suffix(".pub") if path.suffix else Path(str(path) + ".pub")).read_text().strip()


@pytest.fixture(scope="module")
def sshd(daemon, tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    port = free_port()
    host_pub = _keygen(d / "host_key")
    docker_pub = _keygen(d / "docker_key")
    dockyard_pub = _keygen(d / "dockyard_key")
    import dockyard as pkg
    src = Path(pkg.__file__).resolve().parents[1]      # the tree under test, also on the far end
    dockyard = f"env PYTHONPATH={src} " + " ".join(venv_script("dockyard") or
                                                    [sys.executable, "-m", "dockyard.cli.main"])
    (d / "authorized_keys").write_text(
        f"{docker_pub}\n"
        f'command="{dockyard} system dial-stdio",no-pty,no-port-forwarding {dockyard_pub}\n')
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv DOCKER_HOST={daemon.host}
""")
    made_privsep = not os.path.isdir("/run/sshd")
    if made_privsep:
        os.makedirs("/run/sshd", mode=0o755)
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    wrappers = {}
    for who in ("docker", "dockyard"):
        cfg = d / f"ssh_config_{who}"
        cfg.write_text(f"""Host 127.0.0.1
  IdentityFile {d}/{who}_key
  IdentitiesOnly yes
  UserKnownHostsFile {d}/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
""")
        bindir = d / f"bin_{who}"
        bindir.mkdir()
        (bindir / "ssh").write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {cfg} "$@"\n')
        (bindir / "ssh").chmod(0o755)
        wrappers[who] = bindir
    deadline = time.monotonic() + 10
    import socket
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (d / "sshd.log").read_text()
            time.sleep(0.05)
    try:
        yield {"port": port, "wrappers": wrappers, "dir": d}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        # the sessions' own sshd children end with their connections
        subprocess.run(["pkill", "-f", f"-f {d}/sshd_config"], capture_output=True)
        if made_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def _env(daemon, sshd, who: str) -> dict:
    env = {k: v for k, v in daemon.env.items() if k not in ("DOCKER_HOST", "DOCKYARD_HOST")}
    env["PATH"] = f"{sshd['wrappers'][who]}:{env.get('PATH', os.defpath)}"
    return env


def test_docker_cli_over_ssh_reaches_dockyard(daemon, bb_image, sshd):
    env = _env(daemon, sshd, "docker")
    r = subprocess.run([shutil.which("docker"), "-H", f"ssh://root@127.0.0.1:{sshd['port']}", "run", "--rm",
                        bb_image, "echo", "via-ssh"], env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (0, "via-ssh\n"), r.stderr


def test_a_docker_context_over_ssh(daemon, bb_image, sshd, tmp_path):
    env = _env(daemon, sshd, "docker")
    env["DOCKER_CONFIG"] = str(tmp_path)
    docker = shutil.which("docker")
    subprocess.run([docker, "context", "create", "far", "--docker",
                    f"host=ssh://root@127.0.0.1:{sshd['port']}"], env=env, check=True, capture_output=True,
                   timeout=30)
    r = subprocess.run([docker, "--context", "far", "run", "--rm", "-i", bb_image, "cat"], env=env,
                       capture_output=True, text=True, timeout=120, input="stdin over ssh\n")
    assert (r.returncode, r.stdout) == (0, "stdin over ssh\n"), r.stderr


def test_docker_cli_through_dockyards_own_dial_stdio(daemon, bb_image, sshd):
    env = _env(daemon, sshd, "dockyard")
    r = subprocess.run([shutil.which("docker"), "-H", f"ssh://root@127.0.0.1:{sshd['port']}", "run", "--rm",
                        "-i", bb_image, "sh", "-c", "cat; echo fin"], env=env, capture_output=True, text=True,
                       timeout=120, input="hello\n")
    assert (r.returncode, r.stdout) == (0, "hello\nfin\n"), r.stderr


def test_dockyard_cli_over_ssh(daemon, bb_image, sshd):
    env = _env(daemon, sshd, "dockyard")
    exe = venv_script("dockyard") or [sys.executable, "-m", "dockyard.cli.main"]
    r = subprocess.run([*exe, "-H", f"ssh://root@127.0.0.1:{sshd['port']}", "run", "--rm", bb_image,
                        "echo", "dockyard-ssh"], env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (0, "dockyard-ssh\n"), r.stderr

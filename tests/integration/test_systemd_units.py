"""The systemd units shipped in contrib/systemd: they pass
`systemd-analyze verify`, and socket activation works — systemd's own
`systemd-socket-activate` stands in for PID 1 (these machines do not boot
systemd): it holds the socket, the first connection execs dockyardd with
-H fd://, which answers that very connection and says READY=1 on
$NOTIFY_SOCKET as Type=notify wants."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Daemon, running_daemon, venv_script

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
ANALYZE = shutil.which("systemd-analyze")
ACTIVATE = shutil.which("systemd-socket-activate")


def _render(dst: Path, dockyardd: str) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("dockyard.service", "dockyard.socket"):
        p = dst / name
        p.write_text((UNITS / name).read_text().replace("@DOCKYARDD@", dockyardd))
        out.append(p)
    return out


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    exe = (venv_script("dockyardd") or [sys.executable])[0]
    files = _render(tmp_path / "good", exe)
    r = subprocess.run([ANALYZE, "verify", "--man=no", *map(str, files)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    # and verify is not a rubber stamp: a unit whose daemon is missing fails it
    files = _render(tmp_path / "bad", "/nonexistent/dockyardd")
    r = subprocess.run([ANALYZE, "verify", "--man=no", *map(str, files)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "/nonexistent/dockyardd" in r.stderr


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_install_script_renders_units_that_verify(tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "install-units.sh"
    exe = (venv_script("dockyardd") or [sys.executable])[0]
    subprocess.run(["bash", str(script), exe, str(tmp_path)], check=True, capture_output=True, timeout=30)
    service = (tmp_path / "dockyard.service").read_text()
    assert f"ExecStart={exe} -H fd://" in service and "@" not in service.split("ExecStart")[1].split()[0]
    r = subprocess.run([ANALYZE, "verify", "--man=no", str(tmp_path / "dockyard.service"),
                        str(tmp_path / "dockyard.socket")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


class ActivatedDaemon(Daemon):
    """dockyardd behind systemd-socket-activate: the socket exists before
    the daemon; the fixture's first /_ping starts it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.notify_path = str(self.base / "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(10)

    def argv(self) -> list[str]:
        inner = super().argv()
        i = inner.index("-H")
        inner[i:i + 2] = ["-H", "fd://"]
        return [ACTIVATE, "-l", self.sock, "-E", f"NOTIFY_SOCKET={self.notify_path}",
                "-E", "PYTHONPATH=" + ":".join(sys.path), *inner]


@pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate is not installed")
def test_socket_activation_starts_the_daemon_on_first_connection(request, tmp_path_factory, busybox_tar):
    gen = running_daemon(request, tmp_path_factory, label="activated", make=ActivatedDaemon)
    d = next(gen)
    try:
        assert d.notify.recv(64) == b"READY=1"
        assert "fd://" in d.log_path.read_text()
        d.docker("import", str(busybox_tar), "bb")
        assert d.docker("run", "--rm", "bb", "echo", "activated").stdout == "activated\n"
    finally:
        d.notify.close()
        with pytest.raises(StopIteration):
            next(gen)

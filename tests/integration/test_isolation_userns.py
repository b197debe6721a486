"""`dockyardd --userns-remap default`: container root is an unprivileged
host uid; image layers are idmapped (not copied), volumes owned by the
remapped root."""
from __future__ import annotations

import json
import os
import stat

import pytest

from conftest import running_daemon


def _subid(path: str, name: str) -> int:
    with open(path) as f:
        for line in f:
            parts = line.strip().split(":")
            if parts[0] == name:
                return int(parts[1])
    raise AssertionError(f"{name} not in {path}")


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    """This module's own dockyardd, started with --userns-remap default."""
    yield from running_daemon(request, tmp_path_factory, label="dockyardd-userns",
                              extra_args=("--userns-remap", "default"))


def test_root_is_remapped(daemon, bb_image):
    base = _subid("/etc/subuid", "dockremap")
    r = daemon.docker("run", "--rm", bb_image, "sh", "-c",
                      "id -u; cat /proc/self/uid_map; stat -c %u /etc/passwd; touch /etc/new && echo wrote")
    lines = r.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(base), "65536"]
    assert lines[2] == "0"                      # the image's root-owned files look root-owned inside
    assert lines[3] == "wrote"
    cid = daemon.docker("run", "-d", bb_image, "sleep", "30").stdout.strip()
    try:
        pid = json.loads(daemon.docker("inspect", cid).stdout)[0]["State"]["Pid"]
        assert os.stat(f"/proc/{pid}").st_uid == base     # seen from the host: an unprivileged uid
        # the layers are idmapped mounts of the one unpacked copy, not chowned copies
        idmapped = str(daemon.data_root / "idmapped") + "/"
        with open("/proc/self/mountinfo") as f:
            layer_mounts = [line.split() for line in f if line.split()[4].startswith(idmapped)]
        assert layer_mounts and all("idmapped" in m[5].split(",") for m in layer_mounts)
        owners = {os.stat(p).st_uid for p in (daemon.data_root / "image").glob("layers/*/diff/etc/passwd")}
        assert owners == {0}
    finally:
        daemon.docker("rm", "-f", cid)
    info = json.loads(daemon.docker("info", "--format", "{{json .SecurityOptions}}").stdout)
    assert "name=userns" in info


def test_volume_writable_and_privileged_refused(daemon, bb_image):
    r = daemon.docker("run", "--rm", "-v", "/data", bb_image, "sh", "-c", "echo x > /data/f && cat /data/f")
    assert r.stdout == "x\n"
    r = daemon.docker("run", "--rm", "--privileged", bb_image, "true", check=False)
    assert r.returncode != 0 and "privileged mode is incompatible with user namespaces" in r.stderr
    r = daemon.docker("run", "--rm", "--userns", "host", bb_image, "cat", "/proc/self/uid_map")
    assert r.stdout.split() == ["0", "0", "4294967295"]


def test_data_root_private_but_reached_by_the_remapped_root(daemon, bb_image):
    """dockerd's layout: the data root is 0710 root:<remapped gid>, so other
    users find nothing while a remapped root still reaches its /etc files."""
    st = os.stat(daemon.data_root)
    gid = _subid("/etc/subgid", "dockremap")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o710, 0, gid)
    for user in ("0", "1000"):
        r = daemon.docker("run", "--rm", "--user", user, bb_image, "sh", "-c",
                          "cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null && echo ok")
        assert r.stdout == "ok\n"

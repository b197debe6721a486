"""conmon and the runtime start in a mount namespace without the other
containers' mounts (runtime/mntns.py, issue 16): what a start costs must
not grow with the number of containers running. Each conmon's own
namespace holds its container's rootfs and netns pin, and none of the
others', before and after a daemon crash and re-adoption; exec, restart and
`--runtime runc` start the same way; a bind source mounted on the host after
the namespace was made is what the container sees."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from conftest import Daemon


def _conmon_mounts(daemon: Daemon, cid: str) -> list[str]:
    """The mount points conmon of cid sees (its /proc/PID/mountinfo)."""
    pid = int((daemon.exec_root / "c" / cid / "conmon.pid").read_text().strip())
    return [line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]


def _host_mounts() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def _rootfs(daemon: Daemon, cid: str) -> str:
    return str(daemon.data_root / "rootfs" / cid)


def _netns(daemon: Daemon, cid: str) -> str:
    return str(daemon.exec_root / "netns" / cid)


def _run(daemon: Daemon, image: str, *args: str) -> str:
    return daemon.docker("run", "-d", *args, image, "sleep", "60").stdout.strip()


def _check_alone(daemon: Daemon, cid: str, others: list[str]) -> list[str]:
    seen = _conmon_mounts(daemon, cid)
    assert _rootfs(daemon, cid) in seen and _netns(daemon, cid) in seen
    for o in others:
        assert _rootfs(daemon, o) not in seen, f"{o[:12]}'s rootfs leaked into {cid[:12]}'s conmon"
        assert _netns(daemon, o) not in seen, f"{o[:12]}'s netns pin leaked into {cid[:12]}'s conmon"
    return seen


def test_conmon_sees_only_its_own_container(daemon: Daemon, bb_image: str):
    ids: list[str] = []
    try:
        for _ in range(4):
            ids.append(_run(daemon, bb_image))
        host = _host_mounts()
        for o in ids:      # the daemon's namespace does have them all (cp, export, commit use it)
            assert _rootfs(daemon, o) in host and _netns(daemon, o) in host
        counts = {len(_check_alone(daemon, c, [o for o in ids if o != c])) for c in ids}
        assert len(counts) == 1, f"conmon's mount count grows with the containers running: {counts}"
        # restart (policy or verb) and exec take the same way
        daemon.docker("restart", "-t", "0", ids[0])
        _check_alone(daemon, ids[0], ids[1:])
        assert daemon.docker("exec", ids[1], "cat", "/proc/1/cmdline").stdout.startswith("sleep")
        # a crash: re-adopted containers keep running; the new daemon's namespace leaves them out too
        daemon.kill9()
        daemon.start()
        ids.append(_run(daemon, bb_image))
        _check_alone(daemon, ids[-1], ids[:-1])
        assert daemon.docker("exec", ids[0], "true").returncode == 0
    finally:
        if ids:
            daemon.docker("rm", "-f", *ids, check=False)


def test_runc_conmon_sees_only_its_own_container(daemon: Daemon, bb_image: str):
    if "runc" not in daemon.docker("info", "--format", "{{json .Runtimes}}").stdout:
        pytest.skip("no runc here")
    ids: list[str] = []
    try:
        ids.append(_run(daemon, bb_image))
        ids.append(_run(daemon, bb_image, "--runtime", "runc"))
        _check_alone(daemon, ids[1], ids[:1])
        assert daemon.docker("exec", ids[1], "true").returncode == 0
    finally:
        daemon.docker("rm", "-f", *ids, check=False)


def test_bind_source_mounted_after_the_namespace(daemon: Daemon, bb_image: str, tmp_path: Path):
    """The runtime namespace is a copy taken at the first start: a tmpfs
    mounted on the host later is still what `-v` gives the container (and
    a file inside it), not the directory under it."""
    first = _run(daemon, bb_image)        # the namespace exists by now
    src = tmp_path / "late"
    src.mkdir()
    (src / "under").write_text("the directory under the mount")
    subprocess.run(["mount", "-t", "tmpfs", "dy-late", str(src)], check=True)
    try:
        (src / "marker").write_text("on the tmpfs")
        out = daemon.docker("run", "--rm", "-v", f"{src}:/x", "-v", f"{src / 'marker'}:/m", bb_image,
                            "sh", "-c", "ls /x; cat /m").stdout.split()
        assert out == ["marker", "on", "the", "tmpfs"]
    finally:
        daemon.docker("rm", "-f", first, check=False)
        deadline = time.monotonic() + 5
        while subprocess.run(["umount", str(src)]).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.1)


def _mount_table() -> dict[int, tuple[int, str]]:
    """mount id -> (parent id, mount point), the host's."""
    out = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        f = line.split()
        out[int(f[0])] = (int(f[1]), f[4])
    return out


def test_container_mounts_hang_off_mounts_of_their_own(daemon: Daemon, bb_image: str):
    """The rootfs overlays and netns pins are children of <data-root>/rootfs
    and <exec-root>/netns, each a mount of its own, never of the mount that
    holds the layers, upper dirs and bind sources (whose children the kernel
    walks on every overlay mount and bind clone). A crash keeps those mounts
    for the next daemon (not made twice); a clean stop with no container
    running takes them away."""
    rootfs_dir, netns_dir = str(daemon.data_root / "rootfs"), str(daemon.exec_root / "netns")
    ids: list[str] = []
    try:
        for _ in range(2):
            ids.append(_run(daemon, bb_image))
        daemon.kill9()
        daemon.start()
        ids.append(_run(daemon, bb_image))
        table = _mount_table()
        at = {point: [mid for mid, (_p, pt) in table.items() if pt == point] for point in (rootfs_dir, netns_dir)}
        assert len(at[rootfs_dir]) == 1 and len(at[netns_dir]) == 1, at
        by_point = {pt: parent for _mid, (parent, pt) in table.items()}
        for c in ids:
            assert by_point[_rootfs(daemon, c)] == at[rootfs_dir][0]
            assert by_point[_netns(daemon, c)] == at[netns_dir][0]
        upper_mount = max((pt for _p, pt in table.values() if str(daemon.data_root).startswith(pt.rstrip("/") + "/")
                           or pt == "/"), key=len)
        upper_id = [mid for mid, (_p, pt) in table.items() if pt == upper_mount][-1]
        children = [pt for _mid, (parent, pt) in table.items() if parent == upper_id]
        assert not [pt for pt in children if pt.startswith(str(daemon.data_root))
                    and pt != rootfs_dir], children
    finally:
        daemon.docker("rm", "-f", *ids, check=False)
    daemon.stop()
    left = [pt for _p, pt in _mount_table().values() if pt in (rootfs_dir, netns_dir)]
    daemon.start()
    assert not left, f"a clean stop with nothing running left {left} mounted"

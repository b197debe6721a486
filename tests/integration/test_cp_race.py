"""docker cp against a hostile container (the CVE-2018-15664 race).

While `docker cp` reads or writes `/w/d/tmp/<u>/...`, the container swaps its
directory `/w/d` with a symlink `/w/l -> /` in a tight loop
(`renameat2(RENAME_EXCHANGE)`). A daemon that resolves the container path to a
host path string and walks that string again follows the symlink on the host
and reads `/tmp/<u>/secret` of the *host*, or writes into the host's
`/tmp/<u>/`. The swapper runs as a separate process on the container's merged
root: the daemon sees exactly what a process inside the container would make
it see (the same overlay), without needing a compiler for a static binary
inside a busybox image.

Each side is counted so the test cannot pass with a dead swapper: some reads
must have met the directory and some the swapped-in symlink.
"""
from __future__ import annotations

import io
import json
import secrets
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
from pathlib import Path

import pytest

ATTEMPTS = 500

SWAPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = (os.fsencode(p) for p in sys.argv[1:3])
AT_FDCWD, RENAME_EXCHANGE = -100, 2
print("ready", flush=True)
while True:
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
"""


def _tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _read_one(tar: bytes) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            m = tf.next()
            f = tf.extractfile(m) if m is not None and m.isreg() else None
            return f.read() if f else b"<no file>"
    except tarfile.TarError:
        return b"<bad tar>"


@pytest.fixture(params=["rootfs", "volume"])
def hostile(request, daemon, bb_image):
    """The race in the container's rootfs (resolved with openat2 where the
    kernel has it) and inside a volume mounted at /w (resolved by the walk
    that switches into the volume's host directory)."""
    u = f"dyrace-{secrets.token_hex(4)}"
    host_dir = Path("/tmp") / u
    host_dir.mkdir(mode=0o700)
    (host_dir / "secret").write_bytes(b"HOST")
    name = f"race-{secrets.token_hex(3)}"
    volume = ["-v", f"{name}:/w"] if request.param == "volume" else []
    daemon.docker("run", "-d", "--name", name, "--network", "none", *volume, bb_image, "sleep", "3600")
    daemon.docker("exec", name, "sh", "-c",
                  f"mkdir -p /w/d/tmp/{u} /tmp/{u} && echo -n DIR > /w/d/tmp/{u}/secret "
                  f"&& echo -n ROOT > /tmp/{u}/secret && ln -s / /w/l")
    info = json.loads(daemon.docker("inspect", name).stdout)[0]
    if volume:
        w = Path(next(m["Source"] for m in info["Mounts"] if m["Destination"] == "/w"))
    else:
        w = Path(info["GraphDriver"]["Data"]["MergedDir"]) / "w"
    assert (w / "l").is_symlink()
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(w / "d"), str(w / "l")],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert swapper.stdout.readline().strip() == "ready"
        yield name, u, host_dir, swapper
    finally:
        swapper.kill()
        swapper.wait()
        daemon.docker("rm", "-f", "-v", name, check=False)
        if volume:
            daemon.docker("volume", "rm", name, check=False)
        shutil.rmtree(host_dir, ignore_errors=True)


@pytest.mark.integration
def test_cp_race_reads_and_writes_stay_inside(daemon, hostile):
    name, u, host_dir, swapper = hostile
    # reads: GET /containers/{id}/archive?path=/w/d/tmp/<u>/secret
    path = urllib.parse.quote(f"/w/d/tmp/{u}/secret")
    seen: dict[bytes, int] = {}
    for _ in range(ATTEMPTS):
        status, body = daemon.api("GET", f"/containers/{name}/archive?path={path}")
        key = _read_one(body) if status == 200 else f"status {status}".encode()
        seen[key] = seen.get(key, 0) + 1
    escapes = sum(n for k, n in seen.items() if k.startswith(b"HOS"))    # whole or cut short
    assert escapes == 0, f"host file read through the container: {seen}"
    # the race really ran: both the directory and the swapped-in symlink (-> the
    # container's own /) were met
    assert seen.get(b"DIR", 0) > 0 and seen.get(b"ROOT", 0) > 0, seen
    assert set(seen) <= {b"DIR", b"ROOT"}, seen

    # writes: PUT a new file into /w/d/tmp/<u>/ each time
    dest = urllib.parse.quote(f"/w/d/tmp/{u}")
    codes: dict[int, int] = {}
    for i in range(ATTEMPTS):
        status, _ = daemon.api("PUT", f"/containers/{name}/archive?path={dest}",
                               body=_tar_of(f"pwned-{i}", b"x"),
                               headers={"Content-Type": "application/x-tar"})
        codes[status] = codes.get(status, 0) + 1
    assert swapper.poll() is None, "the swapper died: the race was not run"
    swapper.kill()
    swapper.wait()
    escaped = sorted(p.name for p in host_dir.iterdir() if p.name != "secret")
    assert escaped == [], f"{len(escaped)} files written on the host: {escaped[:5]}"
    assert (host_dir / "secret").read_bytes() == b"HOST"
    assert codes.get(200, 0) > 0, codes
    # every write that succeeded landed inside the container: in the directory
    # (now under one of the two names) or in the container's own /tmp/<u>
    inside = daemon.docker("exec", name, "sh", "-c",
                           f"ls /w/d/tmp/{u} /w/l/tmp/{u} | grep -c pwned-").stdout.strip()
    assert int(inside) == codes.get(200, 0), (inside, codes)

"""The exec path has no waits of its own: conmon --exec's answers are acted
on as they come (a fake conmon plays the protocol here), and the runtime
`exec` runs is a sealed copy, so it does not re-execute itself."""
from __future__ import annotations

import asyncio
import fcntl
import json
import os
import subprocess
import time

from dockyard.runtime import conmon, sealed

# the first process forks the real "conmon" and then lingers before it
# exits: the exec must not wait for it (the real first conmon exits at once,
# but waiting for it put a child-watcher round trip on every exec)
FAKE_CONMON = r"""#!/usr/bin/env python3
import os, sys, time
if os.fork():
    time.sleep(3)
    sys.exit(0)
start, att, sync = (int(os.environ[k]) for k in ("_OCI_STARTPIPE", "_OCI_ATTACHPIPE", "_OCI_SYNCPIPE"))
os.read(start, 1)
os.write(att, b'{"data": 0}\n')
os.read(start, 1)
with open(os.path.join(os.getcwd(), "argv"), "w") as f:
    f.write("\n".join(sys.argv))
with open(sys.argv[sys.argv.index("--exec-process-spec") + 1]) as f, open("spec-seen", "w") as out:
    out.write(f.read())
os.write(sync, b'{"data": 4242}\n{"data": 7}\n')
"""


def test_exec_returns_as_soon_as_conmon_reports(tmp_path, monkeypatch):
    fake = tmp_path / "conmon"
    fake.write_text(FAKE_CONMON)
    fake.chmod(0o755)
    monkeypatch.setattr(conmon, "CONMON", str(fake))
    exec_dir = tmp_path / "x"
    exec_dir.mkdir()
    attached = []

    async def run():
        t0 = time.monotonic()
        p = await conmon.exec_("c" * 64, "e" * 64, "n", ["/rt", "--library-path", "/lib", "/crun"], "/root",
                               exec_dir=str(exec_dir), socket_dir=str(tmp_path / "s"),
                               spec={"args": ["true"]}, tty=False, stdin=False,
                               on_attach=attached.append)
        code = await p.wait()
        return p.pid, code, time.monotonic() - t0

    pid, code, took = asyncio.run(run())
    assert (pid, code) == (4242, 7)
    assert took < 1.5, f"exec waited {took:.2f}s for the first conmon to exit"
    assert attached == [str(tmp_path / "s" / ("e" * 64) / "attach")]
    # the spec reached the runtime's side through a memfd: no file of it, nor of conmon's stderr
    assert json.loads((exec_dir / "spec-seen").read_text()) == {"args": ["true"]}
    assert sorted(os.listdir(exec_dir)) == ["argv", "spec-seen"]
    argv = (exec_dir / "argv").read_text().split("\n")
    # the runtime's leading arguments come right after -r, before --root
    i = argv.index("-r")
    assert argv[i:i + 9] == ["-r", "/rt", "--runtime-arg", "--library-path", "--runtime-arg", "/lib",
                             "--runtime-arg", "/crun", "--runtime-arg"]
    assert argv[i + 9] == "--root"
    # no persist dir: its exit file would be one more inode made and freed per exec
    assert "--persist-dir" not in argv and argv[argv.index("--exit-dir") + 1] == str(exec_dir)


def test_sealed_copy_runs_and_cannot_change(tmp_path):
    prog = sealed.SealedArgv(["/bin/true", "--ignored"])
    argv = prog.get()
    assert argv[0].startswith(f"/proc/{os.getpid()}/fd/") and argv[1:] == ["--ignored"]
    assert prog.get() is argv                      # made once
    fd = int(argv[0].rsplit("/", 1)[1])
    assert fcntl.fcntl(fd, 1034) == sealed.SEALS   # F_GET_SEALS: what crun's is_self_cloned() checks
    with open("/bin/true", "rb") as f:
        assert os.pread(fd, 1 << 24, 0) == f.read()
    try:
        os.write(fd, b"x")
        raise AssertionError("a sealed copy took a write")
    except PermissionError:
        pass
    assert subprocess.run([argv[0]]).returncode == 0


def test_sealed_argv_falls_back_to_the_program(tmp_path):
    missing = str(tmp_path / "nope")
    assert sealed.SealedArgv([missing, "a"]).get() == [missing, "a"]


def test_conmon_argv_without_lead_is_unchanged():
    a = conmon.argv("/rt", "/root", "c", "u", "n", bundle="/b", pidfile="/p", conmon_pidfile="/cp", log="none",
                    exit_dir="/e", socket_dir="/s")
    i = a.index("-r")
    assert a[i:i + 6] == ["-r", "/rt", "--runtime-arg", "--root", "--runtime-arg", "/root"]

"""The per-container supervisor: conmon (C, ~2 MB, from Debian).

conmon runs `<runtime> create`, holds the container's stdio, writes the
log, serves the attach socket and records the exit status in a file. It
double-forks, so containers outlive the daemon. We learn exits without
polling through a pidfd on the conmon process: it becomes readable when
conmon exits, right after it wrote the exit file.

Sync protocol (conmon --api-version 1): conmon writes one JSON line on the
fd named by _OCI_SYNCPIPE once the runtime created the container:
{"data": <pid>} or {"data": -1, "message": "<runtime's error>"}.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass

from ..errors import SystemError_
from .runtimes import Runtime

CONMON = shutil.which("conmon") or "/usr/bin/conmon"


@dataclass
class Paths:
    """Where conmon and the runtime keep a container's live files."""
    bundle: str        # exec_root/c/<id>  (0700; config.json, pidfiles, persist dir)
    exit_dir: str      # exec_root/exits   (one file per container: its exit code)
    socket_dir: str    # exec_root/s       (short path: unix sockets are limited to 108 bytes)
    log_path: str      # data_root/containers/<id>/ctr.log  (k8s-file format)

    @property
    def pidfile(self) -> str:
        return os.path.join(self.bundle, "pidfile")

    @property
    def conmon_pidfile(self) -> str:
        return os.path.join(self.bundle, "conmon.pid")

    @property
    def conmon_err(self) -> str:
        return os.path.join(self.bundle, "conmon.err")

    def exit_file(self, cid: str) -> str:
        return os.path.join(self.exit_dir, cid)

    def attach_socket(self, cuuid: str) -> str:
        return os.path.join(self.socket_dir, cuuid, "attach")

    @property
    def oom_file(self) -> str:
        return os.path.join(self.bundle, "oom")


class CreateFailed(Exception):
    """The runtime refused to create the container; message is its error."""


async def _read_line(fd: int, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    buf = bytearray()
    done = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        if not chunk or b"\n" in chunk:
            buf.extend(chunk)
            if not done.done():
                done.set_result(None)
        else:
            buf.extend(chunk)

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(fd)
    return bytes(buf)


async def create(cid: str, name: str, runtime: Runtime, paths: Paths, *, tty: bool, stdin: bool,
                 no_pivot: bool, log_level: str = "info", timeout: float = 60,
                 restore: str | None = None, runtime_args: list[str] = (), runtime_opts: list[str] = (),
                 extra_env: dict[str, str] | None = None, stdin_once: bool = False,
                 keep_log: bool = True) -> tuple[int, int]:
    """Launch conmon, which runs `runtime create` (or, given a checkpoint's
    image dir as `restore`, `runtime restore --detach`: the container then
    runs already). Returns (container pid, conmon pid). Raises CreateFailed
    with the runtime's message."""
    for d in (paths.exit_dir, paths.socket_dir):
        os.makedirs(d, exist_ok=True)
    try:
        os.unlink(paths.exit_file(cid))
    except FileNotFoundError:
        pass
    args = [CONMON, "--api-version", "1", "-c", cid, "-u", cid[:12], "-n", name,
            "-r", runtime.path, "--runtime-arg", "--root", "--runtime-arg", runtime.root,
            "-b", paths.bundle, "-p", paths.pidfile, "-P", paths.conmon_pidfile,
            "-l", f"k8s-file:{paths.log_path}" if keep_log else "none", "--exit-dir", paths.exit_dir,
            "--socket-dir-path", paths.socket_dir, "--persist-dir", paths.bundle,
            "--log-level", log_level]
    for a in runtime_args:
        args += ["--runtime-arg", a]
    if restore:
        args += ["--restore", restore]
        for o in runtime_opts:
            args += [f"--runtime-opt={o}"]
    if tty:
        args.append("-t")
    if stdin:
        # StdinOnce without a TTY (docker run -i): the attached client's EOF closes stdin
        args += ["-i"] if stdin_once else ["-i", "--leave-stdin-open"]
    if no_pivot:
        args.append("--no-pivot")
    r, w = os.pipe()
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **(extra_env or {}),
           "_OCI_SYNCPIPE": str(w)}
    err = os.open(paths.conmon_err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, pass_fds=(w,), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=err, start_new_session=True,
            cwd=paths.bundle)   # conmon 2.1 writes its `oom` marker into its cwd too, besides --persist-dir
    finally:
        os.close(w)
        os.close(err)
    try:
        await proc.wait()   # the first conmon forks the real one and exits at once
        line = await _read_line(r, timeout)
    finally:
        os.close(r)
    conmon_pid = _read_int(paths.conmon_pidfile)
    if not line:
        raise CreateFailed(_conmon_error(paths) or "conmon exited without reporting a pid")
    try:
        msg = json.loads(line.splitlines()[0])
    except ValueError:
        raise CreateFailed(f"conmon sent garbage: {line[:200]!r}") from None
    pid = int(msg.get("data", -1))
    if pid <= 0:
        raise CreateFailed(msg.get("message") or _conmon_error(paths) or "runtime create failed")
    return pid, conmon_pid


def _conmon_error(paths: Paths) -> str:
    try:
        with open(paths.conmon_err) as f:
            lines = [l.strip() for l in f if ":e]" in l or "error" in l.lower()]
        return "; ".join(lines[-3:])
    except OSError:
        return ""


def _read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def read_exit_code(paths: Paths, cid: str) -> int | None:
    """The exit code conmon recorded, or None if it recorded none."""
    try:
        with open(paths.exit_file(cid)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def conmon_pid(paths: Paths) -> int:
    return _read_int(paths.conmon_pidfile)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def is_conmon_for(pid: int, cid: str) -> bool:
    """Guard against PID reuse after a daemon restart."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return bool(argv) and argv[0].endswith(b"conmon") and cid.encode() in argv

"""The per-container supervisor: conmon (C, ~2 MB, from Debian).

conmon runs `<runtime> create`, holds the container's stdio, writes the
log, serves the attach socket and records the exit status in a file. It
double-forks, so containers outlive the daemon. We learn exits without
polling through a pidfd on the conmon process: it becomes readable when
conmon exits, right after it wrote the exit file.

Sync protocol (conmon --api-version 1): conmon writes one JSON line on the
fd named by _OCI_SYNCPIPE once the runtime created the container:
{"data": <pid>} or {"data": -1, "message": "<runtime's error>"}.

An exec (conmon --exec, podman's protocol) has its own conmon, and more pipes:
- _OCI_STARTPIPE: conmon blocks on one read before forking; with
  --exec-attach its child blocks on a second read before `runtime exec`,
  so the caller connects to the attach socket first and loses no output.
- _OCI_ATTACHPIPE: conmon writes {"data": 0} once the attach socket listens.
- _OCI_SYNCPIPE: {"data": pid} once the process runs (or a negative value
  and the runtime's message), then {"data": exit status} when it ends.

argv() is the one place conmon's command line is built. Callers go through
runtimes.Runtime (create, restore, exec), which passes the runtime.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .child import Child

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
    """The runtime refused to create the container (or to exec); message is its error."""


class SessionFailed(CreateFailed):
    """conmon itself failed before the runtime ran (an exec's attach socket
    never came up); message is conmon's error."""


def argv(runtime_path: str, runtime_root: str, cid: str, uuid: str, name: str, *, bundle: str,
         pidfile: str, conmon_pidfile: str, log: str, exit_dir: str, socket_dir: str,
         log_level: str = "info", tty: bool = False, stdin: bool = False, leave_stdin_open: bool = False,
         no_pivot: bool = False, exec_spec: str | None = None, exec_attach: bool = False,
         restore: str | None = None, runtime_args: Sequence[str] = (),
         runtime_opts: Sequence[str] = (), runtime_lead: Sequence[str] = (),
         persist: bool = True) -> list[str]:
    """conmon's command line, for a container (`runtime create`, or
    `runtime restore` given a checkpoint's image dir) and for an exec
    (`exec_spec`: `runtime exec --process`) alike. conmon writes its `oom`
    marker into --persist-dir (the bundle; not persist: none, as for an
    exec, whose exit code is read from exit_dir alone). runtime_lead:
    arguments that come right after runtime_path, before --root (a loader's
    --library-path and program)."""
    lead = [a for arg in runtime_lead for a in ("--runtime-arg", arg)]
    args = [CONMON, "--api-version", "1", "-c", cid, "-u", uuid, "-n", name,
            "-r", runtime_path, *lead, "--runtime-arg", "--root", "--runtime-arg", runtime_root,
            "-b", bundle, "-p", pidfile, "-P", conmon_pidfile, "-l", log,
            "--exit-dir", exit_dir, "--socket-dir-path", socket_dir,
            *(("--persist-dir", bundle) if persist else ()), "--log-level", log_level]
    if exec_spec:
        args += ["-e", "--exec-process-spec", exec_spec]
    for a in runtime_args:
        args += ["--runtime-arg", a]
    if restore:
        args += ["--restore", restore]
        for o in runtime_opts:
            args += [f"--runtime-opt={o}"]
    if tty:
        args.append("-t")
    if stdin:
        args += ["-i", "--leave-stdin-open"] if leave_stdin_open else ["-i"]
    if no_pivot:
        args.append("--no-pivot")
    if exec_attach:
        args.append("--exec-attach")
    return args


Enter = tuple[Sequence[str], Sequence[int]]
"""argv run before conmon's (mntns.RuntimeNamespace.prefix: dockyard-enter) and the fds it takes."""


async def _spawn(args: list[str], bundle: str, pipes: dict[str, int],
                 extra_env: dict[str, str] | None = None, enter: Enter = ((), ()),
                 stderr: int | None = None) -> Child:
    """Start the first conmon (it forks the real one and exits) with
    the named pipe fds (closed here), stderr into bundle/conmon.err (or the
    caller's fd `stderr`), in its own session, cwd the bundle (conmon 2.1
    writes `oom` into its cwd too); through `enter` (its fds closed here
    too) when given."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **(extra_env or {}),
           **{k: str(fd) for k, fd in pipes.items()}}
    prefix, carried = enter
    args = [*prefix, *args]
    fds = (*pipes.values(), *carried)
    try:
        err = (os.open(os.path.join(bundle, "conmon.err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
               if stderr is None else stderr)
        try:
            proc = Child(subprocess.Popen(
                args, pass_fds=fds, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, cwd=bundle))
        finally:
            if stderr is None:
                os.close(err)
    finally:
        for fd in fds:
            os.close(fd)
    return proc


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


async def create(cid: str, name: str, runtime_path: str, runtime_root: str, paths: Paths, *, tty: bool,
                 stdin: bool, no_pivot: bool, log_level: str = "info", timeout: float = 60,
                 restore: str | None = None, runtime_args: Sequence[str] = (), runtime_opts: Sequence[str] = (),
                 extra_env: dict[str, str] | None = None, stdin_once: bool = False,
                 keep_log: bool = True, enter: Enter = ((), ())) -> tuple[int, int]:
    """Launch conmon, which runs `runtime create` (or, given a checkpoint's
    image dir as `restore`, `runtime restore --detach`: the container then
    runs already). Returns (container pid, conmon pid). Raises CreateFailed
    with the runtime's message."""
    try:
        for d in (paths.exit_dir, paths.socket_dir):
            os.makedirs(d, exist_ok=True)
        try:
            os.unlink(paths.exit_file(cid))
        except FileNotFoundError:
            pass
        r, w = os.pipe()
    except BaseException:
        for fd in enter[1]:     # _spawn closes them once it runs
            os.close(fd)
        raise
    args = argv(runtime_path, runtime_root, cid, cid[:12], name, bundle=paths.bundle, pidfile=paths.pidfile,
                conmon_pidfile=paths.conmon_pidfile,
                log=f"k8s-file:{paths.log_path}" if keep_log else "none",
                exit_dir=paths.exit_dir, socket_dir=paths.socket_dir, log_level=log_level,
                tty=tty, stdin=stdin,
                # StdinOnce without a TTY (docker run -i): the attached client's EOF closes stdin
                leave_stdin_open=not stdin_once, no_pivot=no_pivot,
                restore=restore, runtime_args=runtime_args, runtime_opts=runtime_opts)
    try:
        proc = await _spawn(args, paths.bundle, {"_OCI_SYNCPIPE": w}, extra_env, enter)
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


_pending: set[asyncio.Future] = set()   # first conmons being reaped


class ExecProcess:
    """An exec conmon supervises: its pid, and its exit status to come on
    the sync pipe."""

    def __init__(self, pid: int, messages: "Messages"):
        self.pid = pid
        self._messages = messages

    async def wait(self) -> int | None:
        """The exit status conmon reports; None when conmon ended without a word."""
        try:
            msg = await self._messages.next(None)
            return int(msg.get("data", 255)) if msg is not None else None
        except (ValueError, OSError):
            return None
        finally:
            os.close(self._messages.fd)


async def exec_(cid: str, uuid: str, name: str, runtime: Sequence[str], runtime_root: str, *, exec_dir: str,
                socket_dir: str, spec: dict, tty: bool, stdin: bool,
                on_attach: Callable[[str], None] | None = None, enter: Enter = ((), ())) -> ExecProcess:
    """Launch conmon --exec, which runs `runtime exec --process` with the
    process spec `spec` in container cid (runtime: the program and its
    leading arguments); exec_dir is its bundle, pidfiles and exit dir.
    The spec and conmon's stderr are memfds, not files: every file made in
    exec_dir is an inode allocated and freed per exec (~0.3 ms each on an
    ext4 exec root under load). With
    on_attach, conmon's attach socket is up before the runtime runs: it is
    called with the socket's path first, so no output is lost (podman's
    _OCI_STARTPIPE/_OCI_ATTACHPIPE handshake). Raises SessionFailed when
    conmon gave up before that, CreateFailed with the runtime's message."""
    attach = on_attach is not None
    spec_fd = memfd("process.json", json.dumps(spec).encode())
    err = memfd("conmon.err")
    try:
        args = argv(runtime[0], runtime_root, cid, uuid, name, bundle=exec_dir, runtime_lead=runtime[1:],
                    pidfile=os.path.join(exec_dir, "pid"), conmon_pidfile=os.path.join(exec_dir, "conmon.pid"),
                    log="none", exit_dir=exec_dir, socket_dir=socket_dir,
                    exec_spec=f"/proc/{os.getpid()}/fd/{spec_fd}",   # the runtime reads it before it reports
                    tty=tty, stdin=attach and stdin, exec_attach=attach, persist=False)
        return await _exec(args, uuid, exec_dir, socket_dir, attach, on_attach, enter, err)
    finally:
        os.close(spec_fd)
        os.close(err)


def memfd(name: str, data: bytes = b"") -> int:
    """A close-on-exec memfd holding data (a file no disk sees)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return fd


def _fd_tail(fd: int) -> str:
    """The last 500 characters written to a memfd (conmon's stderr)."""
    size = os.fstat(fd).st_size
    return os.pread(fd, 500, max(0, size - 500)).decode(errors="replace").strip()


async def _exec(args: list[str], uuid: str, exec_dir: str, socket_dir: str, attach: bool,
                on_attach: Callable[[str], None] | None, enter: Enter, err: int) -> ExecProcess:
    sync_r, sync_w = os.pipe()
    pipes = {"_OCI_SYNCPIPE": sync_w}
    start_w = att_r = -1
    if attach:
        start_r, start_w = os.pipe()
        att_r, att_w = os.pipe()
        pipes.update(_OCI_STARTPIPE=start_r, _OCI_ATTACHPIPE=att_w)
    try:
        proc = await _spawn(args, exec_dir, pipes, enter=enter, stderr=err)
        if attach:
            os.write(start_w, b"0")          # conmon may fork now
        # the first conmon exits after forking; its child answers meanwhile, so
        # it is reaped alongside rather than waited for first
        reaped = asyncio.ensure_future(proc.wait())
        _pending.add(reaped)
        reaped.add_done_callback(_pending.discard)
        if attach:
            if not await _read_line(att_r, 30):
                raise SessionFailed(_fd_tail(err) or "conmon exited before the exec session was ready")
            assert on_attach is not None
            on_attach(Paths(exec_dir, exec_dir, socket_dir, "").attach_socket(uuid))
            os.write(start_w, b"0")          # child may run `runtime exec` now
        messages = Messages(sync_r)
        first = await messages.next(60)
        pid = int(first.get("data", -1)) if first else -1
        if pid <= 0:
            raise CreateFailed((first or {}).get("message") or _fd_tail(err) or "runtime exec failed")
    except BaseException:
        os.close(sync_r)
        raise
    finally:
        for fd in (start_w, att_r):
            if fd >= 0:
                os.close(fd)
    return ExecProcess(pid, messages)


class Messages:
    """JSON lines from a conmon pipe, keeping what one read brought beyond
    the first line (a fast exit sends pid and status together)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = bytearray()
        self.eof = False
        os.set_blocking(fd, False)

    async def next(self, timeout: float | None) -> dict | None:
        """The next message; None on EOF."""
        while b"\n" not in self.buf and not self.eof:
            await self._fill(timeout)
        if b"\n" in self.buf:
            line, _, rest = bytes(self.buf).partition(b"\n")
            self.buf = bytearray(rest)
        else:
            line, self.buf = bytes(self.buf), bytearray()
        line = line.strip()
        return json.loads(line) if line else None

    async def _fill(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def readable() -> None:
            try:
                chunk = os.read(self.fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf.extend(chunk)
            if not done.done():
                done.set_result(None)

        loop.add_reader(self.fd, readable)
        try:
            await asyncio.wait_for(done, timeout)
        finally:
            loop.remove_reader(self.fd)


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

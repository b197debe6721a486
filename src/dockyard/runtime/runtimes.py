"""The OCI runtime binaries (crun default, runc selectable).

The crun used is the one scripts/install-crun.sh unpacks into a private
prefix (PRIVATE_CRUN_PREFIX: Debian testing's, built with CRIU, so
checkpoint/restore works on the default runtime) when it is there and
runs, else the system's. The private one runs through its prefix's loader
(see crun_hybrid.c, which execs that loader directly).

crun 1.8 refuses to create containers on a cgroup-v1 hybrid host whose
/sys/fs/cgroup/unified/cgroup.controllers is not empty. We handle that by
running crun through a tiny helper (crun_hybrid.c, compiled once per boot;
a shell script with `unshare` where there is no compiler) that enters a
private mount namespace where that file reads empty; runc needs nothing.
When crun cannot work at all (binary missing, no `unshare`) we fall back
to runc.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import InvalidParameter, NotImplementedYet, SystemError_
from . import checkpoint as rtc
from . import conmon
from .child import Child
from .criu import Criu
from .mntns import RuntimeNamespace
from .oci import ExecResult
from .sealed import SealedArgv

log = logging.getLogger("dockyard.runtime")

HYBRID_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"
KNOWN = ("crun", "runc")
PRIVATE_CRUN_PREFIX = "/opt/dockyard-crun"
F_SETPIPE_SZ = 1031


@dataclass(frozen=True)
class PrivateCrun:
    """A crun in a private prefix (scripts/install-crun.sh): `wrapper` runs it
    from anywhere (a shell script); the rest is what that script execs."""
    wrapper: str
    loader: str
    library_path: str
    binary: str


def private_crun(prefix: str = PRIVATE_CRUN_PREFIX) -> PrivateCrun | None:
    """The prefix's crun as its crun.env describes it, when every file named
    there exists; None otherwise."""
    try:
        with open(os.path.join(prefix, "crun.env")) as f:
            env = dict(line.strip().split("=", 1) for line in f
                       if "=" in line and not line.lstrip().startswith("#"))
    except (OSError, ValueError):
        return None
    try:
        pc = PrivateCrun(os.path.join(prefix, "bin", "crun"), env["CRUN_LOADER"],
                         env["CRUN_LIBRARY_PATH"], env["CRUN_BINARY"])
    except KeyError:
        return None
    if not all(os.access(p, os.X_OK) for p in (pc.wrapper, pc.loader, pc.binary)):
        return None
    return pc


def hybrid_needs_mask() -> bool:
    try:
        with open(HYBRID_CONTROLLERS) as f:
            return bool(f.read().strip())
    except OSError:
        return False


@dataclass
class PipedExec:
    """A running Runtime.exec_piped: the runtime's process, our ends of the
    process's pipes (stdin -1 when it has none; all non-blocking), and the
    memfds the runtime writes the process's pid and its own errors into.
    spec_w: while not -1, the runtime waits at this pipe for its process spec
    (release sends it; see Runtime.exec_piped)."""
    proc: Child
    stdin: int
    stdout: int
    stderr: int
    pid_fd: int
    log_fd: int
    spec_w: int = -1

    def __post_init__(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd >= 0:
                os.set_blocking(fd, False)

    def release(self, spec: bytes) -> None:
        """Hand the waiting runtime its process spec: it goes on from there
        (joins the container, runs the process). The pipe was sized for it."""
        fd, self.spec_w = self.spec_w, -1
        try:
            view = memoryview(spec)
            while view:
                view = view[os.write(fd, view):]
        except OSError:   # the runtime is gone already (its log says why)
            pass
        finally:
            os.close(fd)

    def pid(self) -> int:
        """The process's pid once the runtime has written it, else the runtime's."""
        try:
            return int(os.pread(self.pid_fd, 32, 0) or 0) or self.proc.pid
        except (OSError, ValueError):
            return self.proc.pid

    def runtime_error(self) -> str:
        """What the runtime logged as its own failure (empty when the process ran)."""
        try:
            text = os.pread(self.log_fd, 65536, 0).decode(errors="replace")
        except OSError:
            return ""
        msgs, at, dec = [], 0, json.JSONDecoder()
        while True:      # JSON records one after another (crun pretty-prints each)
            while at < len(text) and text[at].isspace():
                at += 1
            if at >= len(text):
                break
            try:
                rec, at = dec.raw_decode(text, at)
            except ValueError:
                msgs.append(text[at:].strip())
                break
            if isinstance(rec, dict) and rec.get("level") in ("error", "fatal") and rec.get("msg"):
                msgs.append(str(rec["msg"]))
        return "; ".join(msgs)

    def close_stdin(self) -> None:
        if self.stdin >= 0:
            os.close(self.stdin)
            self.stdin = -1

    def close(self) -> None:
        for name in ("spec_w", "stdin", "stdout", "stderr", "pid_fd", "log_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, -1)


@dataclass
class Runtime:
    """crun or runc: the verbs of oci.OCIRuntime. Each takes the container's
    id; what differs between the two stays in here (and in checkpoint.py)."""
    name: str            # "crun" | "runc"
    binary: str          # the real binary
    path: str            # what conmon and we execute (may be the wrapper)
    root: str            # --root: per-daemon state dir, so test daemons never mix
    libseccomp: str = "libseccomp.so.2"    # the one the binary links (seccomp_bpf compiles with it)
    mntns: RuntimeNamespace | None = None  # where conmon starts (None: the daemon's namespace)
    # what `exec` runs instead of path, sealed (sealed.py): the real program, no wrapper; None: path
    exec_program: SealedArgv | None = None

    def _argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root, *args]

    def _entered_argv(self, *args: str) -> list[str]:
        """_argv run in the runtime mount namespace (see mntns.py; nothing
        carried in): crun 1.28 reads all of /proc/mounts on every exec."""
        return [*self._enter([])[0], *self._argv(*args)]

    def _exec_argv(self) -> list[str]:
        """The runtime as `exec` runs it: the sealed copy when there is one."""
        return self.exec_program.get() if self.exec_program is not None else [self.path]

    async def _run(self, *args: str, check: bool = True, timeout: float = 30) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *self._entered_argv(*args), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise SystemError_(f"{self.name} {args[0]} timed out") from None
        text = out.decode(errors="replace").strip()
        if check and proc.returncode != 0:
            raise SystemError_(f"{self.name} {args[0]} failed: {text}")
        return proc.returncode, text

    @property
    def _scratch(self) -> str:
        """A dir of ours for the files a verb hands the runtime (not its --root)."""
        return os.path.dirname(self.root)

    # ------------------------------------------------------------ create / start
    async def create(self, cid: str, name: str, paths: conmon.Paths, *, tty: bool, stdin: bool,
                     no_pivot: bool, stdin_once: bool = False, keep_log: bool = True,
                     log_level: str = "info", carry: list[str] | None = None) -> tuple[int, int]:
        """`create` through conmon, which keeps running as the container's
        supervisor. Returns (container pid, conmon pid); raises
        conmon.CreateFailed with the runtime's message. carry: the paths
        conmon needs moved into the runtime namespace (mntns.carried_paths);
        None starts it in the daemon's."""
        return await conmon.create(cid, name, self.path, self.root, paths, tty=tty, stdin=stdin,
                                   no_pivot=no_pivot, log_level=log_level, stdin_once=stdin_once,
                                   keep_log=keep_log, enter=self._enter(carry))

    def _enter(self, carry: list[str] | None) -> conmon.Enter:
        return self.mntns.prefix(carry) if self.mntns is not None else ((), ())

    async def start(self, cid: str) -> None:
        """`<runtime> start`, without the process: release the container's
        init from its exec fifo ourselves (what `start` does inside, minus
        hooks we never set). Falls back to the real command on any surprise."""
        try:
            await asyncio.to_thread(self._release_exec_fifo, cid)
        except OSError as e:
            log.debug("exec fifo start of %s failed (%s); using `%s start`", cid[:12], e, self.name)
            await self._run("start", cid)

    def _release_exec_fifo(self, cid: str) -> None:
        fifo = os.path.join(self.root, cid, "exec.fifo")
        if self.name == "crun":
            # crun's init reads one byte; create left a reader open, so this never blocks
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                os.unlink(fifo)
                os.write(fd, b"\0")
            finally:
                os.close(fd)
            return
        # runc's init blocks opening the fifo for writing, writes "0", then execs
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(10_000):
                raise OSError("timed out waiting for the container's init")
            if not os.read(fd, 1):
                raise OSError("container init exited before start")
        finally:
            os.close(fd)
        os.unlink(fifo)

    # ------------------------------------------------------------ signals, freezer, limits
    async def kill(self, cid: str, sig: int, *, all_processes: bool = False) -> None:
        """`<runtime> kill`. (The daemon signals its containers through a
        pidfd, which needs no process; this is the runtime's way.)"""
        await self._run("kill", *(["--all"] if all_processes else []), cid, str(int(sig)))

    async def pause(self, cid: str) -> None:
        """Freeze the container's cgroup (v1 freezer or v2 cgroup.freeze)."""
        code, out = await self._run("pause", cid, check=False)
        if code != 0:
            raise SystemError_(f"Cannot pause container {cid}: {out}")

    async def resume(self, cid: str, *, check: bool = True) -> None:
        """Thaw it; check=False for a best-effort thaw (before SIGKILL, rm -f)."""
        code, out = await self._run("resume", cid, check=False)
        if check and code != 0:
            raise SystemError_(f"Cannot unpause container {cid}: {out}")

    async def update(self, cid: str, resources: dict) -> None:
        """Apply OCI `linux.resources` to a live container (the runtime
        writes the cgroup v1 or v2 files in the right order)."""
        fd, path = tempfile.mkstemp(prefix="update-", suffix=".json", dir=self._scratch)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(resources, f)
            code, out = await self._run("update", "--resources", path, cid, check=False)
        finally:
            os.unlink(path)
        if code != 0:
            low = out.lower()
            if "out of range" in low or "invalid argument" in low:
                # the kernel refused a value the client sent (ERANGE/EINVAL writing a cgroup file):
                # bad input, not a daemon failure
                raise InvalidParameter(f"Cannot update container {cid}: {out}")
            raise SystemError_(f"Cannot update container {cid}: {out}")

    # ------------------------------------------------------------ exec
    async def exec(self, cid: str, exec_id: str, name: str, *, exec_dir: str, socket_dir: str,
                   spec: dict, tty: bool, stdin: bool,
                   on_attach: Callable[[str], None] | None = None) -> conmon.ExecProcess:
        """`exec --process` with the process spec `spec`, through its own conmon (see conmon.exec_)."""
        return await conmon.exec_(cid, exec_id, name, self._exec_argv(), self.root, exec_dir=exec_dir,
                                  socket_dir=socket_dir, spec=spec, tty=tty, stdin=stdin,
                                  on_attach=on_attach, enter=self._enter([]))

    async def exec_sync(self, cid: str, argv: Sequence[str], *, timeout: float, cwd: str | None = None,
                        user: str | None = None, max_output: int = 4096) -> ExecResult:
        """`<runtime> exec`, waited for: argv's exit status and the first
        max_output bytes of its stdout+stderr (the rest is read and dropped,
        so it never blocks). After timeout seconds the process (found by its
        pidfile) and the runtime are killed. Raises OSError when the runtime
        cannot be run at all."""
        fd, pidfile = tempfile.mkstemp(prefix="exec-", dir=self._scratch)
        os.close(fd)
        os.unlink(pidfile)                  # the runtime wants to create it
        opts = ["--pid-file", pidfile]
        if cwd:
            opts += ["--cwd", cwd]
        if user:
            opts += ["--user", user]
        out, truncated, timed_out = bytearray(), False, False

        async def drain(stream) -> None:
            nonlocal truncated
            while chunk := await stream.read(65536):
                keep = max_output - len(out)
                if keep > 0:
                    out.extend(chunk[:keep])
                if keep < len(chunk):
                    truncated = True

        proc = None
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._enter([])[0], *self._exec_argv(), "--root", self.root, "exec", *opts, cid, *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
            try:
                await asyncio.wait_for(asyncio.gather(drain(proc.stdout), proc.wait()), timeout)
            except asyncio.TimeoutError:
                timed_out = True
                _kill_pidfile(pidfile)
                proc.kill()
                await proc.wait()
        finally:
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        return ExecResult(proc.returncode, bytes(out), truncated, timed_out)

    def exec_piped(self, cid: str, spec: bytes | None, *, stdin: bool, small_host: bool = False,
                   spec_size: int = 0) -> PipedExec:
        """`exec --process` with the process spec `spec` (JSON), not detached
        and without conmon: the runtime waits for the process and exits with
        its status (128+N when signal N ended it); the process's stdio are
        pipes whose other ends are returned. Nothing touches the disk: the
        spec, the runtime's pid file and its error log are memfds. For an
        attached exec without a TTY, whose output has only the daemon to go
        to: one process (the runtime) instead of conmon's three, no attach
        socket to hand over, no exit file. Raises OSError when the runtime
        cannot be run at all.

        spec None: the runtime is started ahead, its spec (of spec_size bytes
        at most) to come through a pipe (PipedExec.release). It loads itself
        and the container's state, then waits reading that pipe, so that
        much of its work is done before the exec is started; until released
        it does nothing to the container, and a pipe closed without a spec
        (PipedExec.close, or the daemon's exit) makes it fail and exit."""
        # runc writes its pid file through a temp file and a rename, which
        # a memfd cannot take: it gets none (PipedExec.pid then names the runtime)
        if spec is None:
            spec_fd, spec_w = os.pipe2(os.O_CLOEXEC)
            if spec_size > 65536:
                try:
                    fcntl.fcntl(spec_w, F_SETPIPE_SZ, spec_size)
                except OSError:
                    os.close(spec_fd)
                    os.close(spec_w)
                    raise
        else:
            spec_fd, spec_w = conmon.memfd("process.json", spec), -1
        pid_fd = conmon.memfd("pid")
        log_fd = conmon.memfd("runtime.log")
        in_r, in_w = os.pipe2(os.O_CLOEXEC) if stdin else (-1, -1)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        # small_host: the daemon's mount table is small (few containers), so the
        # runtime reads it faster than dockyard-enter's extra exec would cost
        # (~0.9 ms; the crossover measured near 30 running containers): an
        # exec joins the container's mount namespace either way
        prefix, carried = ((), ()) if small_host else self._enter([])
        pidfile = ["--pid-file", f"/proc/self/fd/{pid_fd}"] if self.name == "crun" else []
        argv = [*prefix, *self._exec_argv(), "--log", f"/proc/self/fd/{log_fd}", "--log-format", "json",
                "--root", self.root, "exec", "--process", f"/proc/self/fd/{spec_fd}", *pidfile, cid]
        try:
            proc = Child(subprocess.Popen(
                argv, stdin=in_r if stdin else subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                pass_fds=(spec_fd, pid_fd, log_fd, *carried), start_new_session=True))
        except BaseException:
            for fd in (in_w, out_r, err_r, pid_fd, log_fd, spec_w):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, err_w, spec_fd, *carried):
                if fd >= 0:
                    os.close(fd)
        return PipedExec(proc, in_w, out_r, err_r, pid_fd, log_fd, spec_w)

    # ------------------------------------------------------------ checkpoint / restore
    async def checkpoint(self, cid: str, criu: Criu, image_dir: str, work_dir: str, *,
                         leave_running: bool, freeze_pid: int | None = None, timeout: float = 120) -> None:
        """CRIU-dump the container into image_dir (logs in work_dir); unless
        leave_running it is gone afterwards. freeze_pid, the init pid of a
        running (not paused) container: its cgroup is frozen by a write first,
        which spares CRIU its ~100 ms wait on the v1 freezer."""
        reason = rtc.unsupported_reason(self)
        if reason:
            raise NotImplementedYet(reason)
        freezer = rtc.freezer_of(freeze_pid) if freeze_pid else None
        frozen = bool(freezer) and rtc.freeze(freezer)
        argv = [*self._argv(*rtc.global_args(self, criu), "checkpoint", "--image-path", image_dir,
                            "--work-path", work_dir, *rtc.CRIU_FLAGS),
                *(["--leave-running"] if leave_running else []), cid]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=rtc.env_for(criu))
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), timeout)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                raise SystemError_(f"{self.name} checkpoint timed out after {timeout:.0f} s") from None
            if proc.returncode != 0:
                detail = rtc.log_tail(work_dir, "dump.log") or out.decode(errors="replace").strip()[-500:]
                raise SystemError_(f"checkpoint of {cid[:12]} failed: {detail}")
        except BaseException:
            if frozen:
                rtc.thaw(freezer)
            raise
        if frozen and leave_running:
            rtc.thaw(freezer)

    async def restore(self, cid: str, name: str, paths: conmon.Paths, criu: Criu, image_dir: str,
                      work_dir: str, *, tty: bool, stdin: bool, no_pivot: bool, stdin_once: bool = False,
                      keep_log: bool = True, log_level: str = "info",
                      carry: list[str] | None = None) -> tuple[int, int]:
        """`restore --detach` from image_dir through conmon, which supervises
        it as after create (fresh stdio pipes, the same log); the container
        runs when this returns. CRIU logs into work_dir. Returns and raises
        as create."""
        return await conmon.create(cid, name, self.path, self.root, paths, tty=tty, stdin=stdin,
                                   no_pivot=no_pivot, log_level=log_level, stdin_once=stdin_once,
                                   keep_log=keep_log, restore=image_dir,
                                   runtime_args=rtc.global_args(self, criu),
                                   runtime_opts=rtc.restore_opts(work_dir),
                                   extra_env=rtc.criu_env(criu, rtc.restore_config(self, criu)),
                                   enter=self._enter(carry))

    # ------------------------------------------------------------ state / delete
    async def state(self, cid: str) -> dict:
        """`<runtime> state`: the OCI state (status, pid, bundle ...)."""
        _, out = await self._run("state", cid)
        try:
            return json.loads(out)
        except ValueError:
            raise SystemError_(f"{self.name} state {cid[:12]}: unreadable output: {out[:200]}") from None

    async def delete(self, cid: str, *, force: bool = False, check: bool = True) -> None:
        """`<runtime> delete`; force kills what still runs. check=False for
        a best-effort teardown that ignores a container already gone."""
        await self._run("delete", *(["--force"] if force else []), cid, check=check)

    async def delete_exited(self, cid: str, remove_cgroups: Callable[[], bool]) -> None:
        """`<runtime> delete` for a container whose processes are all gone,
        without the process: what delete does then is remove the cgroups and
        the state dir. Anything unexpected falls back to the real command."""
        state = os.path.join(self.root, cid)
        pid = _state_pid(state)
        if pid is None or _alive(pid) or not remove_cgroups():
            await self.delete(cid, force=True, check=False)
            return
        shutil.rmtree(state, ignore_errors=True)


def _kill_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _state_pid(state_dir: str) -> int | None:
    """The init pid recorded by crun (`status`) or runc (`state.json`)."""
    for name, key in (("status", "pid"), ("state.json", "init_process_pid")):
        try:
            with open(os.path.join(state_dir, name)) as f:
                return int(json.load(f)[key])
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _compile_crun_hybrid(crun: str, bin_dir: str, *, mask: bool = True,
                         private: PrivateCrun | None = None) -> str | None:
    """Build runtime/crun_hybrid.c once per exec root (a tmpfs: once per
    boot): mask the hybrid controllers file (mask) and/or exec a private
    crun through its loader (private); None when there is no compiler or
    the build fails."""
    defines = [f'-DCRUN_PATH="{crun}"', f"-DMASK_HYBRID={int(mask)}"]
    if private:
        defines += [f'-DCRUN_LOADER="{private.loader}"', f'-DCRUN_LIBRARY_PATH="{private.library_path}"']
    return _compile_helper("crun_hybrid.c", "crun-hybrid", bin_dir, defines)


def _compile_helper(source: str, stem: str, bin_dir: str, defines: Sequence[str] = ()) -> str | None:
    """Build runtime/<source> once per exec root and set of defines, as
    <bin_dir>/<stem>-<hash>; None when there is no compiler or the build fails."""
    cc = shutil.which("cc") or shutil.which("gcc")
    src = os.path.join(os.path.dirname(__file__), source)
    if not cc or not os.path.exists(src):
        return None
    import hashlib
    with open(src, "rb") as f:
        tag = hashlib.sha256(f.read() + "\0".join(defines).encode()).hexdigest()[:12]
    out = os.path.join(bin_dir, f"{stem}-{tag}")
    if os.access(out, os.X_OK):
        return out
    os.makedirs(bin_dir, mode=0o700, exist_ok=True)
    tmp = f"{out}.{os.getpid()}.tmp"
    r = subprocess.run([cc, "-O2", "-o", tmp, *defines, src],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        log.warning("could not build %s: %s", source, r.stderr.strip()[-300:])
        return None
    os.replace(tmp, out)
    return out


class Runtimes:
    """The runtimes this daemon can use, resolved once at start-up."""

    def __init__(self, exec_root: str, default: str = "crun", *, paths: dict[str, str] | None = None,
                 private_crun_prefix: str | None = PRIVATE_CRUN_PREFIX, data_root: str | None = None):
        """paths: a binary per runtime name (daemon.json's runtimes.<name>.path);
        crun without one is the private prefix's when there, else PATH's.
        data_root: with exec_root, where the daemon's per-container mounts
        live, kept out of the runtime mount namespace (mntns.py); None: no
        runtime namespace, conmon starts in the daemon's."""
        self.exec_root = exec_root
        self.paths = dict(paths or {})
        self.private_crun_prefix = private_crun_prefix
        self.available: dict[str, Runtime] = {}
        self.notes: list[str] = []
        self.mntns = self._runtime_namespace(data_root) if data_root else None
        for name in KNOWN:
            rt = self._resolve(name)
            if rt:
                rt.mntns = self.mntns
                self.available[name] = rt
        if default not in KNOWN:
            raise InvalidParameter(f"unknown runtime {default!r}: choose crun or runc")
        if default not in self.available:
            fallback = next(iter(self.available), None)
            if not fallback:
                raise SystemError_("no OCI runtime found: install crun or runc")
            self.notes.append(f"{default} unusable here, using {fallback}")
            log.warning("default runtime %s unusable here; falling back to %s", default, fallback)
            default = fallback
        self.default = default

    def _runtime_namespace(self, data_root: str) -> RuntimeNamespace | None:
        helper = _compile_helper("mntns_enter.c", "dockyard-enter", os.path.join(self.exec_root, "bin"))
        if helper is None:
            self.notes.append("no C compiler: conmon starts in the daemon's mount namespace "
                              "(starts slow down with every running container's mounts)")
            return None
        return RuntimeNamespace(helper, (data_root, self.exec_root))

    def _resolve(self, name: str) -> Runtime | None:
        configured = self.paths.get(name)
        private = self._private_crun() if name == "crun" and not configured else None
        if configured:
            binary = configured if os.access(configured, os.X_OK) else None
            if not binary:
                self.notes.append(f"{name}: {configured} is not an executable file")
        else:
            binary = (private.wrapper if private else
                      shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin"))
        if not binary:
            return None
        root = os.path.join(self.exec_root, "runtime", name)
        os.makedirs(root, mode=0o700, exist_ok=True)
        path = binary
        if name == "crun" and hybrid_needs_mask():
            unshare = shutil.which("unshare")
            if not unshare:
                self.notes.append("crun needs `unshare` on this hybrid-cgroup host; not found")
                return None
            path = self._write_crun_wrapper(binary, unshare, private)
            self.notes.append("crun runs in a private mount namespace (hybrid cgroups)")
        elif private:
            # the loader exec'd directly, without the wrapper's shell (when there is a compiler)
            path = _compile_crun_hybrid(private.binary, os.path.join(self.exec_root, "bin"),
                                        mask=False, private=private) or private.wrapper
        libseccomp = "libseccomp.so.2"
        if private:
            for d in private.library_path.split(":"):
                if os.path.exists(os.path.join(d, libseccomp)):
                    libseccomp = os.path.join(d, libseccomp)
                    break
        program = None
        if name == "crun" and not configured:
            program = SealedArgv([private.loader, "--library-path", private.library_path, private.binary]
                                 if private else [binary])
        return Runtime(name, binary, path, root, libseccomp, exec_program=program)

    def _private_crun(self) -> PrivateCrun | None:
        """The private prefix's crun, when it is there and runs."""
        if not self.private_crun_prefix:
            return None
        pc = private_crun(self.private_crun_prefix)
        if pc is None:
            return None
        import subprocess
        try:
            r = subprocess.run([pc.wrapper, "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("the crun in %s does not run (%s); using the system's", self.private_crun_prefix, e)
            return None
        if r.returncode != 0 or not r.stdout.startswith("crun version"):
            log.warning("the crun in %s does not run (%s); using the system's", self.private_crun_prefix,
                        (r.stderr or r.stdout).strip()[-200:])
            return None
        log.info("crun: %s (%s)", r.stdout.splitlines()[0], self.private_crun_prefix)
        return pc

    def _write_crun_wrapper(self, crun: str, unshare: str, private: PrivateCrun | None = None) -> str:
        """The compiled helper (crun_hybrid.c: no process of its own), else
        a shell script doing the same with unshare, sh and mount."""
        bin_dir = os.path.join(self.exec_root, "bin")
        compiled = (_compile_crun_hybrid(private.binary, bin_dir, private=private) if private
                    else _compile_crun_hybrid(crun, bin_dir))
        if compiled:
            return compiled
        self.notes.append("no C compiler: crun runs through a shell wrapper (unshare+sh+mount per call)")
        wrapper = os.path.join(self.exec_root, "crun-hybrid")
        script = ("#!/bin/sh\n"
                  "# crun refuses hybrid cgroups while unified/cgroup.controllers is non-empty:\n"
                  "# run it in its own mount namespace where that file reads empty (only the\n"
                  "# unified mount is made private: binds keep the host's propagation).\n"
                  f"exec {unshare} -m --propagation unchanged /bin/sh -c "
                  f"'mount --make-private {os.path.dirname(HYBRID_CONTROLLERS)} && "
                  f"mount --bind /dev/null {HYBRID_CONTROLLERS} && exec {crun} \"$@\"' crun \"$@\"\n")
        tmp = wrapper + ".tmp"
        with open(tmp, "w") as f:
            f.write(script)
        os.chmod(tmp, 0o755)
        os.replace(tmp, wrapper)
        return wrapper

    def get(self, name: str | None) -> Runtime:
        """The runtime a create asks for by name (None: the default);
        InvalidParameter when there is none by that name here."""
        rt = self.available.get(name or self.default)
        if rt is None:
            raise InvalidParameter(f"unknown or invalid runtime name: {name}")
        return rt

    def for_name(self, name: str | None) -> Runtime:
        """The runtime an existing container runs with: the one it was
        created with, or the default when that one is gone from this host."""
        return self.available.get(name) or self.get(None)


_versions: dict[str, tuple[str, str]] = {}


def binary_version(binary: str) -> tuple[str, str]:
    """(version, commit) of a runtime or init binary from its `--version`, read
    as moby's parseRuntimeVersion/parseInitVersion ("runc version 1.1.5",
    "commit: …"; tini's "tini version 0.19.0 - git.de40ad0"); ("", "") when it
    cannot say. Asked once per binary."""
    if binary not in _versions:
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _versions[binary] = parse_version(out)
    return _versions[binary]


def parse_version(text: str) -> tuple[str, str]:
    version = commit = ""
    for line in text.strip().splitlines():
        if "version" in line and not version:
            version, _, git = line.split("version")[-1].strip().partition(" - ")
            if git.startswith("git."):
                commit = git[4:].strip()
        elif line.startswith("commit:"):
            commit = line[len("commit:"):].strip()
    return version, commit

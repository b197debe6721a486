"""Exec: run another process in a running container, supervised by its own
conmon (`conmon --exec`), so it needs no Python process and its stdio works
exactly like the container's (attach socket, ctl fifo for resize). An
attached exec without a TTY, whose output can only go to the client through
this daemon, runs without conmon: the runtime itself waits for it and the
daemon relays its pipes (_launch_piped, exec_relay.py).

The runtime's exec verb (Runtime.exec; conmon's pipes are in
runtime/conmon.py) calls us back once conmon's attach socket listens and
before the process runs, so we connect first and lose no output.

Exec sessions are kept in the daemon's store (exec_store.py) and survive a
daemon restart or crash: a still-running exec is watched again through a
pidfd on its conmon, one that ended meanwhile gets the exit code conmon
wrote into its exit dir (kept until that code is on disk).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from ..errors import Conflict, InvalidParameter, NotFound
from ..runtime import conmon, lookpath
from ..runtime.runtimes import PipedExec, Runtime
from ..store.db import Database
from . import exec_events, users
from .exec_relay import relay
from .attach import CONMON_STDOUT, open_socket
from .container import Container
from .exec_events import EventFn
from .exec_store import GC_INTERVAL, ExecStore, collectable, from_record, recovery_verdict
from .ids import new_id
from .lookup import ContainerStore
from .paths import Layout
from .tty import write_ctl

log = logging.getLogger("dockyard.exec")

EXIT_UNKNOWN = -1   # conmon gone without recording an exit code
# a spec made at create serves a start this soon after it (the docker CLI's
# create-then-start); a later start looks at the container's files again
PREPARED_FOR = 1.0
# up to this many containers (running or not: an upper bound on the mounts they
# add), an attached exec runs the runtime in the daemon's mount namespace, not
# the runtime namespace (Runtime.exec_piped small_host)
SMALL_HOST = 24


class NoSuchExec(NotFound):
    def __init__(self, ref: str):
        super().__init__(f"No such exec instance: {ref}")


class StartFailed(Exception):
    """`runtime exec` refused; message is Docker's, exit_code 126/127."""

    def __init__(self, message: str, exit_code: int = 126):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Prepared:
    """What ExecManager._prepare made right after an exec's create: for the
    container pid and console size in `key`, at `at` (monotonic), the process
    spec (or the StartFailed it came to) and, for an attached exec without a
    TTY, the runtime already started and waiting for that spec (`ahead`,
    with the spec's JSON in `blob`; Runtime.exec_piped with no spec)."""
    key: tuple
    at: float
    spec: dict | StartFailed
    ahead: PipedExec | None = None
    blob: bytes = b""

    def fresh(self, key: tuple) -> bool:
        return self.key == key and time.monotonic() - self.at < PREPARED_FOR

    def discard(self) -> None:
        """The runtime started ahead goes unused: it never had a spec, so it
        never touched the container."""
        px, self.ahead = self.ahead, None
        if px is not None:
            px.close()
            px.proc.kill()


@dataclass
class Exec:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = ""
    privileged: bool = False
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    detach_keys: str = ""
    console_size: tuple[int, int] | None = None
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    dir: str = ""
    socket_link: str = ""
    created_at: float = 0.0
    finished_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # the process spec made right after create (and the runtime started ahead for it); not kept on disk
    prepared: Prepared | None = field(default=None, repr=False)
    # while an exec without conmon runs (_launch_piped): its runtime process and pipes
    piped: PipedExec | None = field(default=None, repr=False)

    def to_api(self) -> dict:
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                # moby's ExecProcessConfig: `user` is omitempty
                "ProcessConfig": {"tty": self.tty, "entrypoint": self.cmd[0], "arguments": self.cmd[1:],
                                  "privileged": self.privileged, **({"user": self.user} if self.user else {})},
                "OpenStdin": self.attach_stdin, "OpenStderr": self.attach_stderr,
                "OpenStdout": self.attach_stdout, "CanRemove": False,
                "ContainerID": self.container_id, "DetachKeys": self.detach_keys, "Pid": self.pid}


def check_running(c, ref: str = "") -> None:
    """Docker's 409s for exec into a container that cannot take one (a paused
    one named as the client did at exec create, moby's getActiveContainer)."""
    st = c.state.status
    if st == "paused":
        raise Conflict(f"Container {ref or c.id} is paused, unpause the container before exec")
    if st == "restarting":
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
    if st != "running":
        raise Conflict(f"Container {c.id} is not running")


def _parse_size(v) -> tuple[int, int] | None:
    if not v:
        return None
    try:
        h, w = int(v[0]), int(v[1])
    except (TypeError, ValueError, IndexError):
        raise InvalidParameter("invalid ConsoleSize: want [height, width]") from None
    return (h, w) if h > 0 and w > 0 else None


class ExecManager:
    def __init__(self, db: Database, containers: ContainerStore, layout: Layout,
                 runtime_for: Callable[[Container], Runtime], bounding: frozenset[str], event: EventFn,
                 spawn: Callable[[Coroutine], asyncio.Task]) -> None:
        self.containers = containers
        self.layout = layout
        self.runtime_for = runtime_for      # Container -> its runtime
        self.bounding = bounding            # a privileged exec's capabilities
        self.event = event                  # a container event (Daemon.event)
        self.spawn = spawn                  # a background task the daemon cancels at shutdown
        self.store = ExecStore(db)
        self._execs: dict[str, Exec] = {}
        self._tasks: set[asyncio.Task] = set()
        self._watched: dict[str, int] = {}   # exec id -> pidfd of a re-adopted exec's conmon
        for eid, cid, rec in self.store.load():
            self._execs[eid] = Exec(**from_record(eid, cid, rec))

    # ---------------------------------------------------------------- create
    def create(self, c, body: dict, ref: str = "") -> Exec:
        check_running(c, ref)
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
            raise InvalidParameter("No exec command specified")
        env = body.get("Env") or []
        if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
            raise InvalidParameter("invalid Env: want a list of strings")
        for e in env:
            if not e.split("=", 1)[0]:
                raise InvalidParameter(f"invalid environment variable: {e}")
        ex = Exec(id=new_id(), container_id=c.id, cmd=list(cmd), env=list(env),
                  user=body.get("User") or "", workdir=body.get("WorkingDir") or "",
                  privileged=bool(body.get("Privileged")), tty=bool(body.get("Tty")),
                  attach_stdin=bool(body.get("AttachStdin")), attach_stdout=bool(body.get("AttachStdout")),
                  attach_stderr=bool(body.get("AttachStderr")), detach_keys=body.get("DetachKeys") or "",
                  console_size=_parse_size(body.get("ConsoleSize")), created_at=time.time())
        if ex.workdir and not ex.workdir.startswith("/"):
            raise InvalidParameter(f"the working directory '{ex.workdir}' is invalid, it needs to be an absolute path")
        self.store.add(ex)
        self._execs[ex.id] = ex
        exec_events.created(self.event, c, ex.id, ex.cmd)
        # the spec is made once this request's answer is out, while the client
        # reads it and sends the start
        asyncio.get_running_loop().call_soon(self._prepare, ex, c)
        return ex

    def _prepare(self, ex: Exec, c) -> None:
        if ex.started or not c.state.running:
            return
        try:
            spec: dict | StartFailed = self._process_spec(ex, c, self.layout.container(c.id))
        except StartFailed as e:
            spec = e
        except Exception:   # start makes it again and says what is wrong
            return
        prep = Prepared((c.state.pid, ex.console_size), time.monotonic(), spec)
        ex.prepared = prep
        if isinstance(spec, dict) and not ex.tty and (ex.attach_stdout or ex.attach_stderr or ex.attach_stdin):
            # the runtime's own start (loading itself, reading the container's state)
            # happens now, while the client reads this answer and sends the start;
            # a start later than PREPARED_FOR, detached, or for another run of the
            # container starts a runtime of its own
            prep.blob = json.dumps(spec).encode()
            try:
                prep.ahead = self.runtime_for(c).exec_piped(c.id, None, stdin=ex.attach_stdin,
                                                            small_host=self._small_host(), spec_size=len(prep.blob))
            except OSError as e:
                log.debug("exec %s: no runtime started ahead (%s)", ex.id[:12], e)
                return
            asyncio.get_running_loop().call_later(PREPARED_FOR, self._expire, ex, prep)

    def _small_host(self) -> bool:
        return self.containers.total() <= SMALL_HOST

    @staticmethod
    def _expire(ex: Exec, prep: Prepared) -> None:
        if ex.prepared is prep:
            ex.prepared = None
        prep.discard()

    def get(self, ref: str) -> Exec:
        ex = self._execs.get(ref)
        if ex is None:
            raise NoSuchExec(ref)
        if ex.piped is not None and ex.running:
            ex.pid = ex.piped.pid()      # the runtime writes it once the process runs
        return ex

    def kill(self, ex: Exec, sig: int) -> None:
        """Signal a running exec's process (not its runtime or conmon)."""
        pid = ex.piped.pid() if ex.piped is not None else ex.pid
        if ex.running and pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def ids_for(self, cid: str) -> list[str]:
        return [e.id for e in self._execs.values() if e.container_id == cid]

    def live_ids(self, cid: str) -> list[str]:
        """The container's execs not yet ended (created, or running): its
        ExecIDs in inspect, as moby's container.ExecCommands, which drops an
        exec when it exits."""
        return [e.id for e in self._execs.values() if e.container_id == cid and (not e.started or e.running)]

    def forget_container(self, cid: str) -> None:
        """The container is removed: so are its execs (as dockerd)."""
        for eid in self.ids_for(cid):
            self._execs.pop(eid, None)
            self._unwatch(eid)
        self.store.delete_for_container(cid)

    # ---------------------------------------------------------------- start
    async def start(self, ex: Exec, c, *, attach: bool,
                    console_size: tuple[int, int] | None = None) -> socket.socket | None:
        """Run the process, with a TTY when the exec was created with one (as
        moby: the start's Tty only shapes the stream). With attach, returns the
        connected attach socket (output from the first byte). Raises
        StartFailed when the runtime refuses (the exec is then finished with
        that exit code)."""
        self.claim(ex, c, console_size)
        return await self.launch(ex, c, attach=attach)

    def claim(self, ex: Exec, c, console_size: tuple[int, int] | None = None) -> None:
        """start's checks, and the exec marked started (no await between:
        a second start of it gets the 409 from here on). launch runs it."""
        if ex.started:
            raise Conflict(f"Error: Exec command {ex.id} is already running" if ex.running
                           else f"Error: Exec command {ex.id} has already run")
        check_running(c)
        if console_size:
            ex.console_size = console_size
        ex.started = ex.running = True

    async def launch(self, ex: Exec, c, *, attach: bool) -> socket.socket | None:
        """Run a claimed exec (see start)."""
        try:
            sock = await self._launch(ex, c, attach)
            if ex.piped is None:  # under conmon: running, with its pid (no await before: its exit is saved after)
                self.store.save(ex)
            exec_events.started(self.event, c, ex.id, ex.cmd)
            return sock
        except StartFailed as e:
            self._finish(ex, e.exit_code)
            raise
        except BaseException:
            self._finish(ex, 126)
            raise

    def _process_spec(self, ex: Exec, c, paths) -> dict:
        with open(os.path.join(paths.bundle, "config.json")) as f:
            spec = json.load(f)
        proc = dict(spec["process"])
        rootfs = spec["root"]["path"]
        if not os.path.isabs(rootfs):
            rootfs = os.path.join(paths.bundle, rootfs)
        env = _merge_env(_tty_env(proc.get("env") or [], ex.tty, bool(proc.get("terminal")), c.config.get("Env")),
                         ex.env)
        bad = lookpath.check(rootfs, ex.cmd[0], env, [m["destination"] for m in spec.get("mounts") or []])
        if bad:
            code, msg = bad
            raise StartFailed(f"OCI runtime exec failed: exec failed: unable to start container process: {msg}: unknown",
                              code)
        proc["args"] = ex.cmd
        proc["env"] = env
        proc["terminal"] = ex.tty
        proc.pop("consoleSize", None)
        if ex.tty and ex.console_size:
            proc["consoleSize"] = {"height": ex.console_size[0], "width": ex.console_size[1]}
        if ex.workdir:
            proc["cwd"] = ex.workdir
        if ex.user:
            try:
                uid, gid, extra = users.process_user(ex.user, c.host_config.get("GroupAdd"), rootfs)
            except InvalidParameter as e:
                raise StartFailed(f"OCI runtime exec failed: exec failed: unable to start container process: {e}: unknown")
            proc["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
        if ex.privileged:
            caps = sorted(self.bounding)
            proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                                    "inheritable": [], "ambient": []}
        return proc

    async def _launch(self, ex: Exec, c, attach: bool) -> socket.socket | None:
        paths = self.layout.container(c.id)
        rt = self.runtime_for(c)
        prep, ex.prepared = ex.prepared, None
        ahead, blob = None, b""
        if prep is not None and prep.fresh((c.state.pid, ex.console_size)):
            if isinstance(prep.spec, StartFailed):
                raise prep.spec
            proc = prep.spec
            if attach and not ex.tty:
                ahead, blob, prep.ahead = prep.ahead, prep.blob, None
        else:   # not made yet, too old (the rootfs may have changed), or for another run or console size
            proc = self._process_spec(ex, c, paths)
        if prep is not None:
            prep.discard()     # a runtime started ahead that this start does not use
        if attach and not ex.tty:
            return await self._launch_piped(ex, c, rt, proc, ahead, blob)
        ex.dir = _exec_dir(paths, ex.id)
        os.makedirs(ex.dir, mode=0o700, exist_ok=True)
        os.makedirs(paths.socket_dir, exist_ok=True)
        ex.socket_link = os.path.join(paths.socket_dir, ex.id)
        socks: list[socket.socket] = []

        def connect(attach_socket: str) -> None:
            """conmon's attach socket is up; the process does not run yet."""
            socks.append(open_socket(attach_socket))
            if ex.tty and ex.console_size:
                # crun ignores process.consoleSize on exec: queue the size with conmon,
                # which applies it the moment it receives the pty
                write_ctl(ex.dir, *ex.console_size)

        try:
            running = await rt.exec(c.id, ex.id, c.name, exec_dir=ex.dir, socket_dir=paths.socket_dir,
                                    spec=proc, tty=ex.tty, stdin=ex.attach_stdin,
                                    on_attach=connect if attach else None)
        except conmon.SessionFailed as e:
            _close(socks)
            raise StartFailed(str(e)) from None
        except conmon.CreateFailed as e:
            _close(socks)
            msg = str(e)
            raise StartFailed(f"OCI runtime exec failed: {msg.strip()}: unknown",
                              127 if "not found" in msg else 126) from None
        except BaseException:
            _close(socks)
            raise
        ex.pid = running.pid
        t = asyncio.ensure_future(self._wait_exit(ex, running))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return socks[0] if socks else None

    async def _launch_piped(self, ex: Exec, c, rt: Runtime, proc: dict, ahead: PipedExec | None = None,
                            blob: bytes = b"") -> socket.socket:
        """An attached exec without a TTY (`docker exec CTR cmd`, docker-py's
        exec_run, Compose's exec -T): the runtime run by the daemon, not
        detached, with pipes (Runtime.exec_piped), and its output relayed
        onto a socket in conmon's attach format (exec_relay.py). Its output
        has only this daemon to go to, so conmon's extra processes, attach
        socket handshake and files buy nothing here. The price: were the
        daemon to die meanwhile, the process loses its reader (SIGPIPE at
        its next write) and a restarted daemon records the exec as ended
        with an unknown code (a detached exec stays under conmon and is
        watched again)."""
        # on disk as started before the runtime runs: it leaves no conmon dir to
        # tell a restarted daemon that it ran (which would else offer it to run again)
        self.store.save(ex)
        try:
            if ahead is not None:     # started at create (_prepare): it runs the process once it has the spec
                px = ahead
                px.release(blob)
            else:
                px = rt.exec_piped(c.id, json.dumps(proc).encode(), stdin=ex.attach_stdin,
                                   small_host=self._small_host())
        except OSError as e:
            raise StartFailed(f"OCI runtime exec failed: exec failed: unable to start container process: "
                              f"{e}: unknown") from None
        ex.piped = px
        ex.pid = px.proc.pid
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        theirs.setblocking(False)
        t = asyncio.ensure_future(self._run_piped(ex, px, ours))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return theirs

    async def _run_piped(self, ex: Exec, px: PipedExec, sock: socket.socket) -> None:
        code = EXIT_UNKNOWN
        try:
            code = await relay(px, sock)
            err = px.runtime_error()
            if err:    # the runtime failed before the process ran (a cwd that is not there, ...)
                code = 127 if "not found" in err else 126
                msg = f"OCI runtime exec failed: exec failed: unable to start container process: {err}: unknown"
                with contextlib.suppress(OSError):
                    await asyncio.get_running_loop().sock_sendall(sock, bytes([CONMON_STDOUT]) + (msg + "\r\n").encode())
        finally:
            ex.piped = None
            px.close()
            self._finish(ex, code)     # before the stream ends: the client asks for the code next
            sock.close()

    async def _wait_exit(self, ex: Exec, running: conmon.ExecProcess) -> None:
        code = None
        try:
            code = await running.wait()
        finally:
            if code is None:   # conmon died without a word: its exit file, else unknown
                code = _exit_code(ex)
            self._finish(ex, EXIT_UNKNOWN if code is None else code)

    def _finish(self, ex: Exec, code: int) -> None:
        ex.exit_code = code
        ex.running = False
        ex.pid = 0
        ex.finished_at = time.time()
        self.store.save(ex)   # on disk before the exit file goes
        ex.done.set()
        c = self.containers.find(ex.container_id)
        if c is not None:
            exec_events.died(self.event, c, ex.id, code)
        # the files go right after the waiting start request has answered (its
        # client then asks for the exit code while they are removed)
        try:
            asyncio.get_running_loop().call_soon(_remove_files, ex.dir, ex.socket_link)
        except RuntimeError:
            _remove_files(ex.dir, ex.socket_link)

    # ---------------------------------------------------------------- daemon start
    def recover(self) -> None:
        """Re-adopt the execs the previous daemon left. Runs before containers
        are recovered: the cleanup of a container that exited meanwhile removes
        its bundle, and with it its execs' exit files."""
        for ex in list(self._execs.values()):
            c = self.containers.find(ex.container_id)
            if c is None:   # the row outlived its container (foreign keys off)
                self._execs.pop(ex.id, None)
                self.store.delete([ex.id])
                continue
            if ex.exit_code is not None:
                continue
            paths = self.layout.container(c.id)
            ex.dir = _exec_dir(paths, ex.id)
            ex.socket_link = os.path.join(paths.socket_dir, ex.id)
            have_dir = os.path.isdir(ex.dir)
            code = _exit_code(ex) if have_dir else None
            pid = conmon.conmon_pid(conmon.Paths(ex.dir, ex.dir, "", "")) if have_dir else 0
            alive = conmon.pid_alive(pid) and conmon.is_conmon_for(pid, ex.id)
            verdict = recovery_verdict(ex.started, have_dir, code, alive)
            if verdict == "keep":
                ex.dir = ex.socket_link = ""
                continue
            ex.started = True
            if verdict == "watch":
                ex.running = True
                self._watch(ex, pid)
                log.info("re-adopted exec %s of %s (conmon %d)", ex.id[:12], c.short_id, pid)
                continue
            log.info("exec %s of %s ended while the daemon was down (exit code %s)", ex.id[:12],
                     c.short_id, "unknown" if code is None else code)
            self._finish(ex, EXIT_UNKNOWN if code is None else code)
        self.spawn(self._collect_garbage())

    def _watch(self, ex: Exec, conmon_pid: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(conmon_pid)
        except OSError:
            loop.call_soon(self._conmon_exited, ex)   # gone already
            return
        self._watched[ex.id] = fd
        loop.add_reader(fd, self._conmon_exited, ex)

    def _unwatch(self, eid: str) -> None:
        fd = self._watched.pop(eid, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _conmon_exited(self, ex: Exec) -> None:
        """A re-adopted exec's conmon exited, right after it wrote the exit file."""
        self._unwatch(ex.id)
        if ex.running:
            code = _exit_code(ex)
            self._finish(ex, EXIT_UNKNOWN if code is None else code)

    def close(self) -> None:
        for eid in list(self._watched):
            self._unwatch(eid)

    async def _collect_garbage(self) -> None:
        """moby's execCommandGC: finished sessions go after 5 to 10 minutes."""
        while True:
            await asyncio.sleep(GC_INTERVAL)
            now = time.time()
            gone = []
            for ex in list(self._execs.values()):
                c = self.containers.find(ex.container_id)
                if collectable(ex, c is not None and c.state.running, now):
                    gone.append(ex.id)
                    self._execs.pop(ex.id, None)
            if gone:
                self.store.delete(gone)
                log.debug("dropped %d finished exec sessions", len(gone))

    # ---------------------------------------------------------------- resize
    def resize(self, ex: Exec, h: int, w: int) -> None:
        if not ex.running:
            raise Conflict(f"Exec {ex.id} is not running")   # Docker: "... is not running"
        if not ex.tty:
            return   # Docker: a no-op for a process without a TTY
        write_ctl(ex.dir, h, w)


def _remove_files(exec_dir: str, socket_link: str) -> None:
    """An ended exec's conmon dir, and conmon's link to its attach socket
    (conmon removes that itself unless killed)."""
    if exec_dir:
        shutil.rmtree(exec_dir, ignore_errors=True)
    if socket_link:
        try:
            os.unlink(socket_link)
        except OSError:
            pass


def _exec_dir(paths, eid: str) -> str:
    """The exec's conmon dir (bundle, exit file, pidfiles, ctl fifo)."""
    return os.path.join(paths.bundle, "exec", eid[:12])


def _exit_code(ex: Exec) -> int | None:
    """What the exec's conmon wrote into its exit dir (the file is named by container id)."""
    return conmon.read_exit_code(conmon.Paths(ex.dir, ex.dir, "", ""), ex.container_id) if ex.dir else None


def _tty_env(env: list[str], exec_tty: bool, container_tty: bool, config_env: list[str] | None) -> list[str]:
    """The container's environment as an exec sees it: moby makes an exec's
    defaults afresh, TERM=xterm after PATH and HOSTNAME when the *exec* has a
    TTY (`docker exec -t` into a container run without one gets it; an exec
    without a TTY in a container with one does not, unless the config's Env
    sets TERM)."""
    if exec_tty == container_tty:
        return env
    keys = [e.partition("=")[0] for e in env]
    if exec_tty:
        if "TERM" in keys:
            return env
        at = keys.index("HOSTNAME") + 1 if "HOSTNAME" in keys else len(env)
        return env[:at] + ["TERM=xterm"] + env[at:]
    if any(e.partition("=")[0] == "TERM" for e in config_env or []):
        return env
    return [e for e in env if e != "TERM=xterm"]


def _merge_env(base: list[str], extra: list[str]) -> list[str]:
    out: dict[str, str] = {}
    for e in base + extra:
        k, _, _v = e.partition("=")
        out[k] = e
    return list(out.values())


def _close(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()

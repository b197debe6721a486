"""`exec`, `attach`, `stats`, `top`: the commands that stream."""
from __future__ import annotations

import contextlib
import os
import sys
import threading

from .flags import LIST, STRING, Command, Flag, UsageError

EXEC = Command("[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", [
    Flag("detach", "d", help="Detached mode: run command in the background"),
    Flag("detach-keys", kind=STRING, help="Override the key sequence for detaching a container"),
    Flag("env", "e", LIST, help="Set environment variables"),
    Flag("interactive", "i", help="Keep STDIN open even if not attached"),
    Flag("privileged", help="Give extended privileges to the command"),
    Flag("tty", "t", help="Allocate a pseudo-TTY"),
    Flag("user", "u", STRING, help='Username or UID (format: "<name|uid>[:<group|gid>]")'),
    Flag("workdir", "w", STRING, help="Working directory inside the container"),
], min_args=2, interspersed=False, aliases="dockyard container exec, dockyard exec")

ATTACH = Command("[OPTIONS] CONTAINER", "Attach local standard input, output, and error streams to a running container", [
    Flag("detach-keys", kind=STRING, help="Override the key sequence for detaching a container"),
    Flag("no-stdin", help="Do not attach STDIN"),
    Flag("sig-proxy", kind="bool", default=True, help="Proxy all received signals to the process"),
], min_args=1, max_args=1, aliases="dockyard container attach, dockyard attach")

STATS = Command("[OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics", [
    Flag("all", "a", help="Show all containers (default shows just running)"),
    Flag("no-stream", help="Disable streaming stats and only pull the first result"),
    Flag("no-trunc", help="Do not truncate output"),
], aliases="dockyard container stats, dockyard stats")

TOP = Command("CONTAINER [ps OPTIONS]", "Display the running processes of a container", [],
              min_args=1, interspersed=False, aliases="dockyard container top, dockyard top")


# ------------------------------------------------------------------ exec

def exec_(cli, argv: list[str]) -> int:
    from .attach import terminal_size
    opts, args = EXEC.parse(argv, cli.command_path)
    name, cmd = args[0], args[1:]
    client = cli.client
    tty = bool(opts.tty)
    if tty and not opts.detach and not os.isatty(0) and opts.interactive:
        cli.err("the input device is not a TTY")
        return 1
    rows, cols = terminal_size() if tty else (0, 0)
    body = {"Cmd": cmd, "Env": opts.env or None, "User": opts.user or "", "WorkingDir": opts.workdir or "",
            "Privileged": bool(opts.privileged), "Tty": tty, "AttachStdin": bool(opts.interactive) and not opts.detach,
            "AttachStdout": not opts.detach, "AttachStderr": not opts.detach,
            "DetachKeys": opts.detach_keys or "", "ConsoleSize": [rows, cols] if rows else None}
    eid = client.post(f"/containers/{name}/exec", body=body)["Id"]
    if opts.detach:
        client.call("POST", f"/exec/{eid}/start", body={"Detach": True, "Tty": tty}).close()
        return 0
    sock, leftover = _hijack_json(client, f"/exec/{eid}/start", {"Detach": False, "Tty": tty,
                                                                   "ConsoleSize": [rows, cols] if rows else None})
    try:
        if tty and rows:
            with contextlib.suppress(Exception):
                client.call("POST", f"/exec/{eid}/resize", {"h": rows, "w": cols}).close()
        if opts.interactive:
            threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
        with contextlib.ExitStack() as stack:
            if tty and opts.interactive and os.isatty(0):
                stack.enter_context(_RawTerminal(0))
            if tty:
                stack.enter_context(_Winch(lambda h, w: client.call("POST", f"/exec/{eid}/resize",
                                                                    {"h": h, "w": w}).close()))
            _pump_output(sock, leftover, tty)
    finally:
        sock.close()
    info = client.get(f"/exec/{eid}/json")
    code = info.get("ExitCode")
    return 0 if code is None else int(code)


def _hijack_json(client, path: str, body: dict):
    """POST a JSON body with `Upgrade: tcp` (exec start); the raw socket after."""
    import json
    from ..client import ConnectError, DaemonError, Response, error_message
    sock = client._connect()
    try:
        data = json.dumps(body).encode()
        client._send(sock, "POST", path, None, data,
                     {"Connection": "Upgrade", "Upgrade": "tcp", "Content-Type": "application/json"})
        resp = Response(sock, "POST")
        if resp.status >= 400:
            raise DaemonError(resp.status, error_message(resp))
        if resp.status not in (101, 200):
            raise ConnectError(f"unexpected response to exec start: {resp.status} {resp.reason}")
        return sock, resp._reader.take_buffered()
    except BaseException:
        sock.close()
        raise


def _pump_stdin(sock) -> None:
    import socket as socket_module
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            sock.sendall(data)
        sock.shutdown(socket_module.SHUT_WR)
    except OSError:
        pass


def _pump_output(sock, leftover: bytes, tty: bool) -> None:
    from . import stdcopy
    from .attach import write_all

    def chunks():
        if leftover:
            yield leftover
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, OSError):
                return
            if not data:
                return
            yield data
    if tty:
        for data in chunks():
            write_all(1, data)
    else:
        stdcopy.copy(chunks(), lambda b: write_all(1, b), lambda b: write_all(2, b))


class _RawTerminal:
    """Raw mode while a TTY session runs; TCSANOW, not tty.setraw's default
    TCSAFLUSH, so keys typed while we connected are not thrown away."""

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def __enter__(self) -> "_RawTerminal":
        import termios
        import tty
        self.saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


class _Winch:
    """Forward terminal resizes (SIGWINCH) while a TTY session runs."""

    def __init__(self, resize):
        self.resize = resize
        self.previous = None

    def __enter__(self):
        import signal
        self.previous = signal.signal(signal.SIGWINCH, self._on)
        return self

    def _on(self, *_):
        from .attach import terminal_size
        h, w = terminal_size()
        if h:
            with contextlib.suppress(Exception):
                self.resize(h, w)

    def __exit__(self, *exc):
        import signal
        signal.signal(signal.SIGWINCH, self.previous)


# ------------------------------------------------------------------ attach

def attach(cli, argv: list[str]) -> int:
    from .attach import _SignalProxy, terminal_size, wait_exit_code
    opts, (name,) = ATTACH.parse(argv, cli.command_path)
    client = cli.client
    info = client.get(f"/containers/{name}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        cli.err("You cannot attach to a stopped container, start it first")
        return 1
    if state.get("Paused"):
        cli.err("You cannot attach to a paused container, unpause it first")
        return 1
    cfg = info.get("Config") or {}
    tty = bool(cfg.get("Tty"))
    stdin = bool(cfg.get("OpenStdin")) and not opts.no_stdin
    query = {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1, "stderr": 1,
             "detachKeys": opts.detach_keys or None}
    sock, leftover, _ = client.hijack(f"/containers/{name}/attach", query)
    cid = info["Id"]
    waiter = client.call("POST", f"/containers/{cid}/wait", {"condition": "next-exit"})
    try:
        if tty:
            rows, cols = terminal_size()
            if rows:
                with contextlib.suppress(Exception):
                    client.call("POST", f"/containers/{cid}/resize", {"h": rows, "w": cols}).close()
        if stdin:
            threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
        with contextlib.ExitStack() as stack:
            if tty and stdin and os.isatty(0):
                stack.enter_context(_RawTerminal(0))
            if tty:
                stack.enter_context(_Winch(lambda h, w: client.call("POST", f"/containers/{cid}/resize",
                                                                    {"h": h, "w": w}).close()))
            elif opts.sig_proxy:
                stack.enter_context(_SignalProxy(client, cid, cli.err))
            _pump_output(sock, leftover, tty)
        sock.close()
        after = client.get(f"/containers/{cid}/json").get("State") or {}
        if after.get("Running"):
            return 0   # detached with the detach keys
        return wait_exit_code(waiter.json(), cli.err)
    finally:
        sock.close()
        waiter.close()


# ------------------------------------------------------------------ top

def top(cli, argv: list[str]) -> int:
    from .formatting import tabulate
    opts, args = TOP.parse(argv, cli.command_path)
    name, ps_args = args[0], args[1:]
    result = cli.client.get(f"/containers/{name}/top", {"ps_args": " ".join(ps_args) or None})
    lines = ["\t".join(result["Titles"]) + "\t"]
    lines += ["\t".join(p) + "\t" for p in result.get("Processes") or []]
    for line in tabulate(lines, min_width=20, padding=1):
        cli.out(line.rstrip())
    return 0


# ------------------------------------------------------------------ stats

def cpu_percent(s: dict) -> float:
    """docker's calculateCPUPercentUnix."""
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    n = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    if cpu_delta > 0 and sys_delta > 0:
        return cpu_delta / sys_delta * n * 100.0
    return 0.0


def memory_usage(s: dict) -> tuple[float, float]:
    """(usage without page cache, limit) as docker computes it."""
    m = s.get("memory_stats") or {}
    st = m.get("stats") or {}
    usage = m.get("usage", 0)
    for key in ("total_inactive_file", "inactive_file"):
        if key in st and st[key] < usage:
            usage -= st[key]
            break
    return float(usage), float(m.get("limit", 0))


def stats_row(s: dict, name: str, trunc: bool = True) -> str:
    from .formatting import bytes_size, human_size
    usage, limit = memory_usage(s)
    nets = s.get("networks") or {}
    rx = sum(n.get("rx_bytes", 0) for n in nets.values())
    tx = sum(n.get("tx_bytes", 0) for n in nets.values())
    blk = (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    rd = sum(b.get("value", 0) for b in blk if b.get("op", "").lower() == "read")
    wr = sum(b.get("value", 0) for b in blk if b.get("op", "").lower() == "write")
    cid = s.get("id", "")
    mem_pct = usage / limit * 100 if limit else 0.0
    return "\t".join([cid[:12] if trunc else cid, name, f"{cpu_percent(s):.2f}%",
                      f"{bytes_size(usage)} / {bytes_size(limit)}", f"{mem_pct:.2f}%",
                      f"{human_size(rx)} / {human_size(tx)}", f"{human_size(rd)} / {human_size(wr)}",
                      str((s.get("pids_stats") or {}).get("current", 0))])


_HEADER = "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS"


def stats(cli, argv: list[str]) -> int:
    from .formatting import tabulate
    opts, names = STATS.parse(argv, cli.command_path)
    client = cli.client
    if not names:
        names = [c["Id"] for c in client.get("/containers/json", {"all": 1 if opts.all else None})]
    if not opts.no_stream:
        if len(names) != 1:
            raise UsageError("streaming stats of several containers: use --no-stream", code=1)
        return _stream_one(cli, names[0], not opts.no_trunc)
    rows = [_HEADER]
    for n in names:
        s = client.get(f"/containers/{n}/stats", {"stream": 0})
        rows.append(stats_row(s, (s.get("name") or n).lstrip("/"), not opts.no_trunc))
    for line in tabulate(rows, padding=3):
        cli.out(line)
    return 0


def _stream_one(cli, name: str, trunc: bool) -> int:
    import json
    from .formatting import tabulate
    resp = cli.client.call("GET", f"/containers/{name}/stats", {"stream": 1})
    buf = b""
    try:
        for chunk in resp.chunks():
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                s = json.loads(line)
                out = tabulate([_HEADER, stats_row(s, (s.get("name") or name).lstrip("/"), trunc)], padding=3)
                sys.stdout.write("\x1b[2J\x1b[H" + "\n".join(out) + "\n")
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        resp.close()
    return 0

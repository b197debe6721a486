"""`exec`, `attach`, `stats`, `top`: the commands that stream."""
from __future__ import annotations

import os
import sys

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
    from .pumps import session, terminal_size
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
    sock, leftover, _ = client.hijack(f"/exec/{eid}/start", body={
        "Detach": False, "Tty": tty, "ConsoleSize": [rows, cols] if rows else None})
    try:
        session(cli, sock, leftover, tty=tty, stdin=bool(opts.interactive),
                resize=lambda h, w: client.call("POST", f"/exec/{eid}/resize", {"h": h, "w": w}).close())
    finally:
        sock.close()
    info = client.get(f"/exec/{eid}/json")
    code = info.get("ExitCode")
    return 0 if code is None else int(code)


# ------------------------------------------------------------------ attach

def attach(cli, argv: list[str]) -> int:
    from .attach import attach_and_wait
    opts, (name,) = ATTACH.parse(argv, cli.command_path)
    info = cli.client.get(f"/containers/{name}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        cli.err("You cannot attach to a stopped container, start it first")
        return 1
    if state.get("Paused"):
        cli.err("You cannot attach to a paused container, unpause it first")
        return 1
    cfg = info.get("Config") or {}
    return attach_and_wait(cli, info["Id"], tty=bool(cfg.get("Tty")),
                           stdin=bool(cfg.get("OpenStdin")) and not opts.no_stdin,
                           sig_proxy=opts.sig_proxy, detach_keys=opts.detach_keys)


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

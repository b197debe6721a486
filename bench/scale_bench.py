#!/usr/bin/env python3
"""Scale: N running `sleep` containers, dockyardd and (when available) a
private dockerd on the same machine, one run each, side by side (issue 16).

For each N of --n (default 100,400,1000), against each engine:
  - start N `sleep` containers with --clients (4) parallel docker CLIs: wall time, failures;
  - `run --rm bb true` latency with N running (median of --runs; after --settle seconds,
    so the start burst's own aftermath is not counted), and at 0 before them; with N
    running, alternating with an empty second dockyardd started then (the control:
    what the host with N containers on it costs any engine's start);
  - dockyardd only: its start trace (StartTrace) step medians at 0 and at N;
  - `docker ps` latency (the CLI) and GET /containers/json (raw) with N running;
  - the engine's RSS (dockyardd; dockerd + its containerd) and the memory per
    container of the supervisor (conmon; containerd-shim), with N running;
  - the engine's CPU while N idle containers run (--idle-seconds);
  - `rm -f` of the N with --clients parallel CLIs: wall time.
Once, at the smallest N: 20 parallel `run -d bb true`, and `docker exec CTR true`.
Once, first, with both engines idle: `docker exec CTR true` and `run --rm bb true`
alternating between the engines run by run (--runs x 2 each), so a change in the
machine's state hits both alike; the ratios the targets name are these.
The docker CLI's floor (cli_floor.py): `docker exec` and, at N, `docker ps` are
also timed against a server that answers at once (the engine's own listing,
captured), alternating with the engine; figure minus floor is the engine's part.
Logs and pull throughput have their own benches (streams_bench.py, registry_bench.py).
Both engines' default bridge is a /24 here: for N > 250 the sleepers run on a
user network (a /16) of each engine instead; the measured `run --rm` stays on
the default bridge.

Unless --dockyard-sock is given it starts its own dockyardd on temp roots
(the integration tests' Daemon class); dockerd is a private one (tests/
refdockerd.py) unless --dockerd-sock names one, or --no-dockerd. Every
container it made is removed, on success or not.

    .venv/bin/python bench/scale_bench.py --n 100,300 [--json out.json]

Nothing asserts on these numbers; see bench/README.md ("Scale").
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from cli_floor import FloorServer  # noqa: E402
from run_bench import (DOCKERD_IMAGE, Target, add_dockerd_args, bench_dir, close_dockerd, docker_cli,  # noqa: E402
                       fx, open_dockerd)

CLK = os.sysconf("SC_CLK_TCK")


def med(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


class Engine:
    """One engine under test: its Target, image name, and how to find its processes."""

    def __init__(self, name: str, t: Target, image: str, pids: list[int], supervisor: str, marker: str):
        self.name, self.t, self.image = name, t, image
        self.pids = pids                 # the engine's own processes (RSS, CPU)
        self.supervisor = supervisor     # the per-container supervisor's comm (conmon / containerd-shim)
        self.marker = marker             # a string in its supervisors' command lines (a root, a socket)

    def cli(self, docker: str, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        r = subprocess.run([docker, "-H", self.t.host, *args], env=self.t.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} -> {self.name}: {r.stderr.strip()[-300:]}")
        return r


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def parallel(n: int, clients: int, one) -> tuple[float, int]:
    """one(i) for i in range(n) on `clients` threads; (wall ms, failures)."""
    lock = threading.Lock()
    todo = list(range(n))
    failures = [0]

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            try:
                one(i)
            except Exception as e:       # a failure is counted and shown once, never hidden
                with lock:
                    failures[0] += 1
                    if failures[0] == 1:
                        print(f"scale_bench: {e}", file=sys.stderr)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return (time.perf_counter() - t0) * 1000, failures[0]


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def supervisors(comm_prefix: str, marker: str) -> list[int]:
    """Supervisor processes whose command line names `marker` (the engine's root or socket)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/comm") as f:
                comm = f.read().strip()
            if not comm.startswith(comm_prefix):
                continue
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(p))
        except OSError:
            continue
    return out


def pss_kib(pid: int) -> int:
    """Proportional set size: a supervisor's own share (shared libraries split)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return rss_kib(pid)


def run_rm(e: Engine, docker: str, runs: int) -> list[float]:
    return run_series(lambda: e.cli(docker, "run", "--rm", e.image, "true"), runs)


def trace(e: Engine, runs: int) -> dict[str, float | None]:
    steps: dict[str, list[float]] = {}
    for _ in range(runs):
        cid = e.t.api("POST", "/containers/create", {"Image": e.image, "Cmd": ["true"]})["Id"]
        try:
            e.t.api("POST", f"/containers/{cid}/start")
            tr = (e.t.api("GET", f"/containers/{cid}/json") or {}).get("StartTrace") or {}
            e.t.api("POST", f"/containers/{cid}/wait")
        finally:
            fx.unix_http(e.t.sock, "DELETE", f"/containers/{cid}?force=1", timeout=60)
        for s in tr.get("Steps", []):
            steps.setdefault(s["Step"], []).append(float(s["Ms"]))
            for k, v in (s.get("Parts") or {}).items():
                steps.setdefault(f"{s['Step']}.{k}", []).append(float(v))
        if tr:
            steps.setdefault("total", []).append(float(tr.get("TotalMs", 0)))
    return {k: med(v) for k, v in steps.items()}


class Control:
    """A second dockyardd with no containers of its own, started while the
    engine holds its N: `run --rm` on both, alternating, tells the engine's own
    growth (its tables, its start path) from the host's (the kernel and
    whatever else runs here with N containers on it)."""

    def __init__(self, docker: str, cfg: str, tar: str, log_dir: str):
        self.daemon = fx.Daemon(runtime="crun", log_path=Path(log_dir) / "control.log")
        self.daemon.start()
        t = Target(self.daemon.sock, cfg)
        subprocess.run([docker, "-H", t.host, "import", tar, "bb"], env=t.env, check=True, capture_output=True)
        self.engine = Engine("control", t, "bb", [self.daemon.proc.pid], "conmon", str(self.daemon.exec_root))

    def close(self) -> None:
        for p in self.daemon.cleanup() + self.daemon.remove():
            print(f"scale_bench: control cleanup: {p}", file=sys.stderr)


def alternate_samples(fns: list[Callable[[], Any]], runs: int) -> list[list[float]]:
    """Each of fns once per run, one after the other (the order turned every
    run, so a change in the machine's state hits all alike), runs + 1 times,
    the first a warm-up: the times (ms), in fns' order."""
    out: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for i in range(runs + 1):
        for j in (order if i % 2 else order[::-1]):
            ms = timed(fns[j])
            if i:
                out[j].append(ms)
    return out


def alternate(fns: list[Callable[[], Any]], runs: int) -> list[float | None]:
    """alternate_samples' medians."""
    return [med(v) for v in alternate_samples(fns, runs)]


def run_rm_alternating(a: Engine, b: Engine, docker: str, runs: int) -> list[float | None]:
    return alternate([lambda eng=eng: eng.cli(docker, "run", "--rm", eng.image, "true") for eng in (a, b)], runs)


def at_n(e: Engine, docker: str, n: int, args, control=None) -> dict[str, Any]:
    prefix = f"scb{os.getpid()}-{n}-"
    # the machine's own state varies run to run (this one's 1-min load average before the phase)
    r: dict[str, Any] = {"n": n, "load_before": round(os.getloadavg()[0], 2)}
    r["run_rm_at_0_ms"] = med(run_rm(e, docker, args.runs))
    if e.name == "dockyardd":
        r["trace_at_0_ms"] = trace(e, args.trace_runs)
    # the default bridge of both engines here is a /24: beyond ~250 the sleepers go on a user network
    net = []
    if args.sleeper_network == "none":
        net = ["--network", "none"]
        r["network"] = "none"
    elif n > 250:
        import refdockerd
        subnet = refdockerd.free_net(range(60, 100), 16)
        e.cli(docker, "network", "create", "--subnet", str(subnet), f"{prefix}net")
        net = ["--network", f"{prefix}net"]
        r["network"] = f"user network {subnet}"
    ctl = None
    try:
        wall, fails = parallel(n, args.clients, lambda i: e.cli(docker, "run", "-d", "--name", f"{prefix}{i}", *net,
                                                                e.image, "sleep", "1000000"))
        r["start_wall_s"], r["start_failures"] = round(wall / 1000, 2), fails
        # kept until the phase is over: its teardown is work dockerd's phase does not have
        ctl = control() if control is not None else None
        time.sleep(args.settle)
        r["settled_s"] = args.settle
        if ctl is not None:
            r["run_rm_ms"], r["run_rm_control_ms"] = run_rm_alternating(e, ctl.engine, docker, args.runs)
        else:
            r["run_rm_ms"] = med(run_rm(e, docker, args.runs))
        r["ps_cli_ms"], r["ps_cli_floor_ms"] = ps_with_floor(e, docker, args.runs)
        r["ps_cli_net_ms"] = _net(r["ps_cli_ms"], r["ps_cli_floor_ms"])
        r["ps_api_ms"] = med([timed(lambda: fx.unix_http(e.t.sock, "GET", "/containers/json", timeout=60))
                              for _ in range(args.runs)])
        time.sleep(2)
        r["engine_rss_mib"] = round(sum(rss_kib(p) for p in e.pids) / 1024, 1)
        sups = supervisors(e.supervisor, e.marker) if e.marker else []
        if sups:
            r["supervisor_pss_kib_per_container"] = round(sum(pss_kib(p) for p in sups) / max(n, 1))
            r["supervisors"] = len(sups)
        before = sum(cpu_ticks(p) for p in e.pids)
        time.sleep(args.idle_seconds)
        used = (sum(cpu_ticks(p) for p in e.pids) - before) / CLK
        r["idle_cpu_percent"] = round(100 * used / args.idle_seconds, 2)
        # dockyardd only, so last: its ten create/start/remove (and what their removal leaves to
        # the kernel and the trash) do not land on figures dockerd is measured without
        if e.name == "dockyardd":
            r["trace_ms"] = trace(e, args.trace_runs)
    finally:
        if ctl is not None:
            ctl.close()
        wall, fails = parallel(n, args.clients, lambda i: e.cli(docker, "rm", "-f", f"{prefix}{i}", check=False))
        r["rm_wall_s"], r["rm_failures"] = round(wall / 1000, 2), fails
        left = e.cli(docker, "ps", "-aq", "--filter", f"name={prefix}", check=False).stdout.split()
        if left:
            e.cli(docker, "rm", "-f", *left, check=False)
        if net and args.sleeper_network != "none":
            e.cli(docker, "network", "rm", f"{prefix}net", check=False)
    return r


def once(e: Engine, docker: str, args) -> dict[str, Any]:
    r: dict[str, Any] = {}
    names = [f"scb{os.getpid()}-p{i}" for i in range(20)]
    try:
        wall, fails = parallel(20, 20, lambda i: e.cli(docker, "run", "-d", "--name", names[i], e.image, "true"))
        r["parallel20_run_d_s"], r["parallel20_failures"] = round(wall / 1000, 2), fails
    finally:
        e.cli(docker, "rm", "-f", *names, check=False)
    name = f"scb{os.getpid()}-exec"
    e.cli(docker, "run", "-d", "--name", name, e.image, "sleep", "1000000")
    try:
        r["exec_ms"] = med(run_series(lambda: e.cli(docker, "exec", name, "true"), args.runs))
    finally:
        e.cli(docker, "rm", "-f", name, check=False)
    return r


def api_version(e: Engine) -> str:
    return str(e.t.api("GET", "/version")["ApiVersion"])


def floor_path(e: Engine) -> str:
    return f"/tmp/scb{os.getpid()}-{e.name}-floor.sock"


def alternating(engines: list[Engine], docker: str, runs: int) -> dict[str, Any]:
    """exec and `run --rm` on every engine, and exec against each engine's CLI
    floor, all alternating (alternate)."""
    name = f"scb{os.getpid()}-alt"
    keys = ("exec_ms", "exec_floor_ms", "run_rm_ms")
    with contextlib.ExitStack() as stack:
        fns: list[Callable[[], Any]] = []
        for e in engines:
            stack.callback(e.cli, docker, "rm", "-f", name, check=False)
            e.cli(docker, "run", "-d", "--name", name, e.image, "sleep", "1000000")
            fs = stack.enter_context(FloorServer(floor_path(e), api_version=api_version(e)))
            fns += [lambda e=e: e.cli(docker, "exec", name, "true"),
                    lambda e=e, fs=fs: subprocess.run([docker, "-H", fs.host, "exec", name, "true"], env=e.t.env,
                                                      check=True, capture_output=True, stdin=subprocess.DEVNULL,
                                                      timeout=60),
                    lambda e=e: e.cli(docker, "run", "--rm", e.image, "true")]
        meds = alternate(fns, runs)
    out: dict[str, Any] = {}
    for i, e in enumerate(engines):
        d = dict(zip(keys, meds[3 * i:3 * i + 3]))
        d["exec_net_ms"] = _net(d["exec_ms"], d["exec_floor_ms"])
        out[e.name] = d
    return out


def _net(x: float | None, floor: float | None) -> float | None:
    return round(x - floor, 1) if x is not None and floor is not None else None


def ps_with_floor(e: Engine, docker: str, runs: int) -> tuple[float | None, float | None]:
    """`docker ps` against the engine and against a floor server that answers
    with the listing this engine sent, alternating: (median, floor median)."""
    ver = api_version(e)
    status, body = fx.unix_http(e.t.sock, "GET", f"/v{ver}/containers/json", timeout=60)
    if status != 200:
        raise RuntimeError(f"GET /containers/json -> {e.name}: {status}")
    with FloorServer(floor_path(e), api_version=ver, listing=body) as fs:
        got, floor = alternate([lambda: e.cli(docker, "ps"),
                                lambda: subprocess.run([docker, "-H", fs.host, "ps"], env=e.t.env, check=True,
                                                       capture_output=True, stdin=subprocess.DEVNULL, timeout=60)],
                               runs)
    return got, floor


def run_series(fn, runs: int) -> list[float]:
    out = []
    for i in range(runs + 1):
        ms = timed(fn)
        if i:
            out.append(ms)
    return out


def dockerd_pids(handle) -> list[int]:
    pids = []
    for proc in (getattr(handle, "proc", None), getattr(handle, "containerd", None)):
        if proc is not None and proc.poll() is None:
            pids.append(proc.pid)
    return pids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="100,400,1000", help="comma-separated numbers of running containers")
    ap.add_argument("--clients", type=int, default=4, help="parallel docker CLIs for start and rm (default 4)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per latency figure (default 10)")
    ap.add_argument("--trace-runs", type=int, default=10, help="create+start for the start trace (default 10)")
    ap.add_argument("--idle-seconds", type=float, default=10, help="idle CPU window (default 10 s)")
    ap.add_argument("--settle", type=float, default=20,
                    help="seconds between the last start and the figures at N (default 20): what the "
                         "burst leaves the kernel to do (writeback of its ~30 MB of dirty pages, deferred "
                         "frees) is not a per-start cost")
    ap.add_argument("--sleeper-network", choices=("default", "none"), default="default",
                    help="the sleepers' network: default (the bridge; a user network beyond 250) or none "
                         "(no endpoint: the mount and runtime path alone)")
    ap.add_argument("--no-control", action="store_true",
                    help="no control dockyardd (an empty second one, started at N, whose `run --rm` is "
                         "timed alternating with the engine's: the host's share of the growth with N)")
    ap.add_argument("--dockyard-sock", help="use this running dockyardd instead of starting one")
    ap.add_argument("--no-dockyard", action="store_true", help="only dockerd")
    add_dockerd_args(ap)
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout only)")
    args = ap.parse_args()
    ns = [int(x) for x in args.n.split(",") if x.strip()]

    docker = docker_cli()
    tmp, cfg, tar = bench_dir("dys")

    engines: list[Engine] = []
    daemon = None
    dd_handle = None
    dockerd_note = "skipped"
    res: dict[str, Any] = {"bench": "scale", "debian": _debian(), "kernel": platform.release(),
                           "cores": os.cpu_count(), "clients": args.clients, "runs": args.runs, "engines": {}}
    try:
        if not args.no_dockyard:
            if args.dockyard_sock:
                dy = Target(args.dockyard_sock, cfg)
                pids = [int(p) for p in subprocess.run(["pgrep", "-f", args.dockyard_sock], capture_output=True,
                                                       text=True).stdout.split()]
                exec_root = ""
            else:
                daemon = fx.Daemon(runtime="crun", log_path=Path(tmp.name) / "dockyardd.log")
                print(f"starting dockyardd on {daemon.host}", file=sys.stderr)
                daemon.start()
                dy = Target(daemon.sock, cfg)
                pids = [daemon.proc.pid]
                exec_root = str(daemon.exec_root)
            if not dy.has_image("bb"):
                subprocess.run([docker, "-H", dy.host, "import", tar, "bb"], env=dy.env, check=True, capture_output=True)
            # conmon's command line names the runtime's root, under the exec root
            engines.append(Engine("dockyardd", dy, "bb", pids, "conmon", exec_root))
        dd, dockerd_note, dd_handle = open_dockerd(args, cfg, tmp.name)
        if dd is not None:
            if not dd.has_image(DOCKERD_IMAGE):
                subprocess.run([docker, "-H", dd.host, "import", tar, DOCKERD_IMAGE], env=dd.env, check=True,
                               capture_output=True)
            engines.append(Engine("dockerd", dd, DOCKERD_IMAGE, dockerd_pids(dd_handle), "containerd-shim",
                                  getattr(dd_handle, "containerd_sock", "")))
        res["dockerd"] = dockerd_note
        if engines:
            print("== alternating", file=sys.stderr)
            res["alternating"] = alternating(engines, docker, 2 * args.runs)
        for e in engines:
            print(f"== {e.name}", file=sys.stderr)
            er: dict[str, Any] = {"once": once(e, docker, args), "at": []}
            for n in ns:
                print(f"   N={n}", file=sys.stderr)
                try:
                    control = None
                    if e.name == "dockyardd" and daemon is not None and not args.no_control:
                        control = lambda: Control(docker, cfg, tar, tmp.name)  # noqa: E731
                    er["at"].append(at_n(e, docker, n, args, control))
                except Exception as ex:     # recorded, and the other engines and Ns still run
                    print(f"scale_bench: {e.name} at N={n}: {ex}", file=sys.stderr)
                    er["at"].append({"n": n, "error": str(ex)[-500:]})
            res["engines"][e.name] = er
    finally:
        if daemon is not None:
            for p in daemon.cleanup() + daemon.remove():
                print(f"scale_bench: cleanup: {p}", file=sys.stderr)
        close_dockerd(dd_handle, "scale_bench")
    res["ratios"] = ratios(res)
    if args.json and args.json != "-":
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.json == "-":
        print(json.dumps(res, indent=1))
    else:
        print_table(res)
    return 0


def ratios(res: dict[str, Any]) -> dict[str, Any]:
    """dockyardd / dockerd for each figure both have."""
    a, b = res["engines"].get("dockyardd"), res["engines"].get("dockerd")
    if not a or not b:
        return {}
    out: dict[str, Any] = {k: ratio(a["once"].get(k), b["once"].get(k)) for k in a["once"]}
    alt = res.get("alternating") or {}
    if "dockyardd" in alt and "dockerd" in alt:
        for k, v in alt["dockyardd"].items():
            out[f"alternating_{k}"] = ratio(v, alt["dockerd"].get(k))
    for ra, rb in zip(a["at"], b["at"]):
        for k, v in ra.items():
            if k not in ("n", "load_before") and isinstance(v, (int, float)) and isinstance(rb.get(k), (int, float)):
                out[f"{k}@{ra['n']}"] = ratio(v, rb[k])
    return out


def print_table(res: dict[str, Any]) -> None:
    print(f"scale bench: {res['cores']} cores, kernel {res['kernel']}, Debian {res['debian']}, "
          f"{res['clients']} clients, dockerd: {res.get('dockerd')}")
    a = res["engines"].get("dockyardd") or {}
    b = res["engines"].get("dockerd") or {}
    rows = []
    alt = res.get("alternating") or {}
    for k in (alt.get("dockyardd") or alt.get("dockerd") or {}):
        rows.append((f"alternating {k}", (alt.get("dockyardd") or {}).get(k), (alt.get("dockerd") or {}).get(k)))
    for k in (a.get("once") or b.get("once") or {}):
        rows.append((k, (a.get("once") or {}).get(k), (b.get("once") or {}).get(k)))
    for i, ra in enumerate(a.get("at") or b.get("at") or []):
        rb = (b.get("at") or [{}] * (i + 1))[i] if b else {}
        ra = (a.get("at") or [{}] * (i + 1))[i] if a else {}
        for k in ("load_before", "run_rm_at_0_ms", "start_wall_s", "start_failures", "run_rm_ms",
                  "run_rm_control_ms", "ps_cli_ms", "ps_cli_floor_ms", "ps_cli_net_ms", "ps_api_ms", "engine_rss_mib",
                  "supervisor_pss_kib_per_container", "idle_cpu_percent", "rm_wall_s"):
            rows.append((f"{k} @N={ra.get('n', rb.get('n'))}", ra.get(k), rb.get(k)))
    print(f"{'figure':<44} {'dockyardd':>10} {'dockerd':>10} {'ratio':>6}")
    for name, x, y in rows:
        r = (ratio(x, y) if isinstance(x, (int, float)) and isinstance(y, (int, float))
             and not name.startswith("load") else None)
        print(f"{name:<44} {_fmt(x):>10} {_fmt(y):>10} {_fmt(r):>6}")
    for who, e in (("dockyardd", a), ("dockerd", b)):
        for r in e.get("at") or []:
            if r.get("error"):
                print(f"{who} at N={r['n']} failed: {r['error']}")
    for r in a.get("at") or []:
        for key in ("trace_at_0_ms", "trace_ms"):
            if r.get(key):
                where = 0 if key == "trace_at_0_ms" else r["n"]
                print(f"start trace medians (ms) at {where} running: " +
                      ", ".join(f"{k} {v}" for k, v in r[key].items()))


def _fmt(v) -> str:
    return "-" if v is None else str(v)


def _debian() -> str:
    try:
        return Path("/etc/debian_version").read_text().strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())

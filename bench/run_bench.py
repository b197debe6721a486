#!/usr/bin/env python3
"""Container start latency: dockyardd against dockerd, same CLI, same image.

Times `run --rm bb true` end to end, N times each (interleaved, after one
warm-up), through
  - the docker CLI against dockyardd,
  - our `dockyard` CLI against dockyardd,
  - the docker CLI against dockerd: by default a private one this bench
    starts and removes (tests/refdockerd.py: its own roots, socket, bridge
    and containerd; never the host's /var/run/docker.sock) when dockerd is
    installed; --dockerd-sock PATH for one you started yourself;
    --no-dockerd for none,
and prints medians and the dockyard/dockerd ratio; then reads the daemon's
own start trace (`StartTrace` in GET /containers/{id}/json) over a few
create+start and prints the median of each step.

Unless --dockyard-sock is given it starts its own dockyardd on temp roots,
with the same `Daemon` class the integration tests use. The image is the
busybox rootfs of scripts/make-busybox-image.sh, imported as `bb` (and as
dockyard-bench-bb into dockerd, removed afterwards).

    .venv/bin/python bench/run_bench.py [-n 20] [--json]

Nothing asserts on these numbers; see bench/README.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCKERD_IMAGE = "dockyard-bench-bb"


def load_fixtures():
    """tests/integration/conftest.py as a module: Daemon, unix_http, venv_script."""
    path = REPO / "tests" / "integration" / "conftest.py"
    spec = importlib.util.spec_from_file_location("dockyard_test_fixtures", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


fx = load_fixtures()


class Target:
    """A daemon to run against: its socket and the environment for CLIs."""

    def __init__(self, sock: str, config_dir: str):
        self.sock = sock
        self.host = "unix://" + sock
        self.env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY",
                                                                        "DOCKER_CERT_PATH", "DOCKER_API_VERSION")}
        self.env.update(DOCKER_HOST=self.host, DOCKYARD_HOST=self.host, DOCKER_CONFIG=config_dir,
                        DOCKER_CLI_HINTS="false")

    def answers(self) -> bool:
        try:
            return fx.unix_http(self.sock, "GET", "/_ping", timeout=3)[0] == 200
        except OSError:
            return False

    def has_image(self, name: str) -> bool:
        return fx.unix_http(self.sock, "GET", f"/images/{name}/json")[0] == 200

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, data = fx.unix_http(self.sock, method, path, body, timeout=120)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data.strip() else None


def add_dockerd_args(ap: argparse.ArgumentParser) -> None:
    """The benches' dockerd options (see open_dockerd)."""
    ap.add_argument("--dockerd-sock", help="compare with the dockerd on this socket (one you started; default: "
                                           "a private dockerd this bench starts, when dockerd is installed)")
    ap.add_argument("--no-dockerd", action="store_true", help="do not compare with dockerd")


def open_dockerd(args: argparse.Namespace, cfg: str, log_dir: str | None = None) -> tuple[Target | None, str, Any]:
    """The dockerd to compare with: (target or None, a note saying which or
    why none, a handle for close_dockerd). Never the host's dockerd: only an
    explicitly given --dockerd-sock, else a private one started here."""
    if getattr(args, "no_dockerd", False):
        return None, "skipped (--no-dockerd)", None
    if args.dockerd_sock:
        t = Target(args.dockerd_sock, cfg)
        if os.path.exists(t.sock) and t.answers():
            return t, t.sock, None
        print(f"bench: no dockerd answers on {t.sock}", file=sys.stderr)
        return None, f"no dockerd answers on {t.sock}", None
    import refdockerd     # tests/refdockerd.py (tests/ is on sys.path once fx is loaded)
    reason = refdockerd.unavailable_reason()
    if reason:
        return None, f"no private dockerd: {reason}", None
    try:
        h = refdockerd.start_private_dockerd(log_dir=log_dir)
    except refdockerd.Unavailable as e:
        print(f"bench: private dockerd did not start: {e}", file=sys.stderr)
        return None, f"private dockerd did not start: {str(e).splitlines()[0]}", None
    print(f"started a private dockerd on {h.host} (bridge {h.bridge})", file=sys.stderr)
    return Target(h.sock, cfg), f"private {refdockerd.dockerd_version()}", h


def close_dockerd(handle: Any, who: str = "bench") -> None:
    """Stop a private dockerd from open_dockerd and report what it left."""
    if handle is not None:
        for p in handle.stop():
            print(f"{who}: private dockerd cleanup: {p}", file=sys.stderr)


def bench_dir(prefix: str, busybox: bool = True) -> tuple[tempfile.TemporaryDirectory, str, str]:
    """A bench's temporary directory, the empty docker CLI config in it, and (busybox) the
    busybox image tarball of scripts/make-busybox-image.sh: (tmp, cfg, tar)."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    cfg = os.path.join(tmp.name, "docker-config")
    os.mkdir(cfg)
    tar = os.path.join(tmp.name, "busybox.tar")
    if busybox:
        subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-image.sh"), tar], check=True,
                       capture_output=True)
    return tmp, cfg, tar


def side_by_side(args: argparse.Namespace, prefix: str):
    """A bench's own dockyardd (with `bb` to import from the tarball) and, per the dockerd options,
    a dockerd: (docker CLI, tmp, tar, daemon, {label: (Target, image)}, dockerd note, dockerd handle)."""
    docker = docker_cli()
    tmp, cfg, tar = bench_dir(prefix)
    daemon = fx.Daemon(log_path=Path(tmp.name) / "dockyardd.log")
    daemon.start()
    targets = {"dockyardd": (Target(daemon.sock, cfg), "bb")}
    try:
        dd, note, dd_handle = open_dockerd(args, cfg, tmp.name)
    except BaseException:
        teardown_daemon(daemon)
        raise
    if dd is not None:
        targets["dockerd"] = (dd, DOCKERD_IMAGE)
    return docker, tmp, tar, daemon, targets, note, dd_handle


def docker_cli() -> str:
    import shutil
    exe = shutil.which("docker")
    if not exe:
        sys.exit("run_bench: docker CLI not on PATH (scripts/install.sh --deps-only installs it)")
    return exe


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str | None]:
    """Wall time in ms of one command, and an error text if it failed."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        return ms, f"{' '.join(cmd)} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-500:]}"
    return ms, None


def summary(samples: list[float]) -> dict[str, Any]:
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1),
            "max_ms": round(max(samples), 1), "runs": len(samples), "samples_ms": [round(s, 1) for s in samples]}


def time_series(series: dict[str, tuple[list[str], dict[str, str]]], n: int) -> tuple[dict, dict]:
    """Run each command once to warm up, then n times, interleaved so drift
    in the machine's load hits every series alike. A series that fails stops."""
    samples: dict[str, list[float]] = {name: [] for name in series}
    errors: dict[str, str] = {}
    for i in range(n + 1):
        for name, (cmd, env) in series.items():
            if name in errors:
                continue
            ms, err = run(cmd, env)
            if err:
                errors[name] = err
            elif i > 0:
                samples[name].append(ms)
    return {k: summary(v) for k, v in samples.items() if v and k not in errors}, errors


def start_trace(t: Target, image: str, runs: int, host_config: dict | None = None) -> dict[str, Any]:
    """create + start + inspect (StartTrace) + wait + remove, `runs` times."""
    steps: dict[str, list[float]] = {}
    ok: dict[str, bool] = {}
    totals: list[float] = []
    missing = 0
    body: dict[str, Any] = {"Image": image, "Cmd": ["true"]}
    if host_config:
        body["HostConfig"] = host_config
        if host_config.get("PortBindings"):
            body["ExposedPorts"] = {p: {} for p in host_config["PortBindings"]}
    for _ in range(runs):
        cid = t.api("POST", "/containers/create", body)["Id"]
        try:
            t.api("POST", f"/containers/{cid}/start")
            trace = (t.api("GET", f"/containers/{cid}/json") or {}).get("StartTrace")
            t.api("POST", f"/containers/{cid}/wait")
        finally:
            fx.unix_http(t.sock, "DELETE", f"/containers/{cid}?force=1", timeout=60)
        if not trace:
            missing += 1
            continue
        totals.append(float(trace.get("TotalMs", 0)))
        for s in trace.get("Steps", []):
            steps.setdefault(s["Step"], []).append(float(s["Ms"]))
            ok[s["Step"]] = ok.get(s["Step"], True) and bool(s.get("Ok", True))
            for part, ms in (s.get("Parts") or {}).items():    # a step's finer timings, e.g. network's
                key = f"{s['Step']}.{part}"
                steps.setdefault(key, []).append(float(ms))
                ok.setdefault(key, True)
    return {
        "starts": runs, "without_trace": missing,
        "total_median_ms": round(statistics.median(totals), 2) if totals else None,
        "steps": [{"step": k, "median_ms": round(statistics.median(v), 2), "n": len(v), "ok": ok[k]}
                  for k, v in steps.items()],
    }


def dual_stack_trace(t: Target, runs: int) -> dict[str, Any]:
    """The start trace on an --ipv6 user network with port 80 published on 0.0.0.0 and [::] (issue 17's
    figure: the network step with dual-stack)."""
    name = f"dybench{os.getpid()}"
    t.api("POST", "/networks/create", {"Name": name, "EnableIPv6": True})
    try:
        return start_trace(t, "bb", runs, {"NetworkMode": name, "PortBindings": {"80/tcp": [{"HostPort": ""}]}})
    finally:
        fx.unix_http(t.sock, "DELETE", f"/networks/{name}", timeout=60)


def print_series(res: dict[str, Any], first: str) -> None:
    """The median/min/max table of res["series"] and the rows that failed (res["errors"])."""
    w = max([len(k) for k in res["series"]] + [len(k) for k in res["errors"]] + [10])
    print(f"{first:<{w}}  {'median ms':>9}  {'min ms':>8}  {'max ms':>8}  {'runs':>4}")
    for name, s in res["series"].items():
        print(f"{name:<{w}}  {s['median_ms']:>9.1f}  {s['min_ms']:>8.1f}  {s['max_ms']:>8.1f}  {s['runs']:>4}")
    for name, err in res["errors"].items():
        print(f"{name:<{w}}  FAILED: {err}")


def print_table(res: dict[str, Any]) -> None:
    print(f"dockyard start benchmark: {res['runs']} runs per row after 1 warm-up; "
          f"runtime {res['runtime']}; Debian {res['debian']}; {res['cores']} cores")
    print()
    print_series(res, "command")
    print()
    if res["ratio"] is not None:
        print(f"ratio dockyard/dockerd (docker CLI, medians): {res['ratio']:.2f} (dockerd: {res['dockerd']})")
    else:
        print(f"ratio dockyard/dockerd: n/a ({res['dockerd'] or 'no dockerd answered'})")
    tr = res["start_trace"]
    print()
    if tr is None:
        print("start trace: not measured")
        return
    if isinstance(tr, str):
        print(f"start trace: FAILED: {tr}")
        return
    print(f"start trace (StartTrace of GET /containers/{{id}}/json, median of {tr['starts']} starts"
          + (f", {tr['without_trace']} without a trace" if tr["without_trace"] else "") + "):")
    if not tr["steps"]:
        print("  (no StartTrace in inspect)")
        return
    sw = max(len(s["step"]) for s in tr["steps"] + [{"step": "total"}])
    print(f"  {'step':<{sw}}  {'median ms':>9}  ok")
    for s in tr["steps"]:
        print(f"  {s['step']:<{sw}}  {s['median_ms']:>9.2f}  {'yes' if s['ok'] else 'NO'}")
    print(f"  {'total':<{sw}}  {tr['total_median_ms']:>9.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=20, help="timed runs per command (default 20)")
    ap.add_argument("--trace-runs", type=int, default=5, help="create+start for the start trace (default 5; 0 skips)")
    ap.add_argument("--dockyard-sock", help="use this running dockyardd instead of starting one")
    add_dockerd_args(ap)
    ap.add_argument("--runtime", default="crun", choices=("crun", "runc"), help="runtime of the dockyardd started here")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--dual-stack", action="store_true",
                    help="start trace on a dual-stack user network (--ipv6) with -p 80 published on both families")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    docker = docker_cli()
    tmp, cfg, tar = bench_dir("dyb")

    daemon = None
    if args.dockyard_sock:
        dy = Target(args.dockyard_sock, cfg)
        if not dy.answers():
            sys.exit(f"run_bench: nothing answers /_ping on {args.dockyard_sock}")
    else:
        daemon = fx.Daemon(runtime=args.runtime, log_path=Path(tmp.name) / "dockyardd.log")
        print(f"starting dockyardd on {daemon.host} (log {daemon.log_path})", file=sys.stderr)
        try:
            daemon.start()
        except Exception:
            teardown_daemon(daemon)
            raise
        dy = Target(daemon.sock, cfg)

    imported_into_dockerd = False
    try:
        dd, dockerd_note, dd_handle = open_dockerd(args, cfg, tmp.name)
    except BaseException:
        if daemon is not None:
            teardown_daemon(daemon)
        raise

    try:
        if not dy.has_image("bb"):
            subprocess.run([docker, "-H", dy.host, "import", tar, "bb"], env=dy.env, check=True,
                           capture_output=True)
        dyexe = fx.venv_script("dockyard") or [sys.executable, "-m", "dockyard.cli.main"]
        _compile_cli()
        series = {
            "docker run --rm bb true -> dockyardd": ([docker, "-H", dy.host, "run", "--rm", "bb", "true"], dy.env),
            "dockyard run --rm bb true -> dockyardd": ([*dyexe, "run", "--rm", "bb", "true"], dy.env),
        }
        if dd is not None:
            if not dd.has_image(DOCKERD_IMAGE):
                subprocess.run([docker, "-H", dd.host, "import", tar, DOCKERD_IMAGE], env=dd.env, check=True,
                               capture_output=True)
                imported_into_dockerd = True
            series["docker run --rm bb true -> dockerd"] = (
                [docker, "-H", dd.host, "run", "--rm", DOCKERD_IMAGE, "true"], dd.env)

        results, errors = time_series(series, args.runs)
        a = results.get("docker run --rm bb true -> dockyardd")
        b = results.get("docker run --rm bb true -> dockerd")
        trace: Any = None
        if args.trace_runs > 0:
            try:
                trace = (dual_stack_trace(dy, args.trace_runs) if args.dual_stack
                         else start_trace(dy, "bb", args.trace_runs))
            except Exception as e:       # a benchmark reports, it does not crash
                trace = f"{type(e).__name__}: {e}"
        res = {
            "runs": args.runs, "runtime": args.runtime if daemon else "(external dockyardd)",
            "debian": Path("/etc/debian_version").read_text().strip() if os.path.exists("/etc/debian_version") else platform.platform(),
            "cores": os.cpu_count(), "series": results, "errors": errors,
            "ratio": round(a["median_ms"] / b["median_ms"], 3) if a and b else None,
            "dockerd": dockerd_note, "start_trace": trace,
        }
    finally:
        if dd is not None and imported_into_dockerd and dd_handle is None:
            subprocess.run([docker, "-H", dd.host, "rmi", DOCKERD_IMAGE], env=dd.env, capture_output=True)
        close_dockerd(dd_handle, "run_bench")
        if daemon is not None:
            teardown_daemon(daemon)
        tmp.cleanup()

    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print_table(res)
    return 1 if res["errors"] or isinstance(res["start_trace"], str) else 0


def _compile_cli() -> None:
    """Byte-compile the dockyard package first, as any install does: with
    PYTHONDONTWRITEBYTECODE set (as in some CI and sandbox environments)
    every `dockyard` run would otherwise compile its modules again (~20 ms)."""
    import dockyard
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.dirname(dockyard.__file__)], env=env,
                   capture_output=True)


def teardown_daemon(daemon) -> None:
    problems = daemon.cleanup() + daemon.remove()
    for p in problems:
        print(f"run_bench: cleanup: {p}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Image build time: dockyardd's classic builder against dockerd's, same CLI.

Builds issue 13's 10-step Dockerfile (FROM, 5 RUN, COPY of a 20 MB
context, ENV, WORKDIR, CMD) with the docker CLI's legacy builder
(DOCKER_BUILDKIT=0), N times each after one warm-up, interleaved:
  - `--no-cache`: every step runs;
  - cached: every step is `Using cache` (the 20 MB context still travels
    and COPY's sources are still checked);
against its own dockyardd and, when this host can run one, a private
dockerd (tests/refdockerd.py: its own roots, socket, bridge and
containerd, removed afterwards; never the system's /var/run/docker.sock).
Prints median/min/max wall time per row, the dockyard/dockerd ratios, and
the median time of each step (from one Step line to the next, as the CLI
prints them).

    .venv/bin/python bench/build_bench.py [-n 5] [--json] [--no-dockerd]

Nothing asserts on these numbers; see bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from run_bench import REPO, teardown_daemon, docker_cli, fx, print_series  # noqa: E402

DOCKERFILE = """\
FROM bb
RUN echo one > /one
RUN mkdir -p /opt/app && echo two > /opt/app/two
RUN for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; done > /three
RUN head -c 1048576 /dev/zero > /four
RUN rm /four && echo five > /five
COPY data /data
ENV APP_MODE=bench
WORKDIR /data
CMD ["ls", "/data"]
"""
STEPS = 10
CONTEXT_MB = 20
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def make_context(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / "data").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    for i in range(CONTEXT_MB):
        (ctx / "data" / f"blob{i:02d}").write_bytes(os.urandom(1 << 20))
    return ctx


def timed_build(docker: str, host: str, env: dict, ctx: Path, tag: str, nocache: bool
                ) -> tuple[float, list[float], str | None]:
    """One `docker build` (legacy builder): wall ms, ms before the first
    Step line then per step (Step line to the next, the last to the end),
    and an error text if it failed."""
    cmd = [docker, "-H", host, "build", "-t", tag, *(["--no-cache"] if nocache else []), str(ctx)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env={**env, "DOCKER_BUILDKIT": "0"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1)
    marks: list[float] = []
    out = []
    assert p.stdout is not None
    for line in p.stdout:
        out.append(line)
        if _STEP.match(line.rstrip("\n")):
            marks.append(time.perf_counter())
    err = p.stderr.read() if p.stderr else ""
    rc = p.wait()
    end = time.perf_counter()
    ms = (end - t0) * 1000
    if rc != 0:
        return ms, [], f"{' '.join(cmd)} exited {rc}: {(err or ''.join(out)).strip()[-500:]}"
    if nocache is False and "".join(out).count("Using cache") < STEPS - 1:
        return ms, [], "the cached build did not use the cache for every step:\n" + "".join(out)[-800:]
    marks.append(end)
    # [before the first Step line (CLI start, context upload and unpack), step 1, ..., step N]
    return ms, [(b - a) * 1000 for a, b in zip([t0] + marks, marks)], None


def summary(samples: list[float]) -> dict[str, Any]:
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1),
            "max_ms": round(max(samples), 1), "runs": len(samples), "samples_ms": [round(s, 1) for s in samples]}


def bench(targets: dict[str, tuple[str, dict]], docker: str, ctx: Path, n: int) -> tuple[dict, dict, dict]:
    """Per target: a --no-cache and a cached build per round (round 0 warms up)."""
    walls: dict[str, list[float]] = {}
    steps: dict[str, list[list[float]]] = {}
    errors: dict[str, str] = {}
    for i in range(n + 1):
        for name, (host, env) in targets.items():
            for mode in ("no-cache", "cached"):
                row = f"{mode} -> {name}"
                if row in errors:
                    continue
                ms, per_step, err = timed_build(docker, host, env, ctx, "build-bench", mode == "no-cache")
                if err:
                    errors[row] = err
                elif i > 0:
                    walls.setdefault(row, []).append(ms)
                    steps.setdefault(row, []).append(per_step)
    step_medians = {row: [round(statistics.median(s[k] for s in runs), 1) for k in range(len(runs[0]))]
                    for row, runs in steps.items() if runs and all(len(s) == len(runs[0]) for s in runs)}
    return {k: summary(v) for k, v in walls.items()}, step_medians, errors


def print_table(res: dict[str, Any]) -> None:
    print(f"dockyard build benchmark: {res['runs']} runs per row after 1 warm-up; {STEPS}-step Dockerfile, "
          f"{CONTEXT_MB} MB context; legacy builder (DOCKER_BUILDKIT=0); Debian {res['debian']}; "
          f"{res['cores']} cores")
    print()
    print_series(res, "build")
    print()
    for mode, ratio in res["ratios"].items():
        print(f"ratio dockyard/dockerd, {mode} (medians): " + (f"{ratio:.2f}" if ratio is not None
                                                             else f"n/a ({res['dockerd']})"))
    if res["steps"]:
        print()
        rows = list(res["steps"])
        print("median ms per step (from its Step line to the next):")
        print("  " + f"{'step':<40}" + "".join(f"{r:>28}" for r in rows))
        lines = ["(CLI, context upload, unpack)"] + DOCKERFILE.strip().splitlines()
        for k in range(STEPS + 1):
            vals = "".join(f"{res['steps'][r][k] if k < len(res['steps'][r]) else '':>28}" for r in rows)
            print(f"  {k if k else '':>2} {lines[k][:36]:<37}{vals}")


def start_dockerd(tmp: str, tar: str):
    """A private dockerd, or (None, why not)."""
    try:
        import refdockerd
    except ImportError as e:
        return None, f"tests/refdockerd.py not importable: {e}"
    reason = refdockerd.unavailable_reason()
    if reason:
        return None, reason
    try:
        return refdockerd.start_private_dockerd("/tmp", image_tar=tar, image="bb", log_dir=tmp), None
    except refdockerd.Unavailable as e:
        return None, f"private dockerd did not start: {e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=5, help="timed builds per row (default 5)")
    ap.add_argument("--no-dockerd", action="store_true", help="do not compare with a private dockerd")
    ap.add_argument("--runtime", default="crun", choices=("crun", "runc"), help="runtime of the dockyardd")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    docker = docker_cli()
    tmp = tempfile.TemporaryDirectory(prefix="dybb")
    tar = os.path.join(tmp.name, "busybox.tar")
    subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-image.sh"), tar], check=True)
    ctx = make_context(Path(tmp.name))
    daemon = fx.Daemon(runtime=args.runtime, log_path=Path(tmp.name) / "dockyardd.log")
    dd, dockerd_note = None, "skipped (--no-dockerd)"
    print(f"starting dockyardd on {daemon.host} (log {daemon.log_path})", file=sys.stderr)
    try:
        daemon.start()
        daemon.docker("import", tar, "bb")
        targets = {"dockyardd": (daemon.host, daemon.env)}
        if not args.no_dockerd:
            dd, dockerd_note = start_dockerd(tmp.name, tar)
            if dd is not None:
                targets["dockerd"] = (dd.host, dd.env)
                dockerd_note = f"private dockerd {dd.host}"
        series, steps, errors = bench(targets, docker, ctx, args.runs)

        def ratio(mode: str) -> float | None:
            a, b = series.get(f"{mode} -> dockyardd"), series.get(f"{mode} -> dockerd")
            return round(a["median_ms"] / b["median_ms"], 3) if a and b else None
        res = {
            "runs": args.runs, "runtime": args.runtime, "steps_in_dockerfile": STEPS, "context_mb": CONTEXT_MB,
            "debian": Path("/etc/debian_version").read_text().strip() if os.path.exists("/etc/debian_version")
            else platform.platform(),
            "cores": os.cpu_count(), "series": series, "errors": errors,
            "ratios": {"no-cache": ratio("no-cache"), "cached": ratio("cached")},
            "dockerd": dockerd_note, "steps": steps,
        }
    finally:
        if dd is not None:
            for p in dd.stop():
                print(f"build_bench: dockerd cleanup: {p}", file=sys.stderr)
        teardown_daemon(daemon)
        tmp.cleanup()

    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print_table(res)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Exec and ps latency, dockyardd vs dockerd, interleaved in one run.

1. `docker exec CTR true` through the real docker CLI, `-n` runs after one
   warm-up, alternating between the two daemons so a change in the machine's
   load hits both alike.
2. With `--ps N`: N `sleep` containers on `--network none` started on each
   daemon (4 parallel docker CLIs), then `docker ps` (CLI) and a raw
   `GET /containers/json`, alternating, `-n` runs each.

Against its own dockyardd (temp roots, as run_bench.py) and a private dockerd
(tests/refdockerd.py) unless --no-dockerd / --dockerd-sock.

    .venv/bin/python bench/exec_ps_bench.py [-n 30] [--ps 300] [--json]   # as root
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb  # noqa: E402
import scale_bench as sb  # noqa: E402


def _med(v: list[float]) -> dict:
    return {"median_ms": round(statistics.median(v), 1), "min_ms": round(min(v), 1),
            "max_ms": round(max(v), 1), "n": len(v)} if v else {}


def _cli(docker: str, t, *args: str) -> None:
    subprocess.run([docker, "-H", t.host, *args], env=t.env, check=True, capture_output=True,
                   stdin=subprocess.DEVNULL, timeout=300)


def interleaved(targets: dict, fn, runs: int) -> dict:
    samples = sb.alternate_samples([lambda t=t, image=image: fn(t, image) for t, image in targets.values()], runs)
    res = {k: _med(v) for k, v in zip(targets, samples)}
    if len(targets) == 2:
        a, b = (res[k]["median_ms"] for k in targets)
        res["ratio"] = round(a / b, 3)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=30)
    ap.add_argument("--ps", type=int, default=0, help="running sleepers for the ps figures (default: no ps)")
    ap.add_argument("--no-exec", action="store_true", help="skip the exec figure")
    rb.add_dockerd_args(ap)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    docker, tmp, tar, daemon, targets, note, dd_handle = rb.side_by_side(args, "dyep")
    res: dict = {"cores": os.cpu_count(), "dockerd": note, "load_before": os.getloadavg()[0]}
    imported = False
    name = "ep" + secrets.token_hex(4)
    prefix = name + "-"
    try:
        for label, (t, image) in targets.items():
            if not t.has_image(image):
                _cli(docker, t, "import", tar, image)
                imported = imported or label == "dockerd"
            _cli(docker, t, "run", "-d", "--name", name, image, "sleep", "3600")
        if not args.no_exec:
            res["exec_true"] = interleaved(targets, lambda t, _i: _cli(docker, t, "exec", name, "true"), args.runs)
        if args.ps:
            for label, (t, image) in targets.items():
                wall, fails = sb.parallel(args.ps, 4, lambda i, t=t, image=image: _cli(
                    docker, t, "run", "-d", "--network", "none", "--name", f"{prefix}{i}", image, "sleep", "1000000"))
                res.setdefault("start_wall_s", {})[label] = (round(wall / 1000, 1), fails)
            res["ps_cli"] = interleaved(targets, lambda t, _i: _cli(docker, t, "ps"), args.runs)
            res["ps_api"] = interleaved(targets, lambda t, _i: rb.fx.unix_http(t.sock, "GET", "/containers/json",
                                                                               timeout=60), args.runs)
            res["ps_api_all"] = interleaved(targets, lambda t, _i: rb.fx.unix_http(
                t.sock, "GET", "/containers/json?all=1", timeout=60), args.runs)
        res["load_after"] = os.getloadavg()[0]
    finally:
        for label, (t, image) in targets.items():
            if args.ps:
                sb.parallel(args.ps, 4, lambda i, t=t: subprocess.run(
                    [docker, "-H", t.host, "rm", "-f", f"{prefix}{i}"], env=t.env, capture_output=True))
            subprocess.run([docker, "-H", t.host, "rm", "-f", name], env=t.env, capture_output=True)
        if imported and dd_handle is None:
            t, image = targets["dockerd"]
            subprocess.run([docker, "-H", t.host, "rmi", image], env=t.env, capture_output=True)
        rb.close_dockerd(dd_handle, "exec_ps_bench")
        for p in daemon.cleanup() + daemon.remove():
            print(f"exec_ps_bench: cleanup: {p}", file=sys.stderr)
        tmp.cleanup()
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
        return 0
    for k, v in res.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checkpoint and restore latency of a small container (issue 7).

Starts its own dockyardd on temp roots (the integration tests' `Daemon`,
runtime runc unless the host's crun has CRIU built in), imports the busybox
rootfs as `bb`, runs a counter loop, then N times (after one warm-up):

  checkpoint   POST /containers/{id}/checkpoints {"Exit": true}
               (the daemon freezes the container first, so CRIU does not
               wait ~100 ms on the cgroup-v1 freezer)
  restore      POST /containers/{id}/start?checkpoint=...
  leave-running  POST /containers/{id}/checkpoints {"Exit": false}

timed over the raw API (the client's own overhead is ~1 ms), and prints
median/min/max of each. Targets on these machines: checkpoint <= 150 ms,
restore <= 200 ms. Nothing asserts on these numbers.

    .venv/bin/python bench/checkpoint_bench.py [-n 10] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from run_bench import fx  # noqa: E402  (tests/integration/conftest.py: Daemon, unix_http)

from dockyard.runtime import checkpoint as rtc  # noqa: E402
from dockyard.runtime.criu import discover  # noqa: E402


def _runtime() -> str:
    crun = shutil.which("crun")
    return "crun" if crun and rtc._crun_has_criu(crun) else "runc"


def _timed(d, method: str, path: str, body=None) -> float:
    t0 = time.perf_counter()
    st, raw = d.api(method, path, body)
    ms = (time.perf_counter() - t0) * 1000
    if st >= 300:
        raise SystemExit(f"{method} {path}: {st} {raw[:300]!r}")
    return ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    criu = asyncio.run(discover(None))
    if not criu.usable:
        print(f"CRIU unusable here: {criu.reason}", file=sys.stderr)
        return 2
    d = fx.Daemon(runtime=_runtime())
    d.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tar = Path(tmp) / "bb.tar"
            subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-image.sh"), str(tar)], check=True,
                           capture_output=True)
            d.docker("import", str(tar), "bb")
        cid = d.docker("run", "-d", "bb", "sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done"
                       ).stdout.strip()
        rows: dict[str, list[float]] = {"checkpoint": [], "restore": [], "checkpoint --leave-running": []}
        for i in range(args.n + 1):
            name = f"b{i}"
            c = _timed(d, "POST", f"/containers/{cid}/checkpoints", {"CheckpointID": name, "Exit": True})
            r = _timed(d, "POST", f"/containers/{cid}/start?checkpoint={name}")
            lr = _timed(d, "POST", f"/containers/{cid}/checkpoints", {"CheckpointID": name + "lr", "Exit": False})
            for n in (name, name + "lr"):
                d.api("DELETE", f"/containers/{cid}/checkpoints/{n}")
            if i:   # the first round warms up
                rows["checkpoint"].append(c)
                rows["restore"].append(r)
                rows["checkpoint --leave-running"].append(lr)
        d.docker("rm", "-f", cid)
    finally:
        d.cleanup()
        d.remove()
    info = {"criu": criu.version, "runtime": d.runtime, "n": args.n}
    if args.json:
        print(json.dumps({**info, "samples_ms": rows}))
        return 0
    print(f"criu {criu.version}, runtime {d.runtime}, {args.n} runs each (ms)")
    print(f"{'':28}{'median':>8}{'min':>8}{'max':>8}")
    for k, v in rows.items():
        print(f"{k:28}{statistics.median(v):8.1f}{min(v):8.1f}{max(v):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

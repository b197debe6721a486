#!/usr/bin/env python3
"""CRI pod start: RunPodSandbox + CreateContainer + StartContainer, dockyardd
against a private containerd (issue 19's performance figure).

Each sample is one pod on a CNI bridge network (bridge + host-local +
portmap, a network of each engine's own) with one busybox container running
`sleep 3600`, through the CRI's gRPC API (the generated client of
dockyard.cri.proto): the wall time of the three calls, and of each; then
StopPodSandbox + RemovePodSandbox, timed apart. Median and p90 over N
(default 20) after one warm-up pod (which also makes containerd pull its
sandbox image); the engines alternate pod by pod, so a change in load hits
both alike.

- dockyardd: started here on temp roots as in tests/integration/critest_run.py
  (the integration tests' Daemon with a CNI conf dir of its own, CRI pulls
  of registry.k8s.io through a loopback registry), --runtime crun (its
  default) or runc;
- containerd: Debian's 1.6, a private one on its own roots, socket and CNI
  bridge (tests/refcontainerd.py, the set-up critest_run --containerd uses),
  runc, cgroupfs; --no-containerd for none.
Both pull the same busybox and pause stand-ins from a loopback registry
(critest_run's build, on the dockyardd).

    PYTHONPATH=src .venv/bin/python bench/cri_bench.py [-n 20] [--runtime crun|runc] [--json]

Nothing asserts on these numbers; see bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb  # noqa: E402

sys.path.insert(0, str(rb.REPO / "tests" / "integration"))
import critest_run  # noqa: E402
from registry_util import LocalRegistry  # noqa: E402

import refcontainerd  # noqa: E402  (tests/, on sys.path through critest_run)
from dockyard.cri.proto import pb  # noqa: E402

BUSYBOX = f"{critest_run.E2E}/busybox:1.29-2"
STEPS = ("RunPodSandbox", "CreateContainer", "StartContainer")


def p90(v: list[float]) -> float:
    return sorted(v)[max(0, -(-len(v) * 9 // 10) - 1)]


def stats(v: list[float]) -> dict[str, Any]:
    return {"median_ms": round(statistics.median(v), 1), "p90_ms": round(p90(v), 1), "min_ms": round(min(v), 1),
            "max_ms": round(max(v), 1), "n": len(v)} if v else {}


class Engine:
    """One CRI endpoint and its samples."""

    def __init__(self, name: str, cri: Any, log_dir: str):
        self.name, self.cri, self.log_dir = name, cri, log_dir
        self.samples: dict[str, list[float]] = {k: [] for k in (*STEPS, "total", "StopPodSandbox+RemovePodSandbox")}
        self.error: str | None = None

    def pod(self, i: int, record: bool) -> None:
        rt = self.cri.rt
        name = f"bench-{self.name}-{i}"
        log_dir = os.path.join(self.log_dir, name)
        os.makedirs(log_dir, exist_ok=True)
        pod_cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="bench", attempt=0),
            hostname=name, log_directory=log_dir, linux=pb.LinuxPodSandboxConfig())
        ctr_cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="sleep"), image=pb.ImageSpec(image=BUSYBOX),
                                     command=["sleep", "3600"], log_path="sleep.log", linux=pb.LinuxContainerConfig())
        times = {}
        t0 = time.perf_counter()
        pid = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_cfg), timeout=120).pod_sandbox_id
        t1 = time.perf_counter()
        try:
            cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=ctr_cfg,
                                                               sandbox_config=pod_cfg), timeout=120).container_id
            t2 = time.perf_counter()
            rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
            t3 = time.perf_counter()
            times = {"RunPodSandbox": t1 - t0, "CreateContainer": t2 - t1, "StartContainer": t3 - t2, "total": t3 - t0}
        finally:
            t4 = time.perf_counter()
            rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=120)
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=120)
            times["StopPodSandbox+RemovePodSandbox"] = time.perf_counter() - t4
        if record:
            for k, v in times.items():
                self.samples[k].append(v * 1000)

    def result(self) -> dict[str, Any]:
        return {"error": self.error, **{k: stats(v) for k, v in self.samples.items()}}


def measure(engines: list[Engine], runs: int) -> None:
    """One warm-up pod each, then runs pods each, alternating; an engine that fails stops."""
    for i in range(runs + 1):
        for e in engines:
            if e.error:
                continue
            try:
                e.pod(i, record=i > 0)
            except Exception as ex:     # a benchmark reports, it does not crash
                e.error = f"pod {i}: {type(ex).__name__}: {ex}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=20, help="timed pods per engine (default 20)")
    ap.add_argument("--runtime", default="crun", choices=("crun", "runc"), help="runtime of the dockyardd started here")
    ap.add_argument("--no-containerd", action="store_true", help="do not compare with containerd")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    why_not = "skipped (--no-containerd)" if args.no_containerd else refcontainerd.unavailable_reason()
    tmp, _cfg, tar = rb.bench_dir("dyc")
    reg = LocalRegistry()
    try:
        with critest_run.dockyardd(reg, os.path.join(tmp.name, "dockyardd.log"), runtime=args.runtime) as d, \
                contextlib.ExitStack() as stack:
            critest_run.build_standins(d, reg, tar, only=(BUSYBOX, critest_run.PAUSE))
            dy = refcontainerd.cri_client(d.cri_sock)
            stack.callback(dy.channel.close)
            engines = [Engine("dockyardd", dy, tmp.name)]
            note = why_not
            if not why_not:
                c = stack.enter_context(critest_run.containerd(reg, tmp.name))
                engines.append(Engine("containerd", c.cri(), tmp.name))
                note = f"private {refcontainerd.containerd_version()}, runc"
            for e in engines:
                e.cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)), timeout=300)
            measure(engines, args.runs)
            res = {"runs": args.runs, "cores": os.cpu_count(), "dockyard_runtime": args.runtime, "containerd": note,
                   "engines": {e.name: e.result() for e in engines}}
    finally:
        reg.stop()
        tmp.cleanup()
    a, b = (res["engines"].get(k, {}).get("total", {}).get("median_ms") for k in ("dockyardd", "containerd"))
    res["ratio"] = round(a / b, 3) if a and b else None
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print_table(res)
    return 1 if any(e["error"] for e in res["engines"].values()) else 0


def print_table(res: dict[str, Any]) -> None:
    print(f"CRI pod start: {res['runs']} pods per engine after 1 warm-up, alternating; dockyardd --runtime "
          f"{res['dockyard_runtime']}; containerd: {res['containerd']}; {res['cores']} cores\n")
    print(f"{'engine':<11}  {'step':<33}  {'median ms':>9}  {'p90 ms':>8}  {'min ms':>8}  {'max ms':>8}")
    for name, r in res["engines"].items():
        for step in (*STEPS, "total", "StopPodSandbox+RemovePodSandbox"):
            s = r.get(step)
            if s:
                print(f"{name:<11}  {step:<33}  {s['median_ms']:>9.1f}  {s['p90_ms']:>8.1f}  {s['min_ms']:>8.1f}"
                      f"  {s['max_ms']:>8.1f}")
        if r["error"]:
            print(f"{name:<11}  FAILED: {r['error']}")
    if res["ratio"] is not None:
        print(f"\nratio dockyardd/containerd (RunPodSandbox + CreateContainer + StartContainer, medians): "
              f"{res['ratio']:.2f}")


if __name__ == "__main__":
    sys.exit(main())

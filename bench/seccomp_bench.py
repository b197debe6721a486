#!/usr/bin/env python3
"""Start latency with the default seccomp profile: precompiled filter (crun
gets run.oci.seccomp_bpf_data) against crun compiling linux.seccomp itself,
and seccomp=unconfined as the floor.

"crun compiles" is forced per container with the annotation
run.oci.seccomp_fail_unknown_syscall=1 (dockyard then steps aside), given the
default profile less the names this libseccomp does not know (which both
skip otherwise), so crun builds the same program. Variants are interleaved; one warm-up round is dropped. Reads
StartTrace (GET /containers/{id}/json) for each create+start and prints the
median of TotalMs, of the `spec` step and of the `supervise` step (which
contains `crun create`).

    .venv/bin/python bench/seccomp_bench.py [-n 25]

Nothing asserts on these numbers; see bench/README.md.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench  # noqa: E402  (its fixtures loader and Target)

def _known_default() -> str:
    """The default profile without the syscall names libseccomp lacks, as JSON."""
    from dockyard.runtime import seccomp
    resolve = ctypes.CDLL("libseccomp.so.2").seccomp_syscall_resolve_name
    resolve.argtypes = [ctypes.c_char_p]
    profile = json.loads(json.dumps(seccomp.default_profile()))
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if resolve(n.encode()) != -1]
    profile["syscalls"] = [r for r in profile["syscalls"] if r["names"]]
    return json.dumps(profile)


VARIANTS = {
    "precompiled": {},
    "crun compiles": {"Annotations": {"run.oci.seccomp_fail_unknown_syscall": "1"},
                      "SecurityOpt": [f"seccomp={_known_default()}"]},
    "unconfined": {"SecurityOpt": ["seccomp=unconfined"]},
}


def one(t: run_bench.Target, host_config: dict) -> dict:
    cid = t.api("POST", "/containers/create", {"Image": "bb", "Cmd": ["true"], "HostConfig": host_config})["Id"]
    try:
        t.api("POST", f"/containers/{cid}/start")
        trace = t.api("GET", f"/containers/{cid}/json")["StartTrace"]
        t.api("POST", f"/containers/{cid}/wait")
    finally:
        run_bench.fx.unix_http(t.sock, "DELETE", f"/containers/{cid}?force=1", timeout=60)
    steps = {s["Step"]: float(s["Ms"]) for s in trace["Steps"]}
    return {"total": float(trace["TotalMs"]), "spec": steps.get("spec", 0.0), "supervise": steps.get("supervise", 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--runs", type=int, default=25)
    args = ap.parse_args()
    tmp, cfg, tar = run_bench.bench_dir("dysb")
    daemon = run_bench.fx.Daemon(runtime="crun", log_path=Path(tmp.name) / "dockyardd.log")
    daemon.start()
    try:
        t = run_bench.Target(daemon.sock, cfg)
        subprocess.run(["docker", "-H", t.host, "import", tar, "bb"], env=t.env, check=True, capture_output=True)
        samples: dict[str, list[dict]] = {k: [] for k in VARIANTS}
        for i in range(args.runs + 1):
            for name, hc in VARIANTS.items():
                r = one(t, hc)
                if i:
                    samples[name].append(r)
        print(f"median of {args.runs} create+start each (ms):")
        print(f"{'variant':16} {'TotalMs':>8} {'spec':>7} {'supervise':>10}")
        for name, rows in samples.items():
            med = {k: statistics.median(r[k] for r in rows) for k in ("total", "spec", "supervise")}
            print(f"{name:16} {med['total']:8.1f} {med['spec']:7.1f} {med['supervise']:10.1f}")
    finally:
        run_bench.teardown_daemon(daemon)


if __name__ == "__main__":
    main()

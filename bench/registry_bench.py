#!/usr/bin/env python3
"""Image transfer throughput: push, pull, save and load of a multi-layer
image (default 4 layers, 200 MB in all: half random bytes, half text, so
gzip has some work) against a Debian docker-registry on 127.0.0.1, for
dockyardd and dockerd (a private one started here by default, tests/refdockerd.py;
--dockerd-sock PATH for one you started, --no-dockerd for none), through the
same docker CLI.

Also times a pull whose layers are all present (the manifest round trip
only; the target is < 50 ms), through the raw API, median of 10.

    .venv/bin/python bench/registry_bench.py [--mb 200] [--layers 4] [--dockerd-sock PATH | --no-dockerd] [--json]

Nothing asserts on these numbers; see bench/README.md.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))

from run_bench import Target, add_dockerd_args, close_dockerd, docker_cli, fx, open_dockerd  # noqa: E402
from registry_util import LocalRegistry  # noqa: E402


def make_image(path: str, total_mb: int, layers: int, tag: str) -> int:
    """A docker-save tar with `layers` layers of one big file each; returns its payload bytes."""
    per = total_mb * 1_000_000 // layers
    diff_ids, blobs = [], []
    text = (b"the quick brown fox jumps over the lazy dog %d\n" * 1)
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            half = os.urandom(per // 2)
            lines = b"".join(text.replace(b"%d", str(n).encode()) for n in range(per // 2 // 45 + 1))[:per - per // 2]
            data = half + lines
            ti = tarfile.TarInfo(f"data{i}.bin")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        raw = buf.getvalue()
        blobs.append(raw)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                      "created": "2026-01-01T00:00:00Z",
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cfg_hex = hashlib.sha256(cfg).hexdigest()
    with tarfile.open(path, "w") as tf:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        add(f"{cfg_hex}.json", cfg)
        for d, raw in zip(diff_ids, blobs):
            add(f"{d[7:]}/layer.tar", raw)
        add("manifest.json", json.dumps([{"Config": f"{cfg_hex}.json", "RepoTags": [tag],
                                          "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids]}]).encode())
    return sum(len(b) for b in blobs)


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()[-500:]}")
    return dt


def bench_target(name: str, t: Target, docker: str, reg: LocalRegistry, image_tar: str, payload: int,
                 workdir: str) -> dict:
    ref = f"{reg.host}/bench-{name}:1"
    env = t.env
    d = [docker, "-H", t.host]
    out: dict = {}
    subprocess.run(d + ["rmi", "-f", ref, "bench-src:1"], env=env, capture_output=True)
    out["load_s"] = timed(d + ["load", "-i", image_tar], env)
    subprocess.run(d + ["tag", "bench-src:1", ref], env=env, check=True, capture_output=True)
    out["push_s"] = timed(d + ["push", ref], env)
    subprocess.run(d + ["rmi", ref, "bench-src:1"], env=env, check=True, capture_output=True)
    out["pull_s"] = timed(d + ["pull", ref], env)
    present = []
    for _ in range(10):
        t0 = time.perf_counter()
        fx.unix_http(t.sock, "POST", f"/images/create?fromImage={reg.host}/bench-{name}&tag=1")
        present.append(time.perf_counter() - t0)
    out["pull_present_ms"] = statistics.median(present) * 1000
    save_path = os.path.join(workdir, f"save-{name}.tar")
    out["save_s"] = timed(d + ["save", "-o", save_path, ref], env)
    os.unlink(save_path)
    subprocess.run(d + ["rmi", ref], env=env, capture_output=True)
    mb = payload / 1e6
    out["push_MBps"] = mb / out["push_s"]
    out["pull_MBps"] = mb / out["pull_s"]
    out["load_MBps"] = mb / out["load_s"]
    out["save_MBps"] = mb / out["save_s"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dockyard-sock")
    add_dockerd_args(ap)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    docker = docker_cli()
    tmp = tempfile.TemporaryDirectory(prefix="dyrb")
    cfg = os.path.join(tmp.name, "docker-config")
    os.mkdir(cfg)
    image_tar = os.path.join(tmp.name, "image.tar")
    payload = make_image(image_tar, args.mb, args.layers, "bench-src:1")
    reg = LocalRegistry()
    daemon = None
    results: dict = {"payload_MB": payload / 1e6, "layers": args.layers}
    try:
        if args.dockyard_sock:
            dy = Target(args.dockyard_sock, cfg)
        else:
            daemon = fx.Daemon(log_path=Path(tmp.name) / "dockyardd.log")
            daemon.start()
            dy = Target(daemon.sock, cfg)
        results["dockyardd"] = bench_target("dy", dy, docker, reg, image_tar, payload, tmp.name)
        dd, note, dd_handle = open_dockerd(args, cfg, tmp.name)
        try:
            results["dockerd"] = bench_target("dd", dd, docker, reg, image_tar, payload, tmp.name) if dd else note
        finally:
            close_dockerd(dd_handle, "registry_bench")
    finally:
        reg.stop()
        if daemon is not None:
            daemon.stop()
            daemon.cleanup()
            daemon.remove()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"image: {results['payload_MB']:.0f} MB in {args.layers} layers, registry on 127.0.0.1")
    for who in ("dockyardd", "dockerd"):
        r = results[who]
        if isinstance(r, str):
            print(f"{who}: {r}")
            continue
        print(f"{who}: push {r['push_MBps']:.0f} MB/s ({r['push_s']:.2f}s), pull {r['pull_MBps']:.0f} MB/s "
              f"({r['pull_s']:.2f}s), all-present pull {r['pull_present_ms']:.1f} ms, "
              f"save {r['save_s']:.2f}s, load {r['load_s']:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Streams: exec latency, logs throughput, attach round-trip.

1. `docker exec CTR true`, wall time through the real docker CLI, median of N
   (after one warm-up).
2. Logs throughput: a container writes S MB (200 by default) to stdout, then
   `docker logs CTR` reads it all back into a pipe; MB/s of the read (bytes
   the CLI delivered / wall time), and how long the container took to write
   it (the log path under load: conmon → file, rotation included, 20 MB x 5
   by default — the container's log is capped at that, so the read
   measures the newest 100 MB: use --log-opt to change).
3. Attach round-trip: docker-py `attach_socket` to a `cat` container; send
   one line, time until it comes back, median of N.

Against dockyardd (started here on temp roots, as run_bench.py does), and
against dockerd: a private one started here by default (tests/refdockerd.py,
when dockerd is installed), --dockerd-sock PATH for one you started,
--no-dockerd for none. Nothing asserts on these numbers.

    .venv/bin/python bench/streams_bench.py [-n 20] [--mb 200] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb  # noqa: E402


def med(v: list[float]) -> dict:
    return {"median_ms": round(statistics.median(v), 2), "min_ms": round(min(v), 2),
            "max_ms": round(max(v), 2), "n": len(v)} if v else {}


def exec_latency(docker: str, t, image: str, runs: int) -> dict:
    name = "sb" + secrets.token_hex(4)
    subprocess.run([docker, "-H", t.host, "run", "-d", "--name", name, image, "sleep", "3600"],
                   env=t.env, check=True, capture_output=True)
    try:
        out = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            subprocess.run([docker, "-H", t.host, "exec", name, "true"], env=t.env, check=True, capture_output=True)
            if i:
                out.append((time.perf_counter() - t0) * 1000)
        return med(out)
    finally:
        subprocess.run([docker, "-H", t.host, "rm", "-f", name], env=t.env, capture_output=True)


def logs_throughput(docker: str, t, image: str, mb: int, log_opts: list[str]) -> dict:
    name = "sb" + secrets.token_hex(4)
    # 1000-byte lines: an 8-digit counter and padding
    script = ("awk 'BEGIN{p=sprintf(\"%991s\",\"\"); for(i=0;i<" + str(mb * 1000) +
              ";i++) printf \"%08d%s\\n\", i, p}'")
    opts = [x for o in log_opts for x in ("--log-opt", o)]
    t0 = time.perf_counter()
    subprocess.run([docker, "-H", t.host, "run", "--name", name, *opts, image, "sh", "-c", script],
                   env=t.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    write_s = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        p = subprocess.Popen([docker, "-H", t.host, "logs", name], env=t.env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        n = 0
        while True:
            chunk = p.stdout.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        p.wait()
        read_s = time.perf_counter() - t1
        return {"written_mb": mb, "run_s": round(write_s, 3), "read_mb": round(n / 1e6, 1),
                "read_s": round(read_s, 3), "read_mb_per_s": round(n / 1e6 / read_s, 1)}
    finally:
        subprocess.run([docker, "-H", t.host, "rm", "-f", name], env=t.env, capture_output=True)


def attach_round_trip(t, image: str, runs: int) -> dict:
    import docker as dockerpy
    client = dockerpy.DockerClient(base_url=t.host, version="auto", timeout=60)
    c = client.containers.run(image, ["cat"], stdin_open=True, detach=True)
    try:
        s = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        sock = s._sock
        sock.settimeout(10)
        out = []
        for i in range(runs + 1):
            msg = f"ping{i}\n".encode()
            t0 = time.perf_counter()
            sock.sendall(msg)
            got = b""
            while not got.endswith(msg):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("attach stream ended")
                got += chunk
            if i:
                out.append((time.perf_counter() - t0) * 1000)
        sock.close()
        return med(out)
    finally:
        c.remove(force=True)
        client.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=20)
    ap.add_argument("--mb", type=int, default=200, help="MB the logs container writes (default 200)")
    ap.add_argument("--log-opt", action="append", default=[], help="for the logs container, e.g. max-size=300m")
    rb.add_dockerd_args(ap)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    docker, tmp, tar, daemon, targets, note, dd_handle = rb.side_by_side(args, "dysb")
    res: dict = {"cores": os.cpu_count()}
    imported = False
    try:
        for label, (t, image) in targets.items():
            if not t.has_image(image):
                subprocess.run([docker, "-H", t.host, "import", tar, image], env=t.env, check=True,
                               capture_output=True)
                imported = imported or label == "dockerd"
            res[label] = {
                "exec_true": exec_latency(docker, t, image, args.runs),
                "logs": logs_throughput(docker, t, image, args.mb, args.log_opt),
                "attach_round_trip": attach_round_trip(t, image, args.runs),
            }
        if "dockerd" in res:
            a, b = res["dockyardd"]["exec_true"]["median_ms"], res["dockerd"]["exec_true"]["median_ms"]
            res["exec_ratio"] = round(a / b, 3)
    finally:
        if imported and dd_handle is None:
            t, image = targets["dockerd"]
            subprocess.run([docker, "-H", t.host, "rmi", image], env=t.env, capture_output=True)
        rb.close_dockerd(dd_handle, "streams_bench")
        for p in daemon.cleanup() + daemon.remove():
            print(f"streams_bench: cleanup: {p}", file=sys.stderr)
        tmp.cleanup()
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
        return 0
    for label in targets:
        r = res[label]
        print(f"{label}:")
        print(f"  docker exec CTR true      median {r['exec_true']['median_ms']} ms "
              f"(min {r['exec_true']['min_ms']}, max {r['exec_true']['max_ms']}, n {r['exec_true']['n']})")
        lg = r["logs"]
        print(f"  logs: wrote {lg['written_mb']} MB in {lg['run_s']} s (docker run); "
              f"docker logs read {lg['read_mb']} MB in {lg['read_s']} s = {lg['read_mb_per_s']} MB/s")
        print(f"  attach round-trip         median {r['attach_round_trip']['median_ms']} ms")
    if "exec_ratio" in res:
        print(f"exec latency dockyardd/dockerd: {res['exec_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""`docker build` (the classic builder, DOCKER_BUILDKIT=0) of issue 13's
10-step Dockerfile (FROM, 5 RUN, COPY of a 20 MB context file, ENV,
WORKDIR, CMD): dockyardd against dockerd, same CLI, same context.

For each daemon: the wall time of `docker build --no-cache` and of the same
build fully cached (the 20 MB context still travels and is checked),
median of N, interleaved; then one build through the raw API with the time
of each step (from its `Step n/m` line to the next) as the stream shows it.

dockerd: --dockerd-sock PATH, else a private one (tests/refdockerd.py)
when that module and Debian's dockerd are there, else dockyardd alone.

    .venv/bin/python bench/build_bench.py [-n 5] [--mb 20] [--json]

Nothing asserts on these numbers; see bench/README.md.
"""
from __future__ import annotations

import argparse
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
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from run_bench import Target, docker_cli, fx  # noqa: E402

DOCKERFILE = """\
FROM {image}
RUN echo 1 > /1
RUN echo 2 > /2
RUN echo 3 > /3
RUN echo 4 > /4
RUN echo 5 > /5
COPY big.bin /big.bin
ENV A=b
WORKDIR /w
CMD ["sh"]
"""


def make_context(d: Path, image: str, mb: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "Dockerfile").write_text(DOCKERFILE.format(image=image))
    with open(d / "big.bin", "wb") as f:
        f.write(os.urandom(mb << 20))


def cli_build(t: Target, ctx: Path, tag: str, nocache: bool) -> float:
    env = dict(t.env, DOCKER_BUILDKIT="0")
    cmd = [docker_cli(), "-H", t.host, "build", "-q", "-t", tag] + (["--no-cache"] if nocache else []) + [str(ctx)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()[-500:]}")
    return ms


def api_steps(t: Target, ctx: Path, nocache: bool) -> list[tuple[str, float]]:
    """One build through POST /build, timing each step from the stream."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for p in sorted(ctx.iterdir()):
            tf.add(str(p), arcname=p.name)
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(t.sock)
    body = buf.getvalue()
    q = "?nocache=1" if nocache else ""
    s.sendall(f"POST /build{q} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    t0 = time.perf_counter()
    steps: list[tuple[str, float]] = []
    marks: list[tuple[str, float]] = []
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        now = time.perf_counter()
        data += chunk
        for part in chunk.split(b"\n"):
            if b'"stream": "Step ' in part or b'"stream":"Step ' in part:
                text = json.loads(part[part.index(b"{"):])["stream"]
                marks.append((text.split(" : ", 1)[1].strip()[:40], now))
        if b"Successfully built" in chunk or b'"error"' in chunk:
            break
    end = time.perf_counter()
    s.close()
    for i, (name, at) in enumerate(marks):
        nxt = marks[i + 1][1] if i + 1 < len(marks) else end
        steps.append((name, round((nxt - at) * 1000, 1)))
    steps.insert(0, ("(context sent, until step 1)", round(((marks[0][1] if marks else end) - t0) * 1000, 1)))
    return steps


def bench(t: Target, ctx: Path, n: int) -> dict:
    nocache, cached = [], []
    cli_build(t, ctx, "build-bench", True)          # warm-up (and the cache filled)
    for _ in range(n):
        nocache.append(cli_build(t, ctx, "build-bench", True))
        cached.append(cli_build(t, ctx, "build-bench", False))
    return {"nocache_ms": round(statistics.median(nocache), 1), "cached_ms": round(statistics.median(cached), 1),
            "nocache_samples": [round(x) for x in nocache], "cached_samples": [round(x) for x in cached],
            "steps_nocache": api_steps(t, ctx, True), "steps_cached": api_steps(t, ctx, False)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--dockerd-sock")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="build-bench-") as tmp:
        bb_tar = Path(tmp) / "busybox.tar"
        subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-image.sh"), str(bb_tar)], check=True,
                       capture_output=True)
        ctx = Path(tmp) / "ctx"
        make_context(ctx, "bb", args.mb)
        d = fx.Daemon(log_path=Path(tmp) / "dockyardd.log")
        d.start()
        ref = None
        try:
            t = Target(str(d.sock), str(d.base / "cli"))
            subprocess.run([docker_cli(), "-H", t.host, "import", str(bb_tar), "bb"], env=t.env, check=True,
                           capture_output=True)
            out["dockyardd"] = bench(t, ctx, args.n)
            dt = None
            if args.dockerd_sock:
                dt = Target(args.dockerd_sock, str(Path(tmp) / "dcli"))
            else:
                try:
                    import refdockerd
                    if refdockerd.unavailable_reason() is None:
                        ref = refdockerd.start_private_dockerd(image_tar=bb_tar)
                        dt = Target(str(ref.host).removeprefix("unix://"), str(Path(tmp) / "dcli"))
                except ImportError:
                    pass
            if dt is not None and dt.answers():
                if not dt.has_image("bb"):
                    subprocess.run([docker_cli(), "-H", dt.host, "import", str(bb_tar), "bb"], env=dt.env,
                                   check=True, capture_output=True)
                out["dockerd"] = bench(dt, ctx, args.n)
                out["ratio_nocache"] = round(out["dockyardd"]["nocache_ms"] / out["dockerd"]["nocache_ms"], 2)
                out["ratio_cached"] = round(out["dockyardd"]["cached_ms"] / out["dockerd"]["cached_ms"], 2)
        finally:
            if ref is not None:
                ref.stop()
            d.cleanup()
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name in ("dockyardd", "dockerd"):
        if name not in out:
            continue
        r = out[name]
        print(f"{name}: --no-cache {r['nocache_ms']} ms (median of {len(r['nocache_samples'])}), "
              f"cached {r['cached_ms']} ms")
        for label, key in (("no-cache", "steps_nocache"), ("cached", "steps_cached")):
            print(f"  per step, {label}: " + ", ".join(f"{s} {ms}" for s, ms in r[key]))
    if "ratio_nocache" in out:
        print(f"dockyardd/dockerd: --no-cache {out['ratio_nocache']}x, cached {out['ratio_cached']}x")


if __name__ == "__main__":
    main()

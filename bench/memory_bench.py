"""Memory of dockyardd and its supervisors: RSS of the daemon idle and with
N running containers, and of one conmon (the per-container cost; there is no
Python process per container).

    .venv/bin/python bench/memory_bench.py [-n 20]
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
_spec = importlib.util.spec_from_file_location("itconf", REPO / "tests/integration/conftest.py")
_conf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conf)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="running containers (default 20)")
    args = ap.parse_args()
    d = _conf.Daemon(runtime="crun")
    d.start()
    try:
        tar = d.base / "bb.tar"
        subprocess.run(["bash", str(REPO / "scripts/make-busybox-image.sh"), str(tar)], check=True,
                       capture_output=True)
        d.docker("import", str(tar), "bb")
        idle = rss_kib(d.proc.pid)
        ids = [d.docker("run", "-d", "bb", "sleep", "600").stdout.strip() for _ in range(args.n)]
        busy = rss_kib(d.proc.pid)
        pids = [int(p) for p in subprocess.run(["pgrep", "-f", f"conmon.*{d.base}"], capture_output=True,
                                               text=True).stdout.split()]
        conmons = sorted(rss_kib(p) for p in pids)
        print(f"dockyardd RSS idle                 {idle / 1024:7.1f} MiB")
        print(f"dockyardd RSS, {args.n} running        {busy / 1024:7.1f} MiB "
              f"(+{(busy - idle) / max(1, args.n):.0f} KiB per container)")
        if conmons:
            print(f"conmon RSS per container (median)  {conmons[len(conmons) // 2] / 1024:7.1f} MiB")
        d.docker("rm", "-f", *ids)
    finally:
        d.cleanup()
        d.remove()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Network set-up cost: per container inside dockyardd, and `run -p` to first reply.

1. The `network` step of the daemon's StartTrace (netns, veth, address,
   route, DNS names, published ports, /etc files), median over N
   create+start on: the default bridge, a user-defined network, and a user
   network with `-p 127.0.0.1::80`.
2. Teardown, the same NetworkManager calls the daemon makes on exit/rm
   (`disconnect`, ports included), timed in-process on a throwaway bridge.
3. `docker run -d -p 127.0.0.1:PORT:80 bb httpd -f -p 80` until the first
   HTTP reply on 127.0.0.1:PORT, against dockyardd, and against dockerd: a
   private one started here by default (tests/refdockerd.py, when dockerd is
   installed), --dockerd-sock PATH for one you started, --no-dockerd for none.

    .venv/bin/python bench/net_bench.py [-n 20] [--json]

Nothing asserts on these numbers; see bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb  # noqa: E402  (Target, fixtures, docker_cli)

HTTPD = ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"]


def med(v: list[float]) -> dict:
    return {"median_ms": round(statistics.median(v), 2), "min_ms": round(min(v), 2),
            "max_ms": round(max(v), 2), "n": len(v)} if v else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def network_step(t, runs: int, network: str | None, publish: bool) -> list[float]:
    out = []
    for _ in range(runs):
        hc: dict = {}
        body: dict = {"Image": "bb", "Cmd": ["sleep", "30"], "HostConfig": hc}
        if network:
            hc["NetworkMode"] = network
        if publish:
            body["ExposedPorts"] = {"80/tcp": {}}
            hc["PortBindings"] = {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
        cid = t.api("POST", "/containers/create", body)["Id"]
        try:
            t.api("POST", f"/containers/{cid}/start")
            trace = t.api("GET", f"/containers/{cid}/json")["StartTrace"]
            out += [s["Ms"] for s in trace["Steps"] if s["Step"] == "network"]
        finally:
            rb.fx.unix_http(t.sock, "DELETE", f"/containers/{cid}?force=1", timeout=60)
    return out


def teardown_in_process(runs: int) -> dict:
    """connect (user network + a published port) then disconnect, timed, on a scratch daemon state."""
    from dockyard.network import ports
    from dockyard.network.cleanup import purge
    from dockyard.network.manager import NetworkManager
    from dockyard.store.db import Database
    base = tempfile.mkdtemp(prefix="dynb")
    bridge = "dyb" + secrets.token_hex(3)
    nm = NetworkManager(Database(os.path.join(base, "db")), os.path.join(base, "exec"), bridge=bridge,
                        bip=rb.fx.free_bip())
    took = {"connect": [], "publish": [], "disconnect": []}
    try:
        nm.setup()
        sub = rb.fx.free_bip().replace(".1/24", ".0/24")
        nm.create_network("benchnet", ipam={"Config": [{"Subnet": sub}]})
        for i in range(runs + 1):
            cid = secrets.token_hex(32)
            t0 = time.perf_counter()
            ep = nm.connect(cid, "benchnet", name=f"c{i}")
            t1 = time.perf_counter()
            nm.publish(cid, ep.ip, [ports.Binding("tcp", 80, "127.0.0.1", 0, 0)])
            t2 = time.perf_counter()
            nm.disconnect(cid)
            t3 = time.perf_counter()
            if i:
                took["connect"].append((t1 - t0) * 1000)
                took["publish"].append((t2 - t1) * 1000)
                took["disconnect"].append((t3 - t2) * 1000)
        nm.remove_network("benchnet")
    finally:
        purge(bridge, os.path.join(base, "exec"))
        subprocess.run(["rm", "-rf", base])
    return {k: med(v) for k, v in took.items()}


def first_reply(docker: str, t, image: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        port, name = free_port(), "nb" + secrets.token_hex(4)
        t0 = time.perf_counter()
        subprocess.run([docker, "-H", t.host, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", image,
                        *HTTPD], env=t.env, check=True, capture_output=True)
        try:
            deadline = t0 + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                        r.read()
                    break
                except OSError:
                    if time.perf_counter() > deadline:
                        raise
                    time.sleep(0.002)
            out.append((time.perf_counter() - t0) * 1000)
        finally:
            subprocess.run([docker, "-H", t.host, "rm", "-f", name], env=t.env, capture_output=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=20)
    rb.add_dockerd_args(ap)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    docker = rb.docker_cli()
    tmp, cfg, tar = rb.bench_dir("dynb")
    daemon = rb.fx.Daemon(log_path=Path(tmp.name) / "dockyardd.log")
    res: dict = {}
    try:
        daemon.start()
        t = rb.Target(daemon.sock, cfg)
        subprocess.run([docker, "-H", t.host, "import", tar, "bb"], env=t.env, check=True, capture_output=True)
        sub = rb.fx.free_bip().replace(".1/24", ".0/24")
        t.api("POST", "/networks/create", {"Name": "benchnet", "IPAM": {"Config": [{"Subnet": sub}]}})
        res["network_step"] = {
            "default bridge": med(network_step(t, args.runs, None, False)),
            "user network": med(network_step(t, args.runs, "benchnet", False)),
            "user network + -p": med(network_step(t, args.runs, "benchnet", True)),
        }
        res["in_process"] = teardown_in_process(args.runs)
        res["run_to_first_reply"] = {"dockyardd": med(first_reply(docker, t, "bb", max(3, args.runs // 2)))}
        rb.fx.unix_http(t.sock, "DELETE", "/networks/benchnet")
        dd, note, dd_handle = rb.open_dockerd(args, cfg, tmp.name)
        try:
            if dd is not None:
                subprocess.run([docker, "-H", dd.host, "import", tar, rb.DOCKERD_IMAGE], env=dd.env, check=True,
                               capture_output=True)
                res["run_to_first_reply"]["dockerd"] = med(first_reply(docker, dd, rb.DOCKERD_IMAGE,
                                                                       max(3, args.runs // 2)))
                a, b = res["run_to_first_reply"]["dockyardd"], res["run_to_first_reply"]["dockerd"]
                res["run_to_first_reply"]["ratio"] = round(a["median_ms"] / b["median_ms"], 3)
            else:
                res["run_to_first_reply"]["dockerd"] = note
        finally:
            if dd is not None and dd_handle is None:
                subprocess.run([docker, "-H", dd.host, "rmi", rb.DOCKERD_IMAGE], env=dd.env, capture_output=True)
            rb.close_dockerd(dd_handle, "net_bench")
    finally:
        rb.teardown_daemon(daemon)
        tmp.cleanup()
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for section, rows in res.items():
            print(section)
            for k, v in rows.items():
                print(f"  {k:<22} {v if not isinstance(v, dict) else '  '.join(f'{a}={b}' for a, b in v.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

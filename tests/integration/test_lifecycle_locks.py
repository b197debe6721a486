"""Lifecycle verbs and the container lock, over the raw Engine API.

1. `kill` with SIGKILL (the default) answers only once the exit is recorded,
   as dockerd's does (it waits for the container to be not-running): an
   inspect right after sees it exited, and `rm` right after never gets 409,
   even on a loaded machine.
2. Every verb that changes a container's state holds its lock: a burst of
   concurrent start/stop/kill/restart/pause/unpause/rm at one container gives
   no 5xx, and leaves a state that matches the host (the process, the rootfs
   mount, the netns, the cgroups).
"""
from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import leaks

RUNS = 200
ROUNDS = 10
CALLS = 50
STAGGER = 0.001
VERBS = ("start", "stop", "kill", "restart", "pause", "unpause")


class KeepAlive(http.client.HTTPConnection):
    """One HTTP/1.1 connection over the daemon's unix socket, reused for
    every request (a fresh connection per call would dominate the loop)."""

    def __init__(self, sock: str, timeout: float = 60.0):
        super().__init__("localhost", timeout=timeout)
        self.sock_path = sock

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.sock_path)
        self.sock = s

    def call(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        headers = {}
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.request(method, path, body=body, headers=headers)
        r = self.getresponse()
        return r.status, r.read()


def pid_alive(pid: int) -> bool:
    """A live (not zombie) process."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return leaks.proc_state(f.read()) not in ("Z", "X")
    except OSError:
        return False


def mountpoints() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {m.mountpoint for m in leaks.parse_mountinfo(f.read())}


def burn_cpu(n: int = 2) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
            for _ in range(n)]


def stop_burners(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait(10)


# --------------------------------------------------------------- 1. kill waits

def test_kill_returns_after_the_exit_is_recorded(daemon, bb_image):
    """200 x run -d / kill / inspect / rm under 2 CPU burners: every inspect
    right after the kill says exited (137, no Pid, the process gone), every
    rm right after says 204."""
    api = KeepAlive(daemon.sock)
    failures: list[str] = []
    counts: Counter = Counter()
    cid = None
    burners = burn_cpu(2)
    t0 = time.monotonic()
    try:
        for i in range(RUNS):
            st, body = api.call("POST", "/containers/create", {
                "Image": bb_image, "Cmd": ["sleep", "600"], "HostConfig": {"NetworkMode": "none"}})
            assert st == 201, f"run {i}: create -> {st} {body[:300]!r}"
            cid = json.loads(body)["Id"]
            st, body = api.call("POST", f"/containers/{cid}/start")
            assert st == 204, f"run {i}: start -> {st} {body[:300]!r}"
            st, body = api.call("GET", f"/containers/{cid}/json")
            pid = json.loads(body)["State"]["Pid"]
            assert st == 200 and pid > 0, f"run {i}: inspect after start -> {st} {body[:300]!r}"

            st, body = api.call("POST", f"/containers/{cid}/kill")
            if st != 204:
                failures.append(f"run {i}: kill -> {st} {body[:200]!r}")
                counts["kill not 204"] += 1
            st, body = api.call("GET", f"/containers/{cid}/json")
            state = json.loads(body)["State"] if st == 200 else {}
            bad = []
            if state.get("Running") is not False:
                bad.append(f"Running={state.get('Running')!r}")
            if state.get("Status") != "exited":
                bad.append(f"Status={state.get('Status')!r}")
            if state.get("ExitCode") != 137:
                bad.append(f"ExitCode={state.get('ExitCode')!r}")
            if state.get("Pid") != 0:
                bad.append(f"Pid={state.get('Pid')!r}")
            if pid_alive(pid):
                bad.append(f"process {pid} still alive")
            if bad:
                failures.append(f"run {i}: inspect right after kill: {', '.join(bad)}")
                counts["inspect after kill: " + ("still running" if state.get("Running") else "other")] += 1

            st, body = api.call("DELETE", f"/containers/{cid}")
            if st != 204:
                failures.append(f"run {i}: rm right after kill -> {st} {body[:200]!r}")
                counts[f"rm -> {st}"] += 1
                st, body = api.call("DELETE", f"/containers/{cid}?force=1")
                assert st in (204, 404), f"run {i}: rm -f -> {st} {body[:300]!r}"
            cid = None
    finally:
        elapsed = time.monotonic() - t0
        stop_burners(burners)
        if cid is not None:
            daemon.api("DELETE", f"/containers/{cid}?force=1")
        api.close()
    print(f"{RUNS} kill runs in {elapsed:.1f} s")
    assert not failures, (f"{len(failures)} problems in {RUNS} runs ({elapsed:.1f} s): {dict(counts)}\n"
                          + "\n".join(failures[:20]))


# ------------------------------------------------- 2. every verb takes the lock

def _verb_request(verb: str) -> tuple[str, str]:
    return {
        "start": ("POST", "start"),
        "stop": ("POST", "stop?t=1"),
        "kill": ("POST", "kill"),
        "restart": ("POST", "restart?t=1"),
        "pause": ("POST", "pause"),
        "unpause": ("POST", "unpause"),
        "rm": ("DELETE", "?force=true"),
    }[verb]


def _fire(daemon, cid: str, ops: list[str], stagger: float = STAGGER) -> list[tuple[str, int, bytes]]:
    """All ops at once, one thread each: released together by a barrier,
    the i-th sends its request i * stagger seconds later, so they go out in
    list order yet overlap (a stop alone takes up to its 1 s timeout)."""
    results: list = [None] * len(ops)
    gate = threading.Barrier(len(ops))

    def one(i: int, verb: str) -> None:
        method, tail = _verb_request(verb)
        path = f"/containers/{cid}{tail}" if verb == "rm" else f"/containers/{cid}/{tail}"
        try:
            gate.wait(30)
            time.sleep(i * stagger)
            st, body = daemon.api(method, path, timeout=120)
        except Exception as e:   # noqa: BLE001 - a dropped connection is a finding, not a crash
            st, body = -1, repr(e).encode()
        results[i] = (verb, st, body)

    threads = [threading.Thread(target=one, args=(i, v)) for i, v in enumerate(ops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return [r if r is not None else (ops[i], -2, b"thread did not finish") for i, r in enumerate(results)]


def _cgroups_of(cid: str) -> list[str]:
    return sorted(p for p in leaks.cgroup_dirs() if os.path.basename(p) == cid)


def _host_problems(daemon, cid: str, pids_before: set[int], merged: str,
                   netns: str) -> tuple[str, int, list[str]]:
    """What of the container the host shows that its inspect does not
    match: (the inspect status, its Pid, problems). pids_before: Pids it
    had earlier, which must be dead unless inspect names them."""
    st, body = daemon.api("GET", f"/containers/{cid}/json")
    mounts = mountpoints()
    problems = []
    if st == 404:
        status = "removed"
        live = sorted(p for p in pids_before if pid_alive(p))
        if live:
            problems.append(f"removed, but processes {live} live")
        left = sorted(m for m in mounts if cid in m)
        if left:
            problems.append(f"removed, but mounts are left: {left}")
        if os.path.lexists(netns):
            problems.append(f"removed, but its netns file {netns} is left")
        for p in (os.path.join(daemon.data_root, "containers", cid), merged,
                  os.path.join(daemon.data_root, "overlay", cid)):
            if os.path.lexists(p):
                problems.append(f"removed, but {p} is left")
        procs = leaks.find_processes((cid,))
        if procs:
            problems.append(f"removed, but processes naming it live: {sorted(procs)}")
        return status, 0, problems
    assert st == 200, f"inspect -> {st} {body[:300]!r}"
    state = json.loads(body)["State"]
    status, pid = state["Status"], state["Pid"]
    if status in ("running", "paused"):
        if not state["Running"]:
            problems.append(f"status {status} but Running={state['Running']}")
        if not pid_alive(pid):
            problems.append(f"{status}, but its Pid {pid} is not alive")
        stale = sorted(p for p in pids_before - {pid} if pid_alive(p))
        if stale:
            problems.append(f"{status} as Pid {pid}, but earlier Pids {stale} still live")
        if merged not in mounts:
            problems.append(f"{status}, but its rootfs {merged} is not mounted")
        if netns not in mounts:
            problems.append(f"{status}, but its netns {netns} is not mounted")
    elif status in ("exited", "created"):
        if state["Running"] or pid:
            problems.append(f"status {status} but Running={state['Running']} Pid={pid}")
        live = sorted(p for p in pids_before | {pid} if pid_alive(p))
        if live:
            problems.append(f"{status}, but processes {live} live")
        if merged in mounts:
            problems.append(f"{status}, but its rootfs {merged} is still mounted")
        if netns in mounts or os.path.lexists(netns):
            problems.append(f"{status}, but its netns {netns} is left")
        procs = leaks.find_processes((cid,))
        if procs:
            problems.append(f"{status}, but processes naming it live: {sorted(procs)}")
    else:
        problems.append(f"left in status {status!r} (Running={state['Running']} Pid={pid})")
    return status, pid, problems


def _wait_cgroups_gone(cid: str, timeout: float = 6.0) -> list[str]:
    """A stopped container's cgroups go, at the latest once the host has
    reaped its zombies (the daemon retries for 5 s)."""
    deadline = time.monotonic() + timeout
    while (left := _cgroups_of(cid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_concurrent_verbs_hold_the_lock(daemon, bb_image):
    """10 rounds of 50 concurrent mixed verbs at one container on the default
    bridge: never a 5xx, the daemon lives, and the final state is the host's."""
    rng = random.Random(12)
    report: list[str] = []
    failed = False
    cids: list[str] = []
    t0 = time.monotonic()
    try:
        for rnd in range(ROUNDS):
            st, body = daemon.api("POST", "/containers/create", {"Image": bb_image, "Cmd": ["sleep", "600"]})
            assert st == 201, f"round {rnd}: create -> {st} {body[:300]!r}"
            cid = json.loads(body)["Id"]
            cids.append(cid)
            st, body = daemon.api("POST", f"/containers/{cid}/start")
            assert st == 204, f"round {rnd}: start -> {st} {body[:300]!r}"
            info = json.loads(daemon.api("GET", f"/containers/{cid}/json")[1])
            pid = info["State"]["Pid"]
            merged = info["GraphDriver"]["Data"]["MergedDir"]
            netns = os.path.join(daemon.exec_root, "netns", cid)
            # the premises: the host shows what the checks below look at
            assert info["NetworkSettings"]["SandboxKey"] == netns
            assert pid_alive(pid) and {merged, netns} <= mountpoints()

            ops = [rng.choice(VERBS) for _ in range(CALLS - 1)]
            # rm -f in the second half of odd rounds; the calls after it get 404
            if rnd % 2:
                ops.insert(rng.randrange(CALLS // 2, CALLS), "rm")
            else:
                ops.append(rng.choice(VERBS))   # even rounds: no rm, the container stays
            results = _fire(daemon, cid, ops)

            statuses = Counter(f"{v} {s}" for v, s, _ in results)
            bad = [(v, s, b[:200]) for v, s, b in results if not (200 <= s < 300 or s in (304, 404, 409))]
            alive = daemon.running and daemon.ping()
            status, last_pid, problems = _host_problems(daemon, cid, {pid}, merged, netns)
            if status in ("exited", "created", "removed"):
                left = _wait_cgroups_gone(cid)
                if left:
                    problems.append(f"{status}, but its cgroups are left: {left}")
            line = f"round {rnd}: final {status}; {dict(sorted(statuses.items()))}"
            if bad or not alive or problems:
                failed = True
                line += "".join(f"\n  non-2xx/304/404/409: {b}" for b in bad[:10])
                line += "" if alive else "\n  THE DAEMON IS NOT ANSWERING"
                line += "".join(f"\n  host mismatch: {p}" for p in problems)
            if not alive:
                report.append(line)
                break
            if status != "removed":
                # alone now, rm -f removes it, and nothing of it stays
                st, body = daemon.api("DELETE", f"/containers/{cid}?force=true", timeout=60)
                status, _, problems = _host_problems(daemon, cid, {pid, last_pid}, merged, netns)
                left = _wait_cgroups_gone(cid)
                problems += [f"after rm -f -> {st} {body[:200]!r}"] if st != 204 else []
                problems += [f"{status}, but its cgroups are left: {left}"] if left else []
                if problems:
                    failed = True
                    line += "".join(f"\n  after the burst, rm -f: {p}" for p in problems)
            report.append(line)
    finally:
        for cid in cids:
            if daemon.running:
                daemon.api("DELETE", f"/containers/{cid}?force=true", timeout=60)
    print(f"{ROUNDS} rounds in {time.monotonic() - t0:.1f} s\n" + "\n".join(report))
    assert not failed, "\n".join(report)

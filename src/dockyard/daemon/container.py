"""The container object and its state machine.

Every state change goes through `State.transition`, which allows only the
legal moves (as containerd's shim does with one type per state); the
daemon persists the container after each change.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import Conflict

CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD = (
    "created", "running", "paused", "restarting", "removing", "exited", "dead")

# from -> allowed destinations
_LEGAL = {
    CREATED: {RUNNING, EXITED, REMOVING, DEAD, CREATED},
    RUNNING: {EXITED, PAUSED, RUNNING},
    PAUSED: {RUNNING, EXITED},
    RESTARTING: {RUNNING, EXITED, REMOVING, RESTARTING},
    EXITED: {RUNNING, RESTARTING, REMOVING, EXITED, DEAD},
    REMOVING: {DEAD, EXITED, CREATED},
    DEAD: {REMOVING, DEAD},
}

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


@dataclass
class State:
    status: str = CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    manually_stopped: bool = False   # for unless-stopped and "always" after a user stop
    health: dict | None = None       # Docker's State.Health, when a healthcheck is set (daemon/health.py)

    def transition(self, to: str) -> None:
        if to not in _LEGAL[self.status]:
            raise Conflict(f"cannot move container from {self.status} to {to}")
        self.status = to

    @property
    def running(self) -> bool:
        return self.status in (RUNNING, PAUSED)

    def to_api(self) -> dict:
        out = self._to_api()
        if self.health:
            out["Health"] = self.health
        return out

    def _to_api(self) -> dict:
        return {"Status": self.status, "Running": self.status in (RUNNING, PAUSED),
                "Paused": self.status == PAUSED, "Restarting": self.status == RESTARTING,
                "OOMKilled": self.oom_killed, "Dead": self.status == DEAD, "Pid": self.pid,
                "ExitCode": self.exit_code, "Error": self.error,
                "StartedAt": self.started_at, "FinishedAt": self.finished_at}


@dataclass
class Container:
    id: str
    name: str
    created: str
    image: str                       # image id "sha256:..."
    image_ref: str                   # what the user asked for ("bb")
    config: dict                     # Docker's Config
    host_config: dict                # Docker's HostConfig
    networking_config: dict = field(default_factory=dict)
    state: State = field(default_factory=State)
    restart_count: int = 0
    runtime: str = ""                # crun | runc, fixed at create
    network: dict = field(default_factory=dict)   # endpoint as recorded at start
    start_trace: dict = field(default_factory=dict)
    conmon_pid: int = 0
    # the store's namespace: "" is Docker's; the CRI's containers live in "k8s.io" (lookup.py)
    namespace: str = ""
    cri: dict = field(default_factory=dict)       # a CRI container's pod, metadata, log path (daemon/podcontainers.py)
    # --- not persisted: live daemon-side objects
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)
    exit_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    removed_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    attach_waiters: list = field(default_factory=list, repr=False, compare=False)

    PERSISTED = ("id", "name", "created", "image", "image_ref", "config", "host_config",
                 "networking_config", "restart_count", "runtime", "network", "start_trace", "conmon_pid",
                 "namespace", "cri")

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def restart_policy(self) -> dict:
        return self.host_config.get("RestartPolicy") or {"Name": "no", "MaximumRetryCount": 0}

    @property
    def network_mode(self) -> str:
        return self.host_config.get("NetworkMode") or "bridge"

    def to_record(self) -> dict[str, Any]:
        rec = {k: getattr(self, k) for k in self.PERSISTED}
        rec["state"] = self.state.__dict__.copy()
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Container":
        st = State(**rec.pop("state"))
        c = cls(**{k: rec[k] for k in cls.PERSISTED if k in rec})
        c.state = st
        return c

    def notify_exit(self) -> None:
        """Wake every `wait` for the exit that just happened, re-arm for the next."""
        ev, self.exit_event = self.exit_event, asyncio.Event()
        ev.set()

"""The event bus: what `GET /events` serves.

`emit` stamps an event in Docker's JSON shape, keeps it in a bounded
history (256, as Docker's) for `since` in the past, and hands it to every
live subscriber's queue. A subscriber whose queue fills (a client that stopped
reading) is dropped rather than letting memory grow: emit never blocks.

With a `path`, the history is also appended there (one JSON line per event,
no fsync: losing the last events in a host crash is acceptable) and read
back at start, so `--since` reaches across a daemon restart. The file is
compacted to the last `history` events once it holds twice that many.

An event emitted with a `namespace` (the CRI's "k8s.io" objects) is not
Docker's: it skips the history, the file and Docker's subscribers, and goes
only to that namespace's listeners (`listen`: a callback run on the loop as
the event is published, e.g. the CRI's GetContainerEvents).
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import time
from typing import Callable

log = logging.getLogger("dockyard.events")

HISTORY = 256
QUEUE_MAX = 1024

_SCOPE = "local"


class Subscription:
    def __init__(self, events: "Events", namespace: str = "", callback: Callable[[dict], None] | None = None):
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_MAX if callback is None else 1)
        self.dropped = False
        self.namespace = namespace
        self.callback = callback
        self._events = events

    def close(self) -> None:
        self._events._subs.discard(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Events:
    def __init__(self, history: int = HISTORY, path: str | None = None):
        self._history: collections.deque[dict] = collections.deque(maxlen=history)
        self._subs: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._path = path
        self._fd = -1
        self._lines = 0
        if path:
            self._load()

    # ------------------------------------------------------------ persistence
    def _load(self) -> None:
        try:
            with open(self._path, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:              # at most 2 x history: compacted beyond that
            try:
                ev = json.loads(line)
            except ValueError:
                continue            # a line cut short by a crash
            if isinstance(ev, dict) and "timeNano" in ev:
                self._history.append(ev)
        self._compact()

    def _compact(self) -> None:
        """Rewrite the file with just the in-memory history (atomically).
        A full disk leaves the old file as it is, appended to while it can
        (a daemon on a full disk still starts; the next compaction retries)."""
        tmp = self._path + ".tmp"
        try:
            with open(tmp, "w") as f:
                os.fchmod(f.fileno(), 0o600)
                f.writelines(json.dumps(ev) + "\n" for ev in self._history)
            os.replace(tmp, self._path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if self._fd < 0:
                self._open()
            self._lines = len(self._history)    # not before another history's worth
            return
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._open()
        self._lines = len(self._history)

    def _open(self) -> None:
        try:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            self._fd = -1           # no log file: events are kept in memory only

    def _persist(self, ev: dict) -> None:
        try:
            os.write(self._fd, json.dumps(ev).encode() + b"\n")
            self._lines += 1
            if self._lines >= 2 * self._history.maxlen:
                self._compact()
        except OSError:
            pass                    # a full disk must not stop containers from starting

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop subscribers live on; emits from other threads are handed to it."""
        self._loop = loop

    def emit(self, type: str, action: str, actor_id: str, attributes: dict | None = None,
             scope: str = _SCOPE, namespace: str = "") -> dict:
        """Record and publish one event; callable from the loop or a worker thread.
        With a namespace: only that namespace's listeners hear it (not recorded)."""
        ns = time.time_ns()
        attrs = {k: str(v) for k, v in (attributes or {}).items()}
        ev = {"Type": type, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs},
              "scope": scope, "time": ns // 1_000_000_000, "timeNano": ns}
        # Docker's pre-1.22 top-level fields, still sent for container/image events
        if type == "container":
            ev.update({"status": action, "id": actor_id, "from": attrs.get("image", "")})
        elif type == "image":
            ev.update({"status": action, "id": actor_id})
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None and self._loop is not None:
            # emitted from a worker thread (asyncio.to_thread): publish on the loop
            self._loop.call_soon_threadsafe(self._publish, ev, namespace)
        else:
            self._loop = loop or self._loop
            self._publish(ev, namespace)
        return ev

    def _publish(self, ev: dict, namespace: str = "") -> None:
        if namespace:
            for sub in list(self._subs):
                if sub.namespace == namespace and sub.callback is not None:
                    try:
                        sub.callback(ev)
                    except Exception:       # a listener's bug must not fail the engine's verb
                        log.exception("event listener for namespace %s failed", namespace)
            return
        self._history.append(ev)
        if self._fd >= 0:
            self._persist(ev)
        for sub in list(self._subs):
            if sub.namespace:
                continue
            try:
                sub.queue.put_nowait(ev)
            except asyncio.QueueFull:
                sub.dropped = True
                self._subs.discard(sub)

    def history(self) -> list[dict]:
        return list(self._history)

    def subscribe(self) -> Subscription:
        self._loop = asyncio.get_running_loop()
        sub = Subscription(self)
        self._subs.add(sub)
        return sub

    def listen(self, namespace: str, callback: Callable[[dict], None]) -> Subscription:
        """`callback(event)` for each event of `namespace`, on the loop, as it is
        published (it must not block); until the subscription's close()."""
        if not namespace:
            raise ValueError("listen() is for a namespace's events; subscribe() for Docker's")
        self._loop = asyncio.get_running_loop()
        sub = Subscription(self, namespace, callback)
        self._subs.add(sub)
        return sub

    def replay_and_subscribe(self) -> tuple[list[dict], Subscription]:
        """The history and a subscription taken at the same instant, so no
        event is missed or seen twice between them."""
        return self.history(), self.subscribe()

    @property
    def subscribers(self) -> int:
        """Docker's listeners (`docker info`'s NEventsListener); a namespace's are not."""
        return sum(1 for s in self._subs if not s.namespace)

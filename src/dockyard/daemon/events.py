"""The event bus: what `GET /events` serves.

`emit` stamps an event in Docker's JSON shape, keeps it in a bounded
history (256, as Docker's) for `since` in the past, and hands it to every
live subscriber's queue. A subscriber whose queue fills (a client that stopped
reading) is dropped rather than letting memory grow: emit never blocks.
"""
from __future__ import annotations

import asyncio
import collections
import time

HISTORY = 256
QUEUE_MAX = 1024

_SCOPE = "local"


class Subscription:
    def __init__(self, events: "Events"):
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_MAX)
        self.dropped = False
        self._events = events

    def close(self) -> None:
        self._events._subs.discard(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Events:
    def __init__(self, history: int = HISTORY):
        self._history: collections.deque[dict] = collections.deque(maxlen=history)
        self._subs: set[Subscription] = set()

    def emit(self, type: str, action: str, actor_id: str, attributes: dict | None = None,
             scope: str = _SCOPE) -> dict:
        """Record and publish one event. Safe to call from the event loop
        thread only (queues are asyncio's)."""
        ns = time.time_ns()
        attrs = {k: str(v) for k, v in (attributes or {}).items()}
        ev = {"Type": type, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs},
              "scope": scope, "time": ns // 1_000_000_000, "timeNano": ns}
        # Docker's pre-1.22 top-level fields, still sent for container/image events
        if type == "container":
            ev.update({"status": action, "id": actor_id, "from": attrs.get("image", "")})
        elif type == "image":
            ev.update({"status": action, "id": actor_id})
        self._history.append(ev)
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(ev)
            except asyncio.QueueFull:
                sub.dropped = True
                self._subs.discard(sub)
        return ev

    def history(self) -> list[dict]:
        return list(self._history)

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        self._subs.add(sub)
        return sub

    def replay_and_subscribe(self) -> tuple[list[dict], Subscription]:
        """The history and a subscription taken at the same instant, so no
        event is missed or seen twice between them."""
        return self.history(), self.subscribe()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

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
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop subscribers live on; emits from other threads are handed to it."""
        self._loop = loop

    def emit(self, type: str, action: str, actor_id: str, attributes: dict | None = None,
             scope: str = _SCOPE) -> dict:
        """Record and publish one event; callable from the loop or a worker thread."""
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
            self._loop.call_soon_threadsafe(self._publish, ev)
        else:
            self._loop = loop or self._loop
            self._publish(ev)
        return ev

    def _publish(self, ev: dict) -> None:
        self._history.append(ev)
        for sub in list(self._subs):
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

    def replay_and_subscribe(self) -> tuple[list[dict], Subscription]:
        """The history and a subscription taken at the same instant, so no
        event is missed or seen twice between them."""
        return self.history(), self.subscribe()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

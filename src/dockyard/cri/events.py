"""GetContainerEvents: the CRI's container and sandbox events, as a stream.

Fed by the engine's event bus (daemon/events.py), where the CRI's objects
emit in their own namespace ("k8s.io": never Docker's /events): containers
through the daemon's `event` (create, start, die, destroy), pods through
daemon/pods.py (create, start, stop, destroy). As containerd, a sandbox's
events carry the sandbox's id as container_id, and every event carries the
pod's status and the statuses of the pod's containers as they are when the
event is published.

One bus listener, registered while someone streams; each stream has its own
bounded queue. A stream that falls QUEUE_MAX events behind (a client that
stopped reading) is dropped with a log line and ends with UNAVAILABLE after
what was queued, so it can subscribe again and relist: the engine never
blocks on a reader and memory never grows. A client that goes away ends its
stream (grpc cancels the handler) and its queue goes with it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from ..daemon import podcontainers
from ..daemon.pods import NoSuchPod
from .containers import container_status
from .proto import pb

log = logging.getLogger("dockyard.cri")

QUEUE_MAX = 1000        # containerd 1.7's event channel holds as many

# (bus event type, action) -> the CRI's event type
KINDS = {("container", "create"): pb.CONTAINER_CREATED_EVENT,
         ("container", "start"): pb.CONTAINER_STARTED_EVENT,
         ("container", "die"): pb.CONTAINER_STOPPED_EVENT,
         ("container", "destroy"): pb.CONTAINER_DELETED_EVENT,
         ("pod", "create"): pb.CONTAINER_CREATED_EVENT,
         ("pod", "start"): pb.CONTAINER_STARTED_EVENT,
         ("pod", "stop"): pb.CONTAINER_STOPPED_EVENT,
         ("pod", "destroy"): pb.CONTAINER_DELETED_EVENT}


class EventStream:
    """One GetContainerEvents call's queue."""

    def __init__(self, hub: "ContainerEvents"):
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_MAX)
        self.dropped = False
        self._hub = hub

    async def next(self) -> pb.ContainerEventResponse | None:
        """The next event; None once this stream was dropped and what it had queued is sent."""
        if self.dropped and self.queue.empty():
            return None
        return await self.queue.get()       # a dropped stream's queue is full: this does not wait

    def close(self) -> None:
        self._hub.unsubscribe(self)


class ContainerEvents:
    """The streams of one CRI server over the daemon's bus; pod_status(pod)
    renders a pod's PodSandboxStatus (runtime.py's)."""

    def __init__(self, daemon, pod_status: Callable[..., pb.PodSandboxStatus]):
        self.d = daemon
        self.pod_status = pod_status
        self._streams: set[EventStream] = set()
        self._listener = None

    @property
    def streams(self) -> int:
        return len(self._streams)

    def subscribe(self) -> EventStream:
        s = EventStream(self)
        self._streams.add(s)
        if self._listener is None:
            self._listener = self.d.events.listen(podcontainers.NAMESPACE, self._on_event)
        return s

    def unsubscribe(self, s: EventStream) -> None:
        self._streams.discard(s)
        if not self._streams and self._listener is not None:
            self._listener.close()
            self._listener = None

    def _on_event(self, ev: dict) -> None:
        kind = KINDS.get((ev.get("Type"), ev.get("Action")))
        if kind is None or not self._streams:
            return
        msg = self.message(ev["Actor"]["ID"], ev["Actor"]["Attributes"].get("sandbox", ""), kind)
        for s in list(self._streams):
            try:
                s.queue.put_nowait(msg)
            except asyncio.QueueFull:
                log.warning("CRI GetContainerEvents: a client fell %d events behind; dropping its stream",
                            QUEUE_MAX)
                s.dropped = True
                self.unsubscribe(s)

    def message(self, object_id: str, pod_id: str, kind: int) -> pb.ContainerEventResponse:
        """The event as containerd's generateAndSendContainerEvent makes it:
        the pod's status (absent once the pod is gone) and its containers'."""
        msg = pb.ContainerEventResponse(container_id=object_id, container_event_type=kind,
                                        created_at=time.time_ns())
        if not pod_id:
            return msg
        try:
            pod = self.d.pods.get(pod_id)
        except NoSuchPod:
            return msg
        msg.pod_sandbox_status.CopyFrom(self.pod_status(pod))
        msg.containers_statuses.extend(container_status(c) for c in self.d.pod_containers.of_pod(pod.id))
        return msg

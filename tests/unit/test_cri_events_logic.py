"""The event bus's namespaces (daemon/events.py) and the CRI's
GetContainerEvents hub over it (cri/events.py): a namespace's events reach
only its listeners (not Docker's history, file or subscribers), and a stream
that falls behind is dropped with a log line after what it had queued."""
from __future__ import annotations

import asyncio
import logging
import types

from dockyard.cri import events as cri_events
from dockyard.cri.proto import pb
from dockyard.daemon.events import Events
from dockyard.daemon.pods import NoSuchPod


def test_namespaced_events_reach_only_their_listeners(tmp_path):
    async def go():
        path = tmp_path / "events.jsonl"
        bus = Events(path=str(path))
        docker = bus.subscribe()
        heard, other = [], []
        k8s = bus.listen("k8s.io", heard.append)
        bus.listen("elsewhere", other.append)
        bus.emit("container", "start", "c1", {"sandbox": "p1"}, namespace="k8s.io")
        await asyncio.to_thread(bus.emit, "pod", "stop", "p1", {}, namespace="k8s.io")    # from a worker thread
        await asyncio.sleep(0.05)
        bus.emit("container", "start", "d1")               # Docker's own: not the listeners'
        assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in heard] == [("container", "start", "c1"),
                                                                                ("pod", "stop", "p1")]
        assert other == []
        assert [e["Actor"]["ID"] for e in bus.history()] == ["d1"]
        assert docker.queue.get_nowait()["Actor"]["ID"] == "d1" and docker.queue.empty()
        assert bus.subscribers == 1            # `docker info`'s NEventsListener counts Docker's only
        k8s.close()
        bus.emit("container", "die", "c1", namespace="k8s.io")
        assert len(heard) == 2
        bus.close()
        return path.read_text()
    assert '"c1"' not in asyncio.run(go())


def test_a_broken_listener_does_not_fail_the_emit(caplog):
    async def go():
        bus = Events()
        bus.listen("k8s.io", lambda ev: 1 / 0)
        bus.emit("container", "create", "c1", namespace="k8s.io")
    with caplog.at_level(logging.ERROR, logger="dockyard.events"):
        asyncio.run(go())
    assert "listener for namespace k8s.io failed" in caplog.text


def _daemon(bus: Events):
    def get(ref):
        raise NoSuchPod(ref)
    return types.SimpleNamespace(events=bus, pods=types.SimpleNamespace(get=get),
                                 pod_containers=types.SimpleNamespace(of_pod=lambda pid: []))


def test_a_stream_that_falls_behind_is_dropped_after_its_queue(monkeypatch, caplog):
    monkeypatch.setattr(cri_events, "QUEUE_MAX", 3)

    async def go():
        bus = Events()
        hub = cri_events.ContainerEvents(_daemon(bus), pod_status=None)
        slow, live = hub.subscribe(), hub.subscribe()
        assert hub.streams == 2 and len(bus._subs) == 1          # one bus listener for all streams
        got_live = []
        for i in range(5):
            bus.emit("container", "start", f"c{i}", {"sandbox": "gone"}, namespace="k8s.io")
            got_live.append(await live.next())
        bus.emit("container", "top", "c0", namespace="k8s.io")     # not a CRI event: nothing sent
        assert live.queue.empty()
        assert slow.dropped and not live.dropped and hub.streams == 1
        queued = [await slow.next() for _ in range(3)]
        assert await slow.next() is None                            # then the stream ends
        live.close()
        assert hub.streams == 0 and not bus._subs                   # the bus listener went with the last
        return got_live, queued
    with caplog.at_level(logging.WARNING, logger="dockyard.cri"):
        got_live, queued = asyncio.run(go())
    assert [e.container_id for e in got_live] == [f"c{i}" for i in range(5)]
    assert all(e.container_event_type == pb.CONTAINER_STARTED_EVENT for e in got_live)
    assert [e.container_id for e in queued] == ["c0", "c1", "c2"]
    assert not queued[0].HasField("pod_sandbox_status")             # its pod is gone: no status, as containerd
    assert "fell 3 events behind" in caplog.text

"""Pure logic of events: the bus (history bound, subscribers) and moby's filter rules."""
from __future__ import annotations

import asyncio

import pytest

from dockyard.daemon import event_filters as ef
from dockyard.daemon.events import Events
from dockyard.errors import InvalidParameter


def _ev(type_, action, actor, **attrs):
    return {"Type": type_, "Action": action, "Actor": {"ID": actor, "Attributes": attrs}, "scope": "local"}


def test_history_is_bounded_and_ordered():
    async def go():
        bus = Events(history=3)
        for i in range(5):
            bus.emit("container", "start", f"id{i}")
        return [e["Actor"]["ID"] for e in bus.history()]
    assert asyncio.run(go()) == ["id2", "id3", "id4"]


def test_subscriber_gets_events_and_a_stalled_one_is_dropped():
    async def go():
        bus = Events()
        live = bus.subscribe()
        bus.emit("image", "tag", "sha256:abc", {"name": "bb:latest"})
        ev = live.queue.get_nowait()
        assert ev["Type"] == "image" and ev["Action"] == "tag" and ev["status"] == "tag"
        assert ev["timeNano"] // 10**9 == ev["time"]
        from dockyard.daemon import events as mod
        stalled = bus.subscribe()
        for i in range(mod.QUEUE_MAX + 1):
            bus.emit("container", "start", str(i))
            live.queue.get_nowait()                      # a reader that keeps up
        assert stalled.dropped and not live.dropped and bus.subscribers == 1
        live.close()
        return bus.subscribers
    assert asyncio.run(go()) == 0


def test_emit_from_a_worker_thread_lands_on_the_loop():
    async def go():
        bus = Events()
        sub = bus.subscribe()
        await asyncio.to_thread(bus.emit, "network", "create", "n1", {"name": "net"})
        return await asyncio.wait_for(sub.queue.get(), 5)
    assert asyncio.run(go())["Actor"]["ID"] == "n1"


def test_normalize_rejects_unknown_keys():
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        ef.normalize({"bogus": ["x"]})
    assert ef.normalize({"type": {"container": True}}) == {"type": ["container"]}


def test_container_filter_matches_id_prefix_or_name_and_excludes_others():
    f = ef.normalize({"container": ["abc"]})
    assert ef.matches(_ev("container", "start", "abcdef"), f)
    assert ef.matches(_ev("container", "start", "zzz", name="abc"), f)
    assert not ef.matches(_ev("container", "start", "zzz", name="xyz"), f)
    assert not ef.matches(_ev("image", "tag", "sha256:1", name="bb"), f)


def test_event_filter_is_exact_except_suffixed_actions():
    assert not ef.matches(_ev("container", "health_status: healthy", "a"), {"event": ["health"]})
    assert ef.matches(_ev("container", "health_status: healthy", "a"), {"event": ["health_status"]})
    assert ef.matches(_ev("container", "die", "a"), {"event": ["die", "start"]})
    assert not ef.matches(_ev("container", "destroy", "a"), {"event": ["die"]})


def test_image_and_label_filters():
    c = _ev("container", "start", "c1", image="bb:latest", app="web")
    assert ef.matches(c, {"image": ["bb"]}) and ef.matches(c, {"image": ["bb:latest"]})
    assert not ef.matches(c, {"image": ["other"]})
    assert ef.matches(_ev("image", "tag", "sha256:abc", name="bb:latest"), {"image": ["bb"]})
    assert ef.matches(c, {"label": ["app"]}) and ef.matches(c, {"label": ["app=web"]})
    assert not ef.matches(c, {"label": ["app=db"]})
    assert ef.matches(c, {"type": ["container"], "label": ["app=web"]})
    assert not ef.matches(c, {"type": ["network"]})


def test_history_persists_and_is_compacted(tmp_path):
    path = str(tmp_path / "events.jsonl")

    async def go():
        bus = Events(history=4, path=path)
        for i in range(9):
            bus.emit("container", "start", f"id{i}")
        bus.close()
        with open(path, "ab") as f:
            f.write(b'{"Type": "contai')          # a line cut short by a crash
        again = Events(history=4, path=path)
        ids = [e["Actor"]["ID"] for e in again.history()]
        again.emit("container", "die", "id9")
        again.close()
        return ids, sum(1 for _ in open(path))
    ids, lines = asyncio.run(go())
    assert ids == ["id5", "id6", "id7", "id8"]
    assert lines == 5                                # compacted at load, then one appended

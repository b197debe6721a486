"""GetContainerEvents (dockyard/cri/events.py) through the Python gRPC
client: the events of a pod and of its container, as containerd sends them
(the sandbox's with its own id as container_id), on two streams at once;
none of them on the Docker API's /events; a client that goes away leaves no
stream behind. (Falling behind is tests/unit/test_cri_events_logic.py's.)"""
from __future__ import annotations

import json
import queue
import threading
import time

import grpc
import pytest

from dockyard.cri.proto import pb

EV = pb.ContainerEventType


def pod_config(name: str) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}-{time.time_ns()}",
                                                              namespace="default"))


class Listener:
    """One GetContainerEvents stream, read by a thread into a queue."""

    def __init__(self, cri):
        self.call = cri.rt.GetContainerEvents(pb.GetEventsRequest())
        self.q: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for ev in self.call:
                self.q.put(ev)
        except grpc.RpcError as e:
            self.error = e

    def until(self, object_id: str, kind: int, timeout: float = 20) -> list[pb.ContainerEventResponse]:
        """Events until (and with) `kind` for `object_id`; fails after timeout."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {EV.Name(kind)} for {object_id[:12]} within {timeout}s; saw "
                            f"{[(e.container_id[:12], EV.Name(e.container_event_type)) for e in seen]}")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(ev)
            if ev.container_id == object_id and ev.container_event_type == kind:
                return seen

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(10)


def _streams(cri) -> int:
    st = cri.rt.Status(pb.StatusRequest(verbose=True))
    return json.loads(st.info["events"])["streams"]


def _wait(cond, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_pod_and_container_events_on_two_streams(daemon, cri, bb_image):
    rt = cri.rt
    since = int(time.time()) - 1
    a, b = Listener(cri), Listener(cri)
    pid = cid = None
    try:
        _wait(lambda: _streams(cri) == 2, "both streams to be subscribed")
        pid = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("events"))).pod_sandbox_id
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="sleeper"), image=pb.ImageSpec(image="bb"),
                                 command=["sleep", "1000"])
        cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg)).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0))
        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))      # idempotent: no second event
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
        for listener in (a, b):
            got = listener.until(pid, EV.CONTAINER_DELETED_EVENT)
            seq = [(e.container_id, e.container_event_type) for e in got if e.container_id in (pid, cid)]
            assert seq == [(pid, EV.CONTAINER_CREATED_EVENT), (pid, EV.CONTAINER_STARTED_EVENT),
                           (cid, EV.CONTAINER_CREATED_EVENT), (cid, EV.CONTAINER_STARTED_EVENT),
                           (cid, EV.CONTAINER_STOPPED_EVENT), (cid, EV.CONTAINER_DELETED_EVENT),
                           (pid, EV.CONTAINER_STOPPED_EVENT), (pid, EV.CONTAINER_DELETED_EVENT)], seq
            by = {(e.container_id, e.container_event_type): e for e in got}
            # each carries the pod's status and its containers' as they were then
            started = by[(cid, EV.CONTAINER_STARTED_EVENT)]
            assert started.pod_sandbox_status.id == pid
            assert started.pod_sandbox_status.state == pb.SANDBOX_READY
            assert [(s.id, s.state) for s in started.containers_statuses] == [(cid, pb.CONTAINER_RUNNING)]
            created = by[(cid, EV.CONTAINER_CREATED_EVENT)]
            assert [(s.id, s.state) for s in created.containers_statuses] == [(cid, pb.CONTAINER_CREATED)]
            stopped = by[(cid, EV.CONTAINER_STOPPED_EVENT)]
            assert [s.state for s in stopped.containers_statuses] == [pb.CONTAINER_EXITED]
            assert list(by[(cid, EV.CONTAINER_DELETED_EVENT)].containers_statuses) == []
            assert by[(pid, EV.CONTAINER_STARTED_EVENT)].pod_sandbox_status.metadata.name == "events"
            assert by[(pid, EV.CONTAINER_STOPPED_EVENT)].pod_sandbox_status.state == pb.SANDBOX_NOTREADY
            assert not by[(pid, EV.CONTAINER_DELETED_EVENT)].HasField("pod_sandbox_status")
            times = [e.created_at for e in got]
            assert times == sorted(times) and times[0] > since * 10**9
            assert listener.error is None
        # none of it on Docker's /events (the CRI's objects are not Docker's)
        st, body = daemon.api("GET", f"/events?since={since}&until={int(time.time()) + 1}")
        assert st == 200
        assert pid not in body.decode() and cid not in body.decode()
    finally:
        for listener in (a, b):
            listener.close()
        if pid:
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))


def test_a_client_that_goes_is_dropped(cri):
    before = _streams(cri)
    listeners = [Listener(cri) for _ in range(3)]
    _wait(lambda: _streams(cri) == before + 3, "three streams")
    listeners[0].close()
    _wait(lambda: _streams(cri) == before + 2, "the cancelled stream to be dropped")
    # the others still hear events
    pid = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("after-drop"))).pod_sandbox_id
    try:
        for listener in listeners[1:]:
            listener.until(pid, EV.CONTAINER_STARTED_EVENT)
    finally:
        cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
        for listener in listeners[1:]:
            listener.close()
    _wait(lambda: _streams(cri) == before, "every stream to be dropped")

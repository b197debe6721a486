"""Exec, Attach and PortForward on a real dockyardd: the CRI calls answer
with URLs of the streaming server the daemon runs beside the CRI socket
(127.0.0.1, an ephemeral port), and the engine does the work (enginestreams.py):
exec through the engine's exec path (stdout/stderr apart, stdin, a TTY and
its resizes, the exit code), attach to the container's conmon, port-forward
into the pod's network namespace. The client is the one of
tests/unit/test_cri_streaming.py, written from client-go."""
from __future__ import annotations

import json
import time

import grpc
import pytest
from unit.test_cri_streaming import GoSpdyClient, decode_v4_status, remotecommand

from dockyard.cri.proto import pb


@pytest.fixture
def pod(cri, bb_image):
    made = []

    def make(name: str = "streams") -> str:
        cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"))
        pid = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
        made.append(pid)
        return pid
    yield make
    for pid in made:
        cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))


def container(cri, pid: str, name: str, *argv: str, start: bool = True, **kw) -> str:
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image="bb"),
                             command=list(argv), **kw)
    cid = cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg)).container_id
    if start:
        cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as ei:
        call()
    return ei.value.code()


def wait_for(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_exec_streams_stdin_and_exit_code(cri, pod):
    pid = pod()
    cid = container(cri, pid, "sleeper", "sleep", "1000")
    url = cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"],
                                     stdout=True, stderr=True)).url
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url
    c, ids = remotecommand(url)
    try:
        assert c.read_all(ids["stdout"]) == b"out\n"
        assert c.read_all(ids["stderr"]) == b"err\n"
        assert decode_v4_status(c.read_all(ids["error"])) == 3
    finally:
        c.close()

    # stdin to the process; its EOF closes the process's stdin, the output goes on to the end
    url = cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "cat; echo done"], stdin=True,
                                     stdout=True, stderr=True)).url
    c, ids = remotecommand(url, stdin=True)
    try:
        c.write(ids["stdin"], b"hello " + b"x" * 200000 + b"\n")
        c.close_stream(ids["stdin"])
        assert c.read_all(ids["stdout"]) == b"hello " + b"x" * 200000 + b"\ndone\n"
        assert decode_v4_status(c.read_all(ids["error"])) is None
    finally:
        c.close()

    # a URL is single-use
    c = GoSpdyClient(url, ["v4.channel.k8s.io"])
    try:
        assert c.status == 404
    finally:
        c.close()


def test_exec_tty_with_and_without_a_size(cri, pod):
    pid = pod()
    cid = container(cri, pid, "sleeper", "sleep", "1000")
    # critest: tty and stdin, no size sent
    url = cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["echo", "hello"], tty=True, stdin=True,
                                     stdout=True)).url
    c, ids = remotecommand(url, stdin=True, tty=True, stderr=False)
    try:
        assert "stderr" not in ids
        assert b"hello" in c.read_all(ids["stdout"])
        assert decode_v4_status(c.read_all(ids["error"])) is None
    finally:
        c.close()
    # a resize reaches the process's terminal
    url = cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "read x; stty size; exit 5"], tty=True,
                                     stdin=True, stdout=True)).url
    c, ids = remotecommand(url, stdin=True, tty=True, stderr=False)
    try:
        c.write(ids["resize"], json.dumps({"Width": 91, "Height": 17}).encode() + b"\n")
        time.sleep(0.5)
        c.write(ids["stdin"], b"go\n")
        assert b"17 91" in c.read_all(ids["stdout"])
        assert decode_v4_status(c.read_all(ids["error"])) == 5
    finally:
        c.close()


def test_attach_ends_when_stdin_closes(cri, pod):
    pid = pod()
    # StdinOnce (critest's shell container): the client's EOF closes the container's stdin too
    sh = container(cri, pid, "shell", "sh", stdin=True, stdin_once=True)
    url = cri.rt.Attach(pb.AttachRequest(container_id=sh, stdin=True, stdout=True, stderr=True)).url
    assert "/attach/" in url
    c, ids = remotecommand(url, stdin=True)
    try:
        c.write(ids["stdin"], b"echo hello\n")
        assert wait_for(lambda: bytes(c.data[ids["stdout"]]) == b"hello\n")
        c.close_stream(ids["stdin"])
        assert c.read_all(ids["stdout"]) == b"hello\n" and c.read_all(ids["stderr"]) == b""
        assert decode_v4_status(c.read_all(ids["error"])) is None
    finally:
        c.close()
    assert wait_for(lambda: cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=sh)).status.state ==
                    pb.CONTAINER_EXITED)

    # without StdinOnce the attach ends all the same, and the container goes on
    cat = container(cri, pid, "cat", "cat", stdin=True)
    url = cri.rt.Attach(pb.AttachRequest(container_id=cat, stdin=True, stdout=True)).url
    c, ids = remotecommand(url, stdin=True, stderr=False)
    try:
        c.write(ids["stdin"], b"abc\n")
        assert wait_for(lambda: bytes(c.data[ids["stdout"]]) == b"abc\n")
        c.close_stream(ids["stdin"])
        assert c.read_all(ids["stdout"]) == b"abc\n"
        assert decode_v4_status(c.read_all(ids["error"])) is None
    finally:
        c.close()
    time.sleep(0.5)
    assert cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cat)).status.state == pb.CONTAINER_RUNNING


def test_port_forward_into_the_pod(cri, pod):
    pid = pod()
    container(cri, pid, "web", "sh", "-c",
              "mkdir -p /www && echo forwarded > /www/index.html && exec httpd -f -p 8080 -h /www")
    url = cri.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pid, port=[8080])).url
    assert "/portforward/" in url
    c = GoSpdyClient(url, ["portforward.k8s.io"])
    assert c.status == 101
    try:
        body = b""
        for attempt in range(50):          # until the httpd listens
            hdr = {"streamtype": "error", "port": "8080", "requestid": str(attempt)}
            err = c.create_stream(hdr)
            c.close_stream(err)
            data = c.create_stream({**hdr, "streamtype": "data"})
            c.write(data, b"GET /index.html HTTP/1.0\r\n\r\n")
            c.close_stream(data)
            body = c.read_all(data)
            if body:
                break
            assert b"connection refused" in c.read_all(err).lower()
            time.sleep(0.2)
        assert body.startswith(b"HTTP/1.") and body.endswith(b"forwarded\n"), body
    finally:
        c.close()


def test_streaming_calls_refused_as_containerd(cri, pod):
    pid = pod()
    created = container(cri, pid, "idle", "sleep", "1000", start=False)
    rt = cri.rt
    assert code_of(lambda: rt.Exec(pb.ExecRequest(container_id="nosuch", cmd=["true"], stdout=True))) == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: rt.Exec(pb.ExecRequest(container_id=created, cmd=["true"], stdout=True))) == \
        grpc.StatusCode.UNKNOWN
    assert code_of(lambda: rt.Attach(pb.AttachRequest(container_id=created, stdout=True))) == \
        grpc.StatusCode.UNKNOWN
    running = container(cri, pid, "running", "sleep", "1000")
    assert code_of(lambda: rt.Exec(pb.ExecRequest(container_id=running, cmd=["true"], tty=True, stderr=True))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: rt.Exec(pb.ExecRequest(container_id=running, cmd=["true"]))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: rt.PortForward(pb.PortForwardRequest(pod_sandbox_id="nosuch"))) == \
        grpc.StatusCode.NOT_FOUND
    # a command that is not there: the exec fails on the error stream
    c, ids = remotecommand(rt.Exec(pb.ExecRequest(container_id=running, cmd=["/no/such"], stdout=True,
                                                  stderr=True)).url)
    try:
        assert decode_v4_status(c.read_all(ids["error"])) is not None
    finally:
        c.close()
    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))
    assert code_of(lambda: rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pid))) == grpc.StatusCode.UNKNOWN

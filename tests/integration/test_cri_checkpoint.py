"""The CRI's CheckpointContainer (daemon/podcheckpoint.py) through the
Python gRPC client: a running container of a pod checkpointed with CRIU into
a tar archive at `location` (containerd's layout: checkpoint/ with CRIU's
images, config.dump, spec.dump, status.dump, rootfs-diff.tar), and it keeps
running; the error codes; and Unimplemented, saying why, with no usable CRIU.

Skipped as tests/integration/test_checkpoint.py is: only where CRIU cannot
work on this host, never in CI once scripts/install-criu.sh installed its."""
from __future__ import annotations

import json
import os
import tarfile
import time

import grpc
import pytest
import test_checkpoint as _cp     # its CRIU skip rule and its checkpoint-capable daemon

from dockyard.cri.proto import grpc_pb, pb


pytestmark = _cp.pytestmark
_criu_required = _cp._criu_required          # autouse: CRIU unusable in CI fails, as there
daemon = _cp._daemon_fixture("dockyardd-cri-checkpoint")     # the runtime that can checkpoint


@pytest.fixture
def cri(daemon):
    ch = grpc.insecure_channel("unix:" + daemon.cri_sock)
    grpc.channel_ready_future(ch).result(timeout=10)
    try:
        yield grpc_pb.RuntimeServiceStub(ch)
    finally:
        ch.close()


@pytest.fixture
def pod(cri, daemon, busybox_tar):
    if daemon.api("GET", "/images/bb/json")[0] != 200:
        daemon.docker("import", str(busybox_tar), "bb")
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="ckpt", uid=f"uid-{time.time_ns()}",
                                                             namespace="default"))
    pid = cri.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    yield pid
    cri.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))


def _container(cri, pid: str, name: str, *argv: str, start: bool = True) -> str:
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image="bb"),
                             command=list(argv))
    cid = cri.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg)).container_id
    if start:
        cri.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as ei:
        call()
    return ei.value.code(), ei.value.details()


COUNTER = "echo marker > /made-here; i=0; while :; do echo $i > /count; i=$((i+1)); sleep 0.1; done"


def test_checkpoint_writes_the_archive_and_the_container_keeps_running(cri, pod, tmp_path):
    cid = _container(cri, pod, "counter", "sh", "-c", COUNTER)
    time.sleep(0.5)
    location = tmp_path / "counter.tar"
    cri.CheckpointContainer(pb.CheckpointContainerRequest(container_id=cid, location=str(location), timeout=60))
    assert oct(location.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(location) as tar:
        names = set(tar.getnames())
        assert {"config.dump", "spec.dump", "status.dump", "rootfs-diff.tar"} <= names, names
        assert {"checkpoint/inventory.img", "checkpoint/pstree.img"} <= names, names
        config = json.load(tar.extractfile("config.dump"))
        status = json.load(tar.extractfile("status.dump"))
        spec = json.load(tar.extractfile("spec.dump"))
        with tarfile.open(fileobj=tar.extractfile("rootfs-diff.tar")) as diff:
            assert "./made-here" in diff.getnames()
    assert config["id"] == cid and config["rootfsImageName"] == "bb" and config["checkpointedTime"]
    assert status["id"] == cid and status["state"] == "CONTAINER_RUNNING"
    assert spec["process"]["args"][:2] == ["sh", "-c"]
    # leave-running: it runs on and keeps counting
    st = cri.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert st.state == pb.CONTAINER_RUNNING

    def count() -> int:
        r = cri.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["cat", "/count"], timeout=10))
        return int(r.stdout.decode().strip())
    n = count()
    time.sleep(0.5)
    assert count() > n
    # nothing of the dump is left in the daemon's checkpoint dirs; a second checkpoint overwrites
    cri.CheckpointContainer(pb.CheckpointContainerRequest(container_id=cid, location=str(location)))
    assert tarfile.is_tarfile(location)
    assert sorted(os.listdir(tmp_path)) == ["counter.tar"]


def test_checkpoint_errors_leave_nothing(cri, pod, tmp_path):
    location = tmp_path / "x.tar"
    code, msg = _code(lambda: cri.CheckpointContainer(pb.CheckpointContainerRequest(
        container_id="0123456789ab", location=str(location))))
    assert code == grpc.StatusCode.NOT_FOUND and "not found" in msg
    created = _container(cri, pod, "created", "sleep", "1000", start=False)
    code, msg = _code(lambda: cri.CheckpointContainer(pb.CheckpointContainerRequest(
        container_id=created, location=str(location))))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "CONTAINER_CREATED" in msg
    exited = _container(cri, pod, "exited", "true")
    deadline = time.monotonic() + 10
    while cri.ContainerStatus(pb.ContainerStatusRequest(container_id=exited)).status.state != pb.CONTAINER_EXITED:
        assert time.monotonic() < deadline, "the container did not exit"
        time.sleep(0.05)
    code, _ = _code(lambda: cri.CheckpointContainer(pb.CheckpointContainerRequest(
        container_id=exited, location=str(location))))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    running = _container(cri, pod, "running", "sleep", "1000")
    for bad in ("", "relative.tar", str(tmp_path / "no-such-dir" / "x.tar"), str(tmp_path)):
        code, _ = _code(lambda: cri.CheckpointContainer(pb.CheckpointContainerRequest(
            container_id=running, location=bad)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, bad
    assert os.listdir(tmp_path) == []
    assert cri.ContainerStatus(pb.ContainerStatusRequest(container_id=running)).status.state == pb.CONTAINER_RUNNING


def test_no_usable_criu_is_unimplemented_saying_why(daemon, busybox_tar, tmp_path):
    """Last in the module: restarts the daemon with a CRIU that is not there."""
    saved = daemon.extra_args
    daemon.extra_args = saved + ("--criu-path", "/nonexistent/criu")
    daemon.restart()
    try:
        ch = grpc.insecure_channel("unix:" + daemon.cri_sock)
        try:
            grpc.channel_ready_future(ch).result(timeout=10)
            rt = grpc_pb.RuntimeServiceStub(ch)
            if daemon.api("GET", "/images/bb/json")[0] != 200:
                daemon.docker("import", str(busybox_tar), "bb")
            cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="nocriu", uid=f"u-{time.time_ns()}",
                                                                     namespace="default"))
            pid = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
            try:
                cid = _container(rt, pid, "sleeper", "sleep", "1000")
                code, msg = _code(lambda: rt.CheckpointContainer(pb.CheckpointContainerRequest(
                    container_id=cid, location=str(tmp_path / "c.tar"))))
                assert code == grpc.StatusCode.UNIMPLEMENTED
                assert "checkpoint/restore is not available" in msg and "/nonexistent/criu" in msg
                assert os.listdir(tmp_path) == []
                st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
                assert st.state == pb.CONTAINER_RUNNING
            finally:
                rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
        finally:
            ch.close()
    finally:
        daemon.extra_args = saved
        daemon.restart()

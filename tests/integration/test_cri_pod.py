"""Pods' shared parts through the CRI (Python gRPC client, a real
dockyardd): one PID namespace per pod held by a pause-mode init, the pod's
cgroup_parent, and mounts with propagation and read-only as containerd
makes them (critest's PodPID, mount propagation and readonly specs)."""
from __future__ import annotations

import glob
import json
import os
import secrets
import signal
import subprocess
import time

import grpc
import pytest

from conftest import cri_connect, remove_pods

from dockyard.cri.proto import pb


def pod_config(name: str, **kw) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
                               **kw)


def container_config(name: str, *argv: str, **kw) -> pb.ContainerConfig:
    return pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image="bb"),
                              command=list(argv), **kw)


def start(rt, pod: str, name: str, *argv: str, **kw) -> str:
    cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod,
                                                       config=container_config(name, *argv, **kw))).container_id
    rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid


def run_in(rt, cid: str, script: str) -> tuple[int, str]:
    r = rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script], timeout=20))
    return r.exit_code, (r.stdout + r.stderr).decode()


def ok_in(rt, cid: str, script: str) -> str:
    code, out = run_in(rt, cid, script)
    assert code == 0, (script, out)
    return out


CMDLINES = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"


def pid_ns_of(rt, cid: str) -> str:
    return ok_in(rt, cid, "readlink /proc/self/ns/pid").strip()


def pod_info(rt, pod: str) -> dict:
    return json.loads(rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True)).info["info"])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def own_pid_ns() -> pb.LinuxContainerConfig:
    return pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(pid=pb.CONTAINER)))


# ---------------------------------------------------------------- PID namespace

def test_pod_pid_namespace_is_shared_and_outlives_its_first_container(cri, pods, bb_image):
    rt = cri.rt
    pod = pods(pod_config("pidpod"))        # NamespaceOption.pid unset: POD
    info = pod_info(rt, pod)
    holder, pinned = info["pidHolder"], info["pidNamespace"]
    assert alive(holder) and os.path.ismount(pinned)
    a = start(rt, pod, "a", "sleep", "1001")
    b = start(rt, pod, "b", "sleep", "1002")
    # PID 1 is the pod's holder, as the pause container is containerd's: no container is PID 1
    for cid in (a, b):
        assert "catatonit" in ok_in(rt, cid, "tr '\\0' ' ' < /proc/1/cmdline")
    assert pid_ns_of(rt, a) == pid_ns_of(rt, b)
    assert "sleep 1001" in ok_in(rt, b, CMDLINES) and "sleep 1002" in ok_in(rt, a, CMDLINES)
    # the first container ends: the namespace stays, and a new container joins it
    rt.StopContainer(pb.StopContainerRequest(container_id=a, timeout=0))
    c = start(rt, pod, "c", "sleep", "1003")
    seen = ok_in(rt, c, CMDLINES)
    assert "sleep 1002" in seen and "sleep 1001" not in seen
    assert pid_ns_of(rt, c) == pid_ns_of(rt, b)
    # a container asking for its own (NamespaceOption.pid CONTAINER) gets it
    d = start(rt, pod, "d", "sleep", "1004", linux=own_pid_ns())
    assert pid_ns_of(rt, d) != pid_ns_of(rt, b)
    assert ok_in(rt, d, "tr '\\0' ' ' < /proc/1/cmdline").startswith("sleep 1004")
    # stopping the pod ends its holder and releases the namespace
    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    assert not alive(holder) and not os.path.exists(pinned)


def test_container_pid_mode_pod_has_no_holder(cri, pods, bb_image):
    rt = cri.rt
    opts = pb.NamespaceOption(pid=pb.CONTAINER)
    pod = pods(pod_config("own-pids", linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=opts))))
    info = pod_info(rt, pod)
    assert info["pidNamespace"] == "" and info["pidHolder"] == 0
    a = start(rt, pod, "a", "sleep", "1001", linux=own_pid_ns())
    b = start(rt, pod, "b", "sleep", "1002", linux=own_pid_ns())
    assert pid_ns_of(rt, a) != pid_ns_of(rt, b)
    assert ok_in(rt, a, "tr '\\0' ' ' < /proc/1/cmdline").startswith("sleep 1001")


def test_target_pid_namespace(cri, pods, bb_image):
    """NamespaceOption.pid TARGET (kubectl debug --target): the target
    container's PID namespace, which must run and be of the same pod."""
    rt = cri.rt
    opts = pb.NamespaceOption(pid=pb.CONTAINER)
    pod = pods(pod_config("target", linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=opts))))
    a = start(rt, pod, "app", "sleep", "1001", linux=own_pid_ns())

    def targeting(target: str) -> pb.LinuxContainerConfig:
        return pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(pid=pb.TARGET, target_id=target)))
    dbg = start(rt, pod, "debug", "sleep", "1002", linux=targeting(a))
    assert pid_ns_of(rt, dbg) == pid_ns_of(rt, a)
    assert ok_in(rt, dbg, "tr '\\0' ' ' < /proc/1/cmdline").startswith("sleep 1001")
    for target, code in (("0" * 64, grpc.StatusCode.NOT_FOUND), ("", grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as ei:
            rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=container_config(
                "bad", "true", linux=targeting(target))))
        assert ei.value.code() == code
    rt.StopContainer(pb.StopContainerRequest(container_id=a, timeout=0))
    with pytest.raises(grpc.RpcError) as ei:
        rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=container_config(
            "late", "true", linux=targeting(a))))
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_pod_pid_namespace_survives_a_daemon_crash(daemon, bb_image):
    """kill -9 of dockyardd: the holder lives on (the host's init adopts
    it); after the restart new containers join the same namespace. A pod
    whose holder died meanwhile is not ready, and stop/remove still work."""
    ch, rt = cri_connect(daemon)
    made = []
    try:
        keep = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("pid-keep"))).pod_sandbox_id
        made.append(keep)
        lose = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("pid-lose"))).pod_sandbox_id
        made.append(lose)
        a = start(rt, keep, "a", "sleep", "1001")
        ns = pid_ns_of(rt, a)
        holder, lost_holder = pod_info(rt, keep)["pidHolder"], pod_info(rt, lose)["pidHolder"]
        ch.close()
        daemon.kill9()
        assert alive(holder)
        os.kill(lost_holder, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(lost_holder) and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon.start()
        ch, rt = cri_connect(daemon)
        assert rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=keep)).status.state == pb.SANDBOX_READY
        assert rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=lose)).status.state == \
            pb.SANDBOX_NOTREADY
        b = start(rt, keep, "b", "sleep", "1002")
        assert pid_ns_of(rt, b) == ns and "sleep 1001" in ok_in(rt, b, CMDLINES)
        for pod in (keep, lose):
            rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        assert not alive(holder)
    finally:
        remove_pods(rt, made)
        ch.close()


# ---------------------------------------------------------------- cgroup_parent

V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def cgroup_paths(top: str) -> list[str]:
    return sorted(glob.glob(f"/sys/fs/cgroup/{top}" if V2 else f"/sys/fs/cgroup/*/{top}"))


def cgroup_file(where: str, controller: str, v1_name: str, v2_name: str) -> str:
    return f"/sys/fs/cgroup{where}/{v2_name}" if V2 else f"/sys/fs/cgroup/{controller}{where}/{v1_name}"


def cgroup_line(rt, cid: str, controller: str) -> str:
    for line in ok_in(rt, cid, "cat /proc/self/cgroup").splitlines():
        _, ctrls, path = line.split(":", 2)
        if (V2 and not ctrls) or controller in ctrls.split(","):
            return path
    raise AssertionError(f"no {controller} cgroup")


@pytest.mark.parametrize("form", ["cgroupfs", "systemd-slice"])
def test_pod_cgroup_parent(cri, pods, bb_image, form):
    rt = cri.rt
    tag = secrets.token_hex(3)
    top = f"dytpod{tag}"
    if form == "cgroupfs":
        parent, where = f"/{top}/burstable/pod{tag}", f"/{top}/burstable/pod{tag}"
    else:       # the kubelet's systemd driver names a slice; dockyard (cgroupfs) puts it where systemd would
        parent = f"{top}-burstable-pod{tag}.slice"
        where = f"/{top}.slice/{top}-burstable.slice/{top}-burstable-pod{tag}.slice"
        top = f"{top}.slice"
    # a hierarchy where the top already exists (the kubelet's): kept
    pre = f"/sys/fs/cgroup/{top}" if V2 else f"/sys/fs/cgroup/pids/{top}"
    os.mkdir(pre)
    try:
        pod = pods(pod_config(f"cg-{form}", linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent)))
        cid = start(rt, pod, "eat", "sh", "-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); exec sleep 1000")
        assert cgroup_line(rt, cid, "memory") == f"{where}/{cid}"
        assert cgroup_line(rt, cid, "pids") == f"{where}/{cid}"
        time.sleep(0.2)
        st = rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod)).stats.linux
        with open(cgroup_file(where, "memory", "memory.usage_in_bytes", "memory.current")) as f:
            usage = int(f.read())
        assert st.memory.usage_bytes.value > 0 and abs(st.memory.usage_bytes.value - usage) < usage // 2 + (1 << 20)
        assert st.cpu.usage_core_nano_seconds.value >= st.containers[0].cpu.usage_core_nano_seconds.value > 0
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        assert cgroup_paths(top) == [pre]
        assert not [n for n in os.listdir(pre) if os.path.isdir(os.path.join(pre, n))]
    finally:
        for path in sorted((p for t in cgroup_paths(top) for p, _, _ in os.walk(t)), reverse=True):
            os.rmdir(path)


def test_bad_cgroup_parent_is_invalid(cri):
    with pytest.raises(grpc.RpcError) as ei:
        cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config(
            "cg-bad", linux=pb.LinuxPodSandboxConfig(cgroup_parent="/kubepods/../escape"))))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items


# ---------------------------------------------------------------- mounts

@pytest.fixture
def shared_source(tmp_path):
    """A host directory on a shared mount of its own with a tmpfs under it."""
    src = tmp_path / "src"
    (src / "tmpfs").mkdir(parents=True)
    (src / "late").mkdir()
    (src / "back").mkdir()
    subprocess.run(["mount", "--bind", str(src), str(src)], check=True)
    subprocess.run(["mount", "--make-rshared", str(src)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src / "tmpfs")], check=True)
    yield src
    subprocess.run(["umount", "-R", "-l", str(src)], check=True)


def test_mount_propagation_and_readonly(cri, pods, bb_image, shared_source):
    rt = cri.rt
    src = str(shared_source)
    P = pb.MountPropagation
    mounts = [pb.Mount(host_path=src, container_path="/m-private", propagation=P.PROPAGATION_PRIVATE),
              pb.Mount(host_path=src, container_path="/m-slave", propagation=P.PROPAGATION_HOST_TO_CONTAINER),
              pb.Mount(host_path=src, container_path="/m-shared", propagation=P.PROPAGATION_BIDIRECTIONAL),
              pb.Mount(host_path=src, container_path="/ro", readonly=True)]
    pod = pods(pod_config("mounts"))
    privileged = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(privileged=True))
    cid = start(rt, pod, "m", "sleep", "1000", mounts=mounts, linux=privileged)
    st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert [(m.container_path, m.host_path, m.propagation, m.readonly) for m in st.mounts] == \
        [(m.container_path, m.host_path, m.propagation, m.readonly) for m in mounts]
    # host to container: the slave and the shared bind see a mount made on the host now
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(src, "late")], check=True)
    with open(os.path.join(src, "late", "flag"), "w"):
        pass
    seen = {d: run_in(rt, cid, f"ls /{d}/late")[1].split() for d in ("m-private", "m-slave", "m-shared")}
    assert seen == {"m-private": [], "m-slave": ["flag"], "m-shared": ["flag"]}
    # container to host: only the shared (rshared) bind's
    ok_in(rt, cid, "mount -t tmpfs tmpfs /m-shared/back && touch /m-shared/back/from-container")
    assert os.listdir(os.path.join(src, "back")) == ["from-container"]
    # readonly is containerd's `ro`: the bind itself; the tmpfs under it stays writable
    assert run_in(rt, cid, "touch /ro/x")[0] != 0
    ok_in(rt, cid, "touch /ro/tmpfs/x")


def test_recursive_read_only_mounts(cri, pods, bb_image, shared_source):
    rt = cri.rt
    src = str(shared_source)
    pod = pods(pod_config("rro"))
    bad = [pb.Mount(host_path=src, container_path="/m", recursive_read_only=True),
           pb.Mount(host_path=src, container_path="/m", readonly=True, recursive_read_only=True,
                    propagation=pb.PROPAGATION_HOST_TO_CONTAINER)]
    for m in bad:
        with pytest.raises(grpc.RpcError) as ei:
            rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=container_config(
                "bad", "true", mounts=[m])))
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not rt.ListContainers(pb.ListContainersRequest()).containers
    # Status says whether the runtime handlers can (critest asks it before its rro specs)
    handlers = {h.name: h.features.recursive_read_only_mounts for h in rt.Status(pb.StatusRequest()).runtime_handlers}
    assert "" in handlers and "crun" in handlers
    m = pb.Mount(host_path=src, container_path="/rro", readonly=True, recursive_read_only=True)
    if not handlers[""]:
        with pytest.raises(grpc.RpcError) as ei:
            start(rt, pod, "rro", "sleep", "1000", mounts=[m])
        assert "not supported" in ei.value.details()
        pytest.skip("no recursive read-only mounts on this host")
    cid = start(rt, pod, "rro", "sleep", "1000", mounts=[m])
    assert rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status.mounts[0].recursive_read_only
    code, out = run_in(rt, cid, "touch /rro/tmpfs/x")
    assert code != 0 and "Read-only file system" in out


def test_a_holder_is_found_by_its_pin(tmp_path):
    """A holder whose PID was never recorded (dockyardd killed while it made
    the pod) is found by the namespace it pins, and stopped with the pod."""
    from dockyard import nsfiles
    pin = str(tmp_path / "pid")
    pid = nsfiles.spawn_pid_holder(pin)
    try:
        assert nsfiles.holds(pid, pin) and nsfiles.find_pid_holder(pin) == pid
        nsfiles.stop_pid_holder(0, pin)
        assert not alive(pid) and not os.path.exists(pin)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        nsfiles.unpin(pin)

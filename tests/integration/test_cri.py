"""The CRI server (dockyard/cri/) driven by a Python gRPC client generated
from the same api.proto: a conformance subset of what critest checks, on a
real dockyardd (the integration Daemon serves the CRI under its own root)."""
from __future__ import annotations

import os
import subprocess
import time

import grpc
import pytest
from conftest import Daemon, cri_connect, remove_pods
from registry_util import LocalRegistry

from dockyard.cri.proto import grpc_pb, pb


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as ei:
        call()
    return ei.value.code()


def pod_config(name: str, **kw) -> pb.PodSandboxConfig:
    uid = kw.pop("uid", f"uid-{name}")
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="default",
                                                              attempt=kw.pop("attempt", 0)), **kw)


# ---------------------------------------------------------------- runtime

def test_version_status_and_runtime_config(cri):
    v = cri.rt.Version(pb.VersionRequest())
    assert (v.runtime_name, v.runtime_api_version) == ("dockyard", "v1")
    assert v.runtime_version and v.version
    st = cri.rt.Status(pb.StatusRequest(verbose=True))
    conds = {c.type: c for c in st.status.conditions}
    assert conds["RuntimeReady"].status is True
    # no CNI network wired in yet: NetworkReady false with a reason, as containerd without a CNI config
    assert "NetworkReady" in conds
    assert conds["NetworkReady"].status or conds["NetworkReady"].reason
    assert "config" in st.info
    rc = cri.rt.RuntimeConfig(pb.RuntimeConfigRequest())
    assert rc.linux.cgroup_driver == pb.CGROUPFS


def test_not_yet_served_calls_are_unimplemented(cri):
    with pytest.raises(grpc.RpcError) as ei:
        cri.rt.CheckpointPod(pb.CheckpointPodRequest(pod_sandbox_id="x"))
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "CheckpointPod" in ei.value.details()
    # RestorePod too (cri/runtime.py says why); everything else of the RuntimeService is served
    assert code_of(lambda: cri.rt.RestorePod(pb.RestorePodRequest())) == grpc.StatusCode.UNIMPLEMENTED


# ---------------------------------------------------------------- images

@pytest.fixture(scope="module")
def registry():
    r = LocalRegistry()
    yield r
    r.stop()


def test_image_pull_list_status_remove(daemon, cri, bb_image, registry):
    ref = f"{registry.host}/cri/bb:1"
    daemon.docker("tag", bb_image, ref)
    daemon.docker("push", ref)
    daemon.docker("rmi", ref)
    assert cri.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref))).HasField("image") is False

    image_id = cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref))).image_ref
    assert image_id.startswith("sha256:") and len(image_id) == 71
    st = cri.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref), verbose=True))
    assert st.image.id == image_id and ref in st.image.repo_tags and st.image.size > 0
    assert "info" in st.info
    # by id too, and in the list, fully qualified (docker.io/library/... for Docker Hub names)
    assert cri.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=image_id))).image.id == image_id
    listed = {i.id: i for i in cri.img.ListImages(pb.ListImagesRequest()).images}
    assert ref in listed[image_id].repo_tags
    assert all(not t.startswith("bb:") for i in listed.values() for t in i.repo_tags)
    only = cri.img.ListImages(pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(image=ref)))).images
    assert [i.id for i in only] == [image_id]
    # the Docker API sees the same store
    assert daemon.api("GET", f"/images/{ref}/json")[0] == 200

    fs = cri.img.ImageFsInfo(pb.ImageFsInfoRequest()).image_filesystems
    assert fs and fs[0].used_bytes.value > 0 and fs[0].inodes_used.value > 0 and fs[0].fs_id.mountpoint

    cri.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)))
    assert not cri.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref))).HasField("image")
    assert daemon.api("GET", f"/images/{ref}/json")[0] == 404
    cri.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)))     # again: no error


def test_pull_errors(cri, registry):
    assert code_of(lambda: cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=f"{registry.host}/no/such:1")))) \
        == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="")))) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="a b")))) \
        == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- pod sandboxes

def nsenter(kind: str, path: str, *argv: str) -> str:
    return subprocess.run(["nsenter", f"--{kind}={path}", *argv], check=True, capture_output=True,
                          text=True).stdout


def test_pod_sandbox_lifecycle(daemon, cri, pods):
    cfg = pod_config("web", hostname="web-host", labels={"app": "web"}, annotations={"a": "1"},
                     dns_config=pb.DNSConfig(servers=["10.0.0.10"], searches=["ns.svc.cluster.local"],
                                             options=["ndots:5"]))
    pid = pods(cfg)
    st = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid, verbose=True))
    s = st.status
    assert s.id == pid and s.state == pb.SANDBOX_READY and s.metadata.name == "web"
    assert dict(s.labels) == {"app": "web"} and dict(s.annotations) == {"a": "1"}
    assert s.created_at > 0 and s.linux.namespaces.options.network == pb.POD
    import json
    info = json.loads(st.info["info"])
    ns = info["namespaces"]
    assert set(ns) == {"net", "ipc", "uts"}
    # its own network namespace, pinned, with loopback up and nothing else (CNI comes later)
    links = nsenter("net", ns["net"], "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], links
    assert "UP" in links.split("<", 1)[1].split(">", 1)[0]
    assert nsenter("uts", ns["uts"], "hostname").strip() == "web-host"
    assert os.stat(ns["ipc"]).st_ino != os.stat("/proc/self/ns/ipc").st_ino or \
        nsenter("ipc", ns["ipc"], "true") == ""
    resolv = open(info["etcFiles"]["/etc/resolv.conf"]).read()
    assert "nameserver 10.0.0.10" in resolv and "search ns.svc.cluster.local" in resolv
    assert "options ndots:5" in resolv
    assert open(info["etcFiles"]["/etc/hostname"]).read() == "web-host\n"

    # the same metadata again: AlreadyExists, and nothing half-made
    before = len(cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items)
    assert code_of(lambda: cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg))) == \
        grpc.StatusCode.ALREADY_EXISTS
    assert len(cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == before

    cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))
    assert cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid)).status.state == \
        pb.SANDBOX_NOTREADY
    assert not any(os.path.exists(p) for p in ns.values())
    assert not os.path.ismount(info["shm"])
    cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))        # idempotent
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
    assert code_of(lambda: cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid))) == \
        grpc.StatusCode.NOT_FOUND
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))    # again: no error
    assert not os.path.exists(os.path.dirname(info["etcFiles"]["/etc/resolv.conf"]))


def test_list_pod_sandbox_filters(cri, pods):
    a = pods(pod_config("a", labels={"tier": "front", "x": "1"}))
    b = pods(pod_config("b", labels={"tier": "back"}))
    cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=b))

    def ids(**f) -> set[str]:
        req = pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(**f)) if f else pb.ListPodSandboxRequest()
        return {p.id for p in cri.rt.ListPodSandbox(req).items}
    assert {a, b} <= ids()
    assert ids(label_selector={"tier": "front"}) == {a}
    assert ids(label_selector={"tier": "front", "x": "2"}) == set()
    assert ids(id=a[:12]) == {a}
    assert a in ids(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
    assert b not in ids(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
    assert b in ids(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY))
    # a unique prefix works as the id, as in containerd
    assert cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=a[:12])).status.id == a


def test_host_network_pod(cri, pods, bb_image):
    opts = pb.NamespaceOption(network=pb.NODE, ipc=pb.NODE)
    cfg = pod_config("hostnet", linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=opts)))
    pid = pods(cfg)
    st = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid, verbose=True))
    assert st.status.linux.namespaces.options.network == pb.NODE
    assert st.status.linux.namespaces.options.ipc == pb.NODE
    import json
    assert json.loads(st.info["info"])["namespaces"] == {}
    assert json.loads(st.info["info"])["shm"] == "/dev/shm"
    # its containers are in the host's network, UTS and IPC namespaces
    cid = cri.rt.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pid, config=_container_config("h", "sleep", "1000"))).container_id
    cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    for kind in ("net", "uts", "ipc"):
        assert _ino_of(cri, cid, kind) == os.stat(f"/proc/self/ns/{kind}").st_ino, kind
    r = cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["hostname"], timeout=10))
    assert r.stdout.decode().strip() == os.uname().nodename
    # RemovePodSandbox alone (no stop first) takes the running container along
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
    assert code_of(lambda: cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid))) == \
        grpc.StatusCode.NOT_FOUND


def test_bad_input_codes(cri):
    rt = cri.rt
    unknown = "0" * 64
    assert code_of(lambda: rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=unknown))) == \
        grpc.StatusCode.NOT_FOUND
    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=unknown))          # idempotent: no error (critest)
    rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=unknown))      # containerd: no error
    assert code_of(lambda: rt.RunPodSandbox(pb.RunPodSandboxRequest())) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="x"))))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=""))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    before = len(rt.ListPodSandbox(pb.ListPodSandboxRequest()).items)
    assert code_of(lambda: rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("long", hostname="h" * 65)))) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert len(rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == before      # nothing half-made


# ---------------------------------------------------------------- the socket

def test_default_socket_is_in_the_exec_root_and_never_taken_over(daemon, tmp_path):
    """Without --cri-socket: <exec-root>/cri.sock (/run/dockyard/cri.sock by
    default); a socket another daemon serves is refused, not unlinked."""
    class Plain(Daemon):
        def argv(self) -> list[str]:
            argv = super().argv()
            i = argv.index("--cri-socket")
            return argv[:i] + argv[i + 2:]
    d = Plain(log_path=tmp_path / "plain.log")
    try:
        d.start()
        assert os.path.exists(os.path.join(d.exec_root, "cri.sock"))
    finally:
        d.stop()
        d.cleanup()
        d.remove()
    class Thief(Daemon):
        def argv(self) -> list[str]:
            argv = super().argv()
            return argv[:argv.index("--cri-socket") + 1] + ["unix://" + daemon.cri_sock] + \
                argv[argv.index("--cri-socket") + 2:]
    t = Thief(log_path=tmp_path / "thief.log")
    try:
        with pytest.raises(RuntimeError, match="another process serves"):
            t.start()
        assert os.path.exists(daemon.cri_sock)
        ch = grpc.insecure_channel("unix:" + daemon.cri_sock)
        grpc.channel_ready_future(ch).result(timeout=10)
        assert grpc_pb.RuntimeServiceStub(ch).Version(pb.VersionRequest()).runtime_name == "dockyard"
        ch.close()
    finally:
        t.stop()
        t.cleanup()
        t.remove()


def test_cri_off_and_socket_removed(tmp_path):
    d = Daemon(extra_args=("--cri=false",), log_path=tmp_path / "off.log")
    try:
        d.start()
        assert not os.path.exists(d.cri_sock)
    finally:
        d.stop()
        d.cleanup()
        d.remove()
    d = Daemon(log_path=tmp_path / "on.log")
    try:
        d.start()
        deadline = time.monotonic() + 5
        while not os.path.exists(d.cri_sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(d.cri_sock)
        d.stop()
        assert not os.path.exists(d.cri_sock)
    finally:
        d.stop()
        d.cleanup()
        d.remove()


# ---------------------------------------------------------------- containers

def _ino_of(cri, cid: str, kind: str) -> int:
    r = cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["readlink", f"/proc/self/ns/{kind}"], timeout=10))
    assert r.exit_code == 0, r
    return int(r.stdout.decode().strip().split("[")[1].rstrip("]"))


def _container_config(name: str, *argv: str, log: str = "", **kw) -> pb.ContainerConfig:
    return pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image="bb"),
                              command=list(argv), log_path=log, **kw)


def test_containers_in_a_pod(daemon, cri, pods, bb_image, tmp_path):
    import json
    logs = tmp_path / "pod-logs"
    pid = pods(pod_config("app", hostname="app-host", log_directory=str(logs),
                          linux=pb.LinuxPodSandboxConfig(sysctls={"net.ipv4.ip_forward": "1"})))
    info = json.loads(cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pid,
                                                                         verbose=True)).info["info"])
    rt = cri.rt
    # SIGTERM ignored (kept across exec): StopContainer's timeout must end in SIGKILL (sleep is not
    # PID 1 of the pod's shared PID namespace, so it would die of SIGTERM otherwise)
    cfg = _container_config("talker", "sh", "-c", "trap '' TERM; echo hello; echo oops >&2; exec sleep 1000",
                            log="talker.log",
                            labels={"role": "talker"}, envs=[pb.KeyValue(key="GREETING", value=b"hi")])
    pod_cfg = pod_config("app", hostname="app-host", log_directory=str(logs))
    c1 = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg,
                                                      sandbox_config=pod_cfg)).container_id
    st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=c1)).status
    assert st.state == pb.CONTAINER_CREATED and st.metadata.name == "talker" and st.created_at > 0
    assert st.log_path == str(logs / "talker.log")
    # the same metadata again: AlreadyExists
    assert code_of(lambda: rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=cfg))) == \
        grpc.StatusCode.ALREADY_EXISTS
    c2 = rt.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pid, config=_container_config("sleeper", "sleep", "1000"))).container_id

    # the Docker API does not see them (their own namespace in the store)
    ps = daemon.docker("ps", "-a", "--no-trunc", "--format", "{{.ID}}").stdout
    assert c1 not in ps and c2 not in ps
    for ref in (c1, c1[:12], "k8s.io/talker_app_default_uid-app_0"):
        assert daemon.api("GET", f"/containers/{ref}/json")[0] == 404, ref
    assert daemon.api("DELETE", f"/containers/{c1}?force=1")[0] == 404

    rt.StartContainer(pb.StartContainerRequest(container_id=c1))
    rt.StartContainer(pb.StartContainerRequest(container_id=c2))
    st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=c1)).status
    assert st.state == pb.CONTAINER_RUNNING and st.started_at >= st.created_at
    # both in the pod's network, IPC and UTS namespaces
    for kind in ("net", "ipc", "uts"):
        want = os.stat(info["namespaces"][kind]).st_ino
        assert _ino_of(cri, c1, kind) == want == _ino_of(cri, c2, kind), kind
    r = rt.ExecSync(pb.ExecSyncRequest(container_id=c2, cmd=["hostname"], timeout=10))
    assert r.stdout == b"app-host\n"
    # one /dev/shm for the pod (POSIX shared memory between its containers), a tmpfs of its own
    rt.ExecSync(pb.ExecSyncRequest(container_id=c1, cmd=["sh", "-c", "echo shared > /dev/shm/x"], timeout=10))
    assert rt.ExecSync(pb.ExecSyncRequest(container_id=c2, cmd=["cat", "/dev/shm/x"], timeout=10)).stdout == \
        b"shared\n"
    assert not os.path.exists("/dev/shm/x") and open(os.path.join(info["shm"], "x")).read() == "shared\n"
    # the pod's sysctls, in its namespace
    r = rt.ExecSync(pb.ExecSyncRequest(container_id=c2, cmd=["cat", "/proc/sys/net/ipv4/ip_forward"], timeout=10))
    assert r.stdout == b"1\n"
    r = rt.ExecSync(pb.ExecSyncRequest(container_id=c1, cmd=["sh", "-c", "echo $GREETING; exit 3"], timeout=10))
    assert (r.exit_code, r.stdout) == (3, b"hi\n")
    t0 = time.monotonic()
    assert code_of(lambda: rt.ExecSync(pb.ExecSyncRequest(container_id=c1, cmd=["sleep", "30"], timeout=1))) == \
        grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 10
    # ... and its process is gone (critest checks it); stdout and stderr come apart
    r = rt.ExecSync(pb.ExecSyncRequest(container_id=c1, cmd=["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"],
                                       timeout=10))
    assert r.exit_code == 0 and b"sleep 30" not in r.stdout and b"sleep 1000" in r.stdout, r
    r = rt.ExecSync(pb.ExecSyncRequest(container_id=c1, cmd=["sh", "-c", "echo out; echo err >&2"], timeout=10))
    assert (r.exit_code, r.stdout, r.stderr) == (0, b"out\n", b"err\n")
    r = rt.ExecSync(pb.ExecSyncRequest(container_id=c1, cmd=["/no/such"], timeout=10))
    assert r.exit_code in (126, 127) and r.stderr, r

    # the log in the CRI format, where the kubelet said
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = (logs / "talker.log").read_text() if (logs / "talker.log").exists() else ""
        if "oops" in text:
            break
        time.sleep(0.1)
    lines = [line.split(" ", 3) for line in text.splitlines()]
    assert [(s, t, m) for _ts, s, t, m in lines] == [("stdout", "F", "hello"), ("stderr", "F", "oops")], text
    assert all(ts[:4].isdigit() and "T" in ts for ts, *_ in lines)

    listed = rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pid))).containers
    assert {c.id for c in listed} == {c1, c2}
    assert [c.id for c in rt.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(label_selector={"role": "talker"}))).containers] == [c1]
    assert [c.id for c in rt.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(id=c2[:12]))).containers] == [c2]

    t0 = time.monotonic()
    rt.StopContainer(pb.StopContainerRequest(container_id=c1, timeout=1))    # it ignores SIGTERM
    assert time.monotonic() - t0 < 8
    st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=c1)).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137 and st.reason == "Error"
    assert st.finished_at >= st.started_at
    rt.StopContainer(pb.StopContainerRequest(container_id=c1, timeout=1))    # again: no error
    exited = pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_EXITED))
    assert [c.id for c in rt.ListContainers(pb.ListContainersRequest(filter=exited)).containers] == [c1]
    assert code_of(lambda: rt.ExecSync(pb.ExecSyncRequest(container_id=c1, cmd=["true"]))) == \
        grpc.StatusCode.FAILED_PRECONDITION
    rt.RemoveContainer(pb.RemoveContainerRequest(container_id=c1))
    assert code_of(lambda: rt.ContainerStatus(pb.ContainerStatusRequest(container_id=c1))) == \
        grpc.StatusCode.NOT_FOUND
    rt.RemoveContainer(pb.RemoveContainerRequest(container_id=c1))            # again: no error
    assert (logs / "talker.log").exists()                                     # the kubelet's to remove

    # stopping the pod kills what runs in it; removing it removes its containers
    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))
    assert rt.ContainerStatus(pb.ContainerStatusRequest(container_id=c2)).status.state == pb.CONTAINER_EXITED
    assert code_of(lambda: rt.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pid, config=_container_config("late", "true")))) == grpc.StatusCode.FAILED_PRECONDITION
    rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
    assert code_of(lambda: rt.ContainerStatus(pb.ContainerStatusRequest(container_id=c2))) == \
        grpc.StatusCode.NOT_FOUND
    assert rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pid))).containers \
        == []


def test_container_bad_input_codes(cri, pods, bb_image):
    rt = cri.rt
    unknown = "0" * 64
    cfg = _container_config("x", "true")
    assert code_of(lambda: rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=unknown, config=cfg))) == \
        grpc.StatusCode.NOT_FOUND
    for call in (lambda: rt.StartContainer(pb.StartContainerRequest(container_id=unknown)),
                 lambda: rt.ContainerStatus(pb.ContainerStatusRequest(container_id=unknown)),
                 lambda: rt.ExecSync(pb.ExecSyncRequest(container_id=unknown, cmd=["true"]))):
        assert code_of(call) == grpc.StatusCode.NOT_FOUND
    rt.RemoveContainer(pb.RemoveContainerRequest(container_id=unknown))      # containerd: no error
    rt.StopContainer(pb.StopContainerRequest(container_id=unknown))          # idempotent: no error (critest)
    pid = pods(pod_config("bad"))
    assert code_of(lambda: rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    no_image = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="y"), image=pb.ImageSpec(image="no/such:1"))
    assert code_of(lambda: rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=no_image))) == \
        grpc.StatusCode.NOT_FOUND
    bad_mount = _container_config("z", "true", mounts=[pb.Mount(container_path="/x")])
    assert code_of(lambda: rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=bad_mount))) \
        == grpc.StatusCode.INVALID_ARGUMENT
    # nothing half-made
    assert rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pid))).containers \
        == []


def test_pods_and_containers_survive_a_daemon_crash(daemon, bb_image):
    """kill -9 of dockyardd: the pods' namespaces stay pinned and their
    containers run (conmon holds them); after the restart the CRI state is
    whole and stop/remove work."""
    ch, rt = cri_connect(daemon)
    made = []
    try:
        a = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("crash-a", hostname="crash-a"))).pod_sandbox_id
        made.append(a)
        b = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("crash-b"))).pod_sandbox_id
        made.append(b)
        lost = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config("crash-lost"))).pod_sandbox_id
        made.append(lost)
        import json
        lost_ns = json.loads(rt.PodSandboxStatus(pb.PodSandboxStatusRequest(
            pod_sandbox_id=lost, verbose=True)).info["info"])["namespaces"]
        cid = rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=a, config=_container_config("s", "sleep", "1000"))).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        ch.close()
        daemon.kill9()
        for path in lost_ns.values():        # as a reboot would: that pod's namespaces are gone
            subprocess.run(["umount", path], check=True)
        daemon.start()
        ch, rt = cri_connect(daemon)
        ready = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
        assert {a, b} <= {p.id for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=ready)).items}
        assert rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=lost)).status.state == \
            pb.SANDBOX_NOTREADY
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=lost))
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=lost))
        st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
        assert st.state == pb.CONTAINER_RUNNING
        r = rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["hostname"], timeout=10))
        assert r.exit_code == 0 and r.stdout == b"crash-a\n"
        # the re-adopted container's exit is seen
        rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0))
        st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
        assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137
        for pid in (a, b):
            rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pid))
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pid))
        assert not {a, b} & {p.id for p in rt.ListPodSandbox(pb.ListPodSandboxRequest()).items}
    finally:
        remove_pods(rt, made)
        ch.close()


def test_container_stats_and_resource_update(cri, pods, bb_image):
    import json

    from dockyard.daemon import stats as engine_stats
    rt = cri.rt
    pid = pods(pod_config("stats"))
    cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=_container_config(
        "busy", "sh", "-c", "head -c 3000000 /dev/zero > /big; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; "
        "exec sleep 1000", labels={"k": "v"}))).container_id
    idle = rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    assert idle.attributes.id == cid and not idle.HasField("cpu")        # created: no cgroup yet
    rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s = rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
        if s.writable_layer.used_bytes.value >= 3000000 and s.cpu.usage_core_nano_seconds.value > 0:
            break
        time.sleep(0.3)
    assert s.cpu.usage_core_nano_seconds.value > 0 and s.memory.usage_bytes.value > 0
    assert s.memory.working_set_bytes.value > 0 and s.writable_layer.used_bytes.value >= 3000000
    assert dict(s.attributes.labels) == {"k": "v"} and s.attributes.metadata.name == "busy"
    again = rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    assert again.cpu.HasField("usage_nano_cores")                       # from two samples
    listed = rt.ListContainerStats(pb.ListContainerStatsRequest(
        filter=pb.ContainerStatsFilter(pod_sandbox_id=pid))).stats
    assert [x.attributes.id for x in listed] == [cid]
    assert rt.ListContainerStats(pb.ListContainerStatsRequest(
        filter=pb.ContainerStatsFilter(label_selector={"k": "other"}))).stats == []

    rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=96 << 20)))
    info = json.loads(rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True)).info["info"])
    assert info["hostConfig"]["Memory"] == 96 << 20
    dirs = engine_stats.cgroup_dirs(info["pid"])
    limit = (open(os.path.join(dirs[""], "memory.max")).read() if "memory" not in dirs
             else open(os.path.join(dirs["memory"], "memory.limit_in_bytes")).read())
    assert int(limit) == 96 << 20
    assert code_of(lambda: rt.ContainerStats(pb.ContainerStatsRequest(container_id="0" * 64))) == \
        grpc.StatusCode.NOT_FOUND

    ps = rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pid)).stats
    assert ps.attributes.id == pid and ps.attributes.metadata.name == "stats"
    assert [c.attributes.id for c in ps.linux.containers] == [cid]
    assert ps.linux.cpu.usage_core_nano_seconds.value >= s.cpu.usage_core_nano_seconds.value > 0
    assert ps.linux.memory.working_set_bytes.value > 0 and ps.linux.process.process_count.value >= 1
    assert pid in {x.attributes.id for x in rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest()).stats}
    assert rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest(
        filter=pb.PodSandboxStatsFilter(id=pid[:12]))).stats[0].attributes.id == pid
    assert code_of(lambda: rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id="0" * 64))) == \
        grpc.StatusCode.NOT_FOUND


def test_reopen_container_log(cri, pods, bb_image, tmp_path):
    """The kubelet's rotation: rename the log away, ReopenContainerLog, and
    the container's next lines land in a new file at the same path."""
    rt = cri.rt
    logs = tmp_path / "logs"
    pid = pods(pod_config("rot", log_directory=str(logs)))
    cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pid, config=_container_config(
        "ticker", "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done",
        log="t.log"))).container_id
    assert code_of(lambda: rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))) == \
        grpc.StatusCode.FAILED_PRECONDITION                                # not running yet
    rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    log = logs / "t.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "tick3" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    os.rename(log, logs / "t.log.1")
    rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))
    assert log.exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "tick" not in log.read_text():
        time.sleep(0.1)
    new, old = log.read_text().splitlines(), (logs / "t.log.1").read_text().splitlines()
    assert new and old
    last_old = int(old[-1].rsplit("tick", 1)[1])
    assert int(new[0].rsplit("tick", 1)[1]) == last_old + 1     # the new file goes on where the old one ended


def _thread_names(pid: int) -> set[str]:
    names = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.add(f.read().strip())
        except OSError:
            pass
    return names


def test_grpc_started_at_the_first_connection(tmp_path):
    """Issue 16 (RSS): the socket answers from the start, grpc (its import and
    threads) starts at the first connection; the connections that came first
    are relayed, later ones reach grpc directly, and the socket is one path."""
    d = Daemon(log_path=tmp_path / "lazy.log")
    try:
        d.start()
        assert os.path.exists(d.cri_sock)
        time.sleep(0.5)
        assert not _thread_names(d.proc.pid) & {"grpc_global_tim", "event_engine"}
        chans = [grpc.insecure_channel("unix:" + d.cri_sock) for _ in range(3)]   # at once: the first socket's
        try:
            for ch in chans:
                grpc.channel_ready_future(ch).result(timeout=10)
            for ch in chans:
                assert grpc_pb.RuntimeServiceStub(ch).Version(pb.VersionRequest()).runtime_name == "dockyard"
            deadline = time.monotonic() + 5
            while os.path.exists(d.cri_sock + ".grpc") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not os.path.exists(d.cri_sock + ".grpc") and os.path.exists(d.cri_sock)
            assert oct(os.stat(d.cri_sock).st_mode & 0o777) == oct(0o660)
            assert _thread_names(d.proc.pid) & {"grpc_global_tim", "event_engine"}
            time.sleep(1.5)      # the first socket drained and closed: a new channel reaches grpc
            ch = grpc.insecure_channel("unix:" + d.cri_sock)
            grpc.channel_ready_future(ch).result(timeout=10)
            assert grpc_pb.RuntimeServiceStub(ch).Version(pb.VersionRequest()).runtime_name == "dockyard"
            ch.close()
            for ch in chans:     # the relayed ones still work
                assert grpc_pb.RuntimeServiceStub(ch).Version(pb.VersionRequest()).runtime_name == "dockyard"
        finally:
            for ch in chans:
                ch.close()
        d.stop()
        assert not os.path.exists(d.cri_sock) and not os.path.exists(d.cri_sock + ".grpc")
    finally:
        d.stop()
        d.cleanup()
        d.remove()

"""The CRI server's pure parts: code generation, flags, error codes,
request conversion and filters."""
from __future__ import annotations

import os
from types import SimpleNamespace

import grpc
import pytest

from dockyard import dockyardd
from dockyard.cri import codegen
from dockyard.cri.proto import pb
from dockyard.cri.runtime import pod_from_config, pod_matches, pod_status
from dockyard.cri.server import socket_path, status_code
from dockyard.daemon.pods import NOTREADY, NameReserved, NoSuchPod, Pod
from dockyard.errors import Conflict, DockyardError, InvalidParameter, NoSuchImage, NotImplementedYet


def test_codegen_writes_importable_modules_atomically(tmp_path):
    out = str(tmp_path / "gen")
    assert not codegen.up_to_date(out)
    codegen.generate(out)
    assert codegen.up_to_date(out)
    assert sorted(os.listdir(out)) == ["__init__.py", "api_pb2.py", "api_pb2_grpc.py", "proto.sha256"]
    grpc_mod = open(os.path.join(out, "api_pb2_grpc.py")).read()
    assert "from . import api_pb2 as api__pb2" in grpc_mod          # importable inside the package
    stamp = os.stat(os.path.join(out, "proto.sha256")).st_mtime_ns
    codegen.generate(out)                                            # up to date: left alone
    assert os.stat(os.path.join(out, "proto.sha256")).st_mtime_ns == stamp
    with open(os.path.join(out, "proto.sha256"), "w") as f:
        f.write("stale\n")
    assert not codegen.up_to_date(out)
    codegen.generate(out)
    assert codegen.up_to_date(out)
    assert [n for n in os.listdir(tmp_path) if n != "gen"] == []    # no temp dirs left


def test_the_proto_is_upstreams_v1():
    text = open(codegen.PROTO).read()
    assert "package runtime.v1;" in text and "gogoproto" not in text
    assert pb.DESCRIPTOR.package == "runtime.v1"
    assert {"RuntimeService", "ImageService"} <= set(pb.DESCRIPTOR.services_by_name)
    # field numbers are the protocol's: a few checked against k8s.io/cri-api
    assert pb.PodSandboxConfig.DESCRIPTOR.fields_by_name["dns_config"].number == 4
    assert pb.ContainerConfig.DESCRIPTOR.fields_by_name["log_path"].number == 11


def test_cri_flags():
    p = SimpleNamespace(parse_args=dockyardd.parse_args)
    assert p.parse_args([]).cri is True
    assert p.parse_args([]).cri_socket is None      # main(): <exec-root>/cri.sock
    assert p.parse_args(["--cri=false"]).cri is False
    assert p.parse_args(["--cri"]).cri is True
    assert p.parse_args(["--cri-socket", "unix:///tmp/x.sock"]).cri_socket == "unix:///tmp/x.sock"
    with pytest.raises(SystemExit):
        p.parse_args(["--cri=maybe"])


def test_socket_path():
    assert socket_path("unix:///run/dockyard/cri.sock") == "/run/dockyard/cri.sock"
    assert socket_path("/tmp/c.sock") == "/tmp/c.sock"
    for bad in ("tcp://127.0.0.1:1", "unix://relative.sock", "relative.sock"):
        with pytest.raises(ValueError):
            socket_path(bad)


def test_status_codes_as_containerd():
    assert status_code(NoSuchPod("x")) == grpc.StatusCode.NOT_FOUND
    assert status_code(NoSuchImage("x")) == grpc.StatusCode.NOT_FOUND
    assert status_code(InvalidParameter("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_code(NameReserved("x")) == grpc.StatusCode.ALREADY_EXISTS
    assert status_code(Conflict("x")) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_code(NotImplementedYet("x")) == grpc.StatusCode.UNIMPLEMENTED
    assert status_code(DockyardError("x")) == grpc.StatusCode.UNKNOWN


def test_pod_from_config_and_back():
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="n", uid="u", namespace="ns", attempt=2), hostname="h",
        labels={"a": "b"}, annotations={"c": "d"}, log_directory="/var/log/pods/x",
        dns_config=pb.DNSConfig(servers=["1.1.1.1"], searches=["s"], options=["ndots:5"]),
        port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=8080)],
        linux=pb.LinuxPodSandboxConfig(cgroup_parent="/kubepods/x", security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER))))
    p = pod_from_config(cfg, "runc")
    assert (p.name, p.uid, p.namespace, p.attempt, p.hostname) == ("n", "u", "ns", 2, "h")
    assert p.host_network and not p.host_ipc and p.pid_mode == "container"
    assert p.dns_servers == ["1.1.1.1"] and p.dns_options == ["ndots:5"] and p.cgroup_parent == "/kubepods/x"
    assert p.port_mappings == [{"container_port": 80, "host_port": 8080}]
    assert p.reserved_name == "n_ns_u_2" and p.runtime_handler == "runc"
    assert Pod.from_record(p.to_record()) == p
    p.id, p.created_ns, p.ip = "f" * 64, 5, "10.1.0.2"
    st = pod_status(p)
    assert st.linux.namespaces.options.network == pb.NODE and st.linux.namespaces.options.pid == pb.CONTAINER
    assert st.network.ip == "10.1.0.2" and st.metadata.attempt == 2 and st.state == pb.SANDBOX_READY


def test_pod_filters():
    p = Pod(id="abc123" + "0" * 58, name="n", uid="u", namespace="ns", labels={"a": "1", "b": "2"})
    assert pod_matches(p, None) and pod_matches(p, pb.PodSandboxFilter())
    assert pod_matches(p, pb.PodSandboxFilter(id="abc"))
    assert not pod_matches(p, pb.PodSandboxFilter(id="abd"))
    assert pod_matches(p, pb.PodSandboxFilter(label_selector={"a": "1"}))
    assert not pod_matches(p, pb.PodSandboxFilter(label_selector={"a": "1", "c": "3"}))
    ready = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
    notready = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY))
    assert pod_matches(p, ready) and not pod_matches(p, notready)
    p.state = NOTREADY
    assert pod_matches(p, notready) and not pod_matches(p, ready)


# ---------------------------------------------------------------- containers

def test_container_config_to_docker_shapes(tmp_path):
    from dockyard.cri.containers import docker_shapes
    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    sc = pb.LinuxContainerSecurityContext(
        privileged=False, readonly_rootfs=True, no_new_privs=True, supplemental_groups=[10, 20],
        capabilities=pb.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["CHOWN"]),
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost, localhost_ref=str(profile)),
        masked_paths=["/proc/kcore"], readonly_paths=["/proc/sys"])
    sc.run_as_user.value = 1000
    sc.run_as_group.value = 2000
    cfg = pb.ContainerConfig(
        command=["/bin/sh"], args=["-c", "true"], working_dir="/w", tty=True, stdin=True,
        envs=[pb.KeyValue(key="A", value=b"1")],
        mounts=[pb.Mount(host_path="/h", container_path="/c", readonly=True,
                         propagation=pb.PROPAGATION_HOST_TO_CONTAINER),
                pb.Mount(host_path="/h2", container_path="/c2")],
        devices=[pb.Device(host_path="/dev/fuse", container_path="/dev/fuse", permissions="rw")],
        linux=pb.LinuxContainerConfig(security_context=sc, resources=pb.LinuxContainerResources(
            cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 << 20,
            cpuset_cpus="0", oom_score_adj=100)))
    config, hc = docker_shapes(cfg)
    assert config["Entrypoint"] == ["/bin/sh"] and config["Cmd"] == ["-c", "true"]
    assert config["Env"] == ["A=1"] and config["WorkingDir"] == "/w" and config["User"] == "1000:2000"
    assert config["Tty"] and config["OpenStdin"] and not config["StdinOnce"]
    assert hc["ReadonlyRootfs"] and hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["CHOWN"]
    assert hc["GroupAdd"] == ["10", "20"]
    assert hc["SecurityOpt"] == ["no-new-privileges", 'seccomp={"defaultAction": "SCMP_ACT_ALLOW"}']
    assert (hc["CpuPeriod"], hc["CpuQuota"], hc["CpuShares"], hc["Memory"]) == (100000, 50000, 512, 64 << 20)
    assert hc["OomScoreAdj"] == 100 and hc["CpusetCpus"] == "0"
    assert hc["MemorySwap"] == 64 << 20           # no swap, as containerd
    assert hc["Binds"] == ["/h:/c:ro,rslave", "/h2:/c2"]
    assert hc["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rw"}]
    assert hc["MaskedPaths"] == ["/proc/kcore"] and hc["ReadonlyPaths"] == ["/proc/sys"]
    # the CRI's defaults: no command (the image's), seccomp unconfined, no user
    config, hc = docker_shapes(pb.ContainerConfig())
    assert "Entrypoint" not in config and "Cmd" not in config and "User" not in config
    assert hc["SecurityOpt"] == ["seccomp=unconfined"] and hc["Binds"] is None
    rd = pb.LinuxContainerSecurityContext(seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault))
    assert docker_shapes(pb.ContainerConfig(linux=pb.LinuxContainerConfig(security_context=rd)))[1]["SecurityOpt"] == []
    with pytest.raises(InvalidParameter):
        docker_shapes(pb.ContainerConfig(mounts=[pb.Mount(container_path="/x")]))
    missing = pb.LinuxContainerSecurityContext(seccomp=pb.SecurityProfile(
        profile_type=pb.SecurityProfile.Localhost, localhost_ref=str(tmp_path / "nope.json")))
    with pytest.raises(InvalidParameter):
        docker_shapes(pb.ContainerConfig(linux=pb.LinuxContainerConfig(security_context=missing)))


def _cri_container(**cri):
    from dockyard.daemon.container import Container
    return Container(id="c" * 64, name="n", created="", image="sha256:" + "1" * 64, image_ref="bb",
                     config={}, host_config={}, namespace="k8s.io", cri=cri)


def test_join_pod_namespaces():
    from dockyard.daemon.podcontainers import join_pod_namespaces
    spec = {"hostname": "x", "linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": "/n"},
                                                      {"type": "uts"}, {"type": "pid"}, {"type": "ipc"},
                                                      {"type": "cgroup"}]}}
    spec["mounts"] = [{"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}, {"destination": "/x"}]
    join_pod_namespaces(spec, _cri_container(ns={"ipc": "/p/ipc", "uts": "/p/uts"}, pid_mode="container",
                                             shm="/p/shm"))
    assert spec.pop("mounts") == [{"destination": "/x"}, {"destination": "/dev/shm", "type": "bind",
                                                          "source": "/p/shm", "options": ["rbind", "rprivate"]}]
    assert spec["linux"]["namespaces"] == [{"type": "mount"}, {"type": "network", "path": "/n"},
                                           {"type": "uts", "path": "/p/uts"}, {"type": "pid"},
                                           {"type": "ipc", "path": "/p/ipc"}, {"type": "cgroup"}]
    assert "hostname" not in spec
    # a hostNetwork + hostIPC + hostPID pod: the host's
    spec = {"linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}]}}
    join_pod_namespaces(spec, _cri_container(ns={}, pid_mode="node"))
    assert spec["linux"]["namespaces"] == [{"type": "mount"}]


def test_container_status_and_filters():
    from dockyard.cri.containers import container_matches, container_status
    from dockyard.daemon.container import EXITED, RUNNING
    c = _cri_container(pod="p" * 64, name="web", attempt=1, labels={"a": "1"}, created_ns=5, log_path="/l/x.log",
                       image="bb")
    c.host_config["Binds"] = ["/h:/c:ro,rslave"]
    st = container_status(c)
    assert st.state == pb.CONTAINER_CREATED and st.metadata.name == "web" and st.metadata.attempt == 1
    assert st.created_at == 5 and st.started_at == 0 and st.log_path == "/l/x.log"
    assert [(m.host_path, m.container_path, m.readonly) for m in st.mounts] == [("/h", "/c", True)]
    c.state.status, c.state.started_at = RUNNING, "2026-01-02T03:04:05.5Z"
    assert container_status(c).started_at == 1767323045_500000000
    c.state.status, c.state.exit_code = EXITED, 2
    st = container_status(c)
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 2 and st.reason == "Error"
    c.state.exit_code = 0
    assert container_status(c).reason == "Completed"
    assert container_matches(c, pb.ContainerFilter(pod_sandbox_id="ppp", label_selector={"a": "1"}))
    assert not container_matches(c, pb.ContainerFilter(pod_sandbox_id="q"))
    assert not container_matches(c, pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)))
    assert container_matches(c, pb.ContainerFilter(id="ccc"))


def test_restrict_oom_score_adj():
    from dockyard.daemon.podcontainers import restrict_oom_score_adj
    assert restrict_oom_score_adj(-998, own=-500) == -500
    assert restrict_oom_score_adj(100, own=0) == 100
    assert restrict_oom_score_adj(-1000, own=0) == 0


def test_store_namespaces(tmp_path):
    """Docker's view (iteration, names, prefixes) never reaches the CRI's
    namespace; full IDs and all() do; names are unique per namespace."""
    from dockyard.daemon.container import Container
    from dockyard.daemon.lookup import ContainerStore
    from dockyard.errors import NoSuchContainer
    from dockyard.store.db import Database
    db = Database(str(tmp_path / "db"))
    store = ContainerStore(db)
    docker = Container(id="a" * 64, name="web", created="", image="", image_ref="", config={}, host_config={})
    k8s = Container(id="b" * 64, name="web", created="", image="", image_ref="", config={}, host_config={},
                    namespace="k8s.io", cri={"pod": "p"})
    store.add(docker)
    store.add(k8s)                       # the same name in another namespace
    assert list(store) == [docker] and len(store) == 1
    assert {c.id for c in store.all()} == {docker.id, k8s.id}
    assert store.in_namespace("k8s.io") == [k8s]
    assert store.get("web") is docker
    with pytest.raises(NoSuchContainer):
        store.get("b" * 64)             # the Docker API's lookup: not even by full ID
    assert store.find("b" * 64) is k8s and store.find("bbbb") is None    # the engine's, by full ID
    with pytest.raises(NoSuchContainer):
        store.get("bbbb")               # a prefix: Docker's namespace only
    with pytest.raises(NoSuchContainer):
        store.get("k8s.io/web")
    k8s2 = Container(id="c" * 64, name="web", created="", image="", image_ref="", config={}, host_config={},
                     namespace="k8s.io")
    with pytest.raises(NameReserved):
        store.add(k8s2)
    again = ContainerStore(db)          # persisted with its namespace
    assert [c.id for c in again] == [docker.id] and again.in_namespace("k8s.io")[0].cri == {"pod": "p"}
    store.remove(k8s)
    assert store.in_namespace("k8s.io") == [] and store.get("web") is docker
    db.close()


def test_cni_pod_network_adapter():
    from dockyard.daemon.pods import CniPodNetwork
    from dockyard.network.cni import DNSConfig, NetworkStatus, PortMapping
    calls = []

    class FakeCNI:
        """network/cni.py's CNI, its signatures."""
        ready = True

        def status(self):
            return NetworkStatus(True) if self.ready else NetworkStatus(False, "NetworkPluginNotReady", "no config")

        def setup(self, container_id, netns_path, ifname, args, port_mappings=(), dns=None):
            calls.append(("setup", container_id, netns_path, ifname, args, list(port_mappings), dns))
            return {"cniVersion": "1.0.0", "ips": [{"address": "fd00::5/64"},
                                                   {"address": "10.88.0.5/16", "gateway": "10.88.0.1"}]}

        def teardown(self, container_id, netns_path, ifname, args, port_mappings=(), dns=None):
            calls.append(("teardown", container_id, netns_path, ifname, args, list(port_mappings), dns))

    fake = FakeCNI()
    net = CniPodNetwork(fake)
    p = Pod(id="p" * 64, name="web", uid="u1", namespace="ns", dns_servers=["10.0.0.10"],
            port_mappings=[{"container_port": 80, "host_port": 8080},
                           {"protocol": "UDP", "container_port": 53, "host_port": 5353, "host_ip": "127.0.0.1"},
                           {"container_port": 9000}])      # no hostPort: not portmap's
    # the IPv4 address is the pod's IP (containerd's selectPodIPs), the rest additional
    assert net.ready and net.setup(p, "/run/ns/x") == ["10.88.0.5", "fd00::5"]
    net.teardown(p, "/run/ns/x")
    args = {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "ns", "K8S_POD_NAME": "web",
            "K8S_POD_INFRA_CONTAINER_ID": "p" * 64, "K8S_POD_UID": "u1"}
    pms = [PortMapping(8080, 80, "tcp", ""), PortMapping(5353, 53, "udp", "127.0.0.1")]
    dns = DNSConfig(("10.0.0.10",), (), ())
    assert calls == [("setup", "p" * 64, "/run/ns/x", "eth0", args, pms, dns),
                     ("teardown", "p" * 64, "/run/ns/x", "eth0", args, pms, dns)]
    fake.ready = False
    assert net.status() == (False, "NetworkPluginNotReady", "no config") and not net.ready


def test_resources_body():
    from dockyard.cri.containers import resources_body
    assert resources_body(pb.LinuxContainerResources()) == {}
    assert resources_body(pb.LinuxContainerResources(memory_limit_in_bytes=100, cpu_quota=5)) == \
        {"Memory": 100, "MemorySwap": 100, "CpuQuota": 5}
    assert resources_body(pb.LinuxContainerResources(memory_limit_in_bytes=100,
                                                     memory_swap_limit_in_bytes=300))["MemorySwap"] == 300


def test_cri_registry_mirrors_config(tmp_path):
    from dockyard import daemonjson
    from dockyard.cri.images import cri_mirrors
    from dockyard.cri.server import streaming_address
    from dockyard.dockyardd import _cri_registry_mirrors, daemon_config, parse_args
    assert _cri_registry_mirrors(["registry.k8s.io=http://127.0.0.1:5000,https://m.example/",
                                  "*=http://127.0.0.1:5001"]) == \
        {"registry.k8s.io": ("http://127.0.0.1:5000", "https://m.example"), "*": ("http://127.0.0.1:5001",)}
    assert _cri_registry_mirrors({"gcr.io": ["http://127.0.0.1:5000"]}) == {"gcr.io": ("http://127.0.0.1:5000",)}
    for bad in (["registry.k8s.io"], ["x=ftp://h"], ["x=http://h/path"], {"x": "http://h"}, {"x": []}):
        with pytest.raises(SystemExit):
            _cri_registry_mirrors(bad)
    conf = tmp_path / "daemon.json"
    conf.write_text('{"cri-registry-mirrors": {"registry.k8s.io": ["http://127.0.0.1:5000"]}}')
    cfg = daemon_config(parse_args(["-H", "unix:///x.sock", "--config-file", str(conf)]))
    assert cri_mirrors(cfg, "registry.k8s.io") == ("http://127.0.0.1:5000",) and cri_mirrors(cfg, "gcr.io") == ()
    with pytest.raises(daemonjson.ConfigError):
        daemonjson.parse('{"cri-registry-mirrors": ["x"]}', "daemon.json")
    (tmp_path / "empty.json").write_text("{}")
    cfg = daemon_config(parse_args(["-H", "unix:///x.sock", "--cni-bin-dir", "/a:/b", "--cni-conf-dir", "/c",
                                     "--config-file", str(tmp_path / "empty.json")]))
    assert (cfg.cni_bin_dirs, cfg.cni_conf_dir, cfg.cri_registry_mirrors) == (("/a", "/b"), "/c", {})
    assert streaming_address("") == ("127.0.0.1", 0)
    assert streaming_address("127.0.0.1:10010") == ("127.0.0.1", 10010)
    assert streaming_address("[::1]:0") == ("::1", 0)
    for bad in ("127.0.0.1:x", ":80", "h:70000"):
        with pytest.raises(ValueError):
            streaming_address(bad)


def test_run_as_group_needs_a_user():
    from dockyard.cri.containers import docker_shapes
    sc = pb.LinuxContainerSecurityContext()
    sc.run_as_group.value = 2000
    with pytest.raises(InvalidParameter, match="specified without user"):
        docker_shapes(pb.ContainerConfig(linux=pb.LinuxContainerConfig(security_context=sc)))
    sc.run_as_username = "www-data"
    assert docker_shapes(pb.ContainerConfig(linux=pb.LinuxContainerConfig(security_context=sc)))[0]["User"] == \
        "www-data:2000"


def test_pod_cgroup_path_forms():
    from dockyard.daemon.pods import cgroup_path
    from dockyard.errors import InvalidParameter
    assert cgroup_path("") == ""
    assert cgroup_path("/kubepods/burstable/podabc") == "kubepods/burstable/podabc"
    assert cgroup_path("kubepods-burstable-podabc.slice") == \
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice"
    assert cgroup_path("-.slice") == ""
    assert cgroup_path("/kubepods.slice/kubepods-besteffort.slice") == "kubepods.slice/kubepods-besteffort.slice"
    for bad in ("/kubepods/../x", "a--b.slice", "/x/./y"):
        with pytest.raises(InvalidParameter):
            cgroup_path(bad)


def test_container_cgroups_path():
    from dockyard.daemon.podcontainers import cgroups_path
    c = _cri_container(cgroup_parent="kubepods/podabc")
    assert cgroups_path(c, "dockyard") == f"/kubepods/podabc/{c.id}"
    assert cgroups_path(_cri_container(cgroup_parent=""), "dockyard") == f"/dockyard/{c.id}"


def test_pod_pid_namespace_joined_by_path():
    from dockyard.daemon.podcontainers import join_pod_namespaces
    spec = {"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}}
    join_pod_namespaces(spec, _cri_container(ns={}, pid_mode="pod", pid_ns="/p/pid"))
    assert spec["linux"]["namespaces"] == [{"type": "mount"}, {"type": "pid", "path": "/p/pid"}]
    spec = {"linux": {"namespaces": [{"type": "pid"}]}}          # no holder (no catatonit): its own
    join_pod_namespaces(spec, _cri_container(ns={}, pid_mode="pod", pid_ns=""))
    assert spec["linux"]["namespaces"] == [{"type": "pid"}]
    spec = {"linux": {"namespaces": [{"type": "pid"}]}}          # TARGET: the target's, as it runs
    join_pod_namespaces(spec, _cri_container(ns={}, pid_mode="target", pid_ns="/p/pid", pid_path="/proc/7/ns/pid"))
    assert spec["linux"]["namespaces"] == [{"type": "pid", "path": "/proc/7/ns/pid"}]


def test_cri_mounts_read_only_as_containerd():
    from dockyard.cri.containers import cri_mounts
    from dockyard.daemon.podcontainers import cri_mount_options
    from dockyard.errors import InvalidParameter
    cfg = pb.ContainerConfig(mounts=[
        pb.Mount(host_path="/h", container_path="/ro/", readonly=True),
        pb.Mount(host_path="/h", container_path="/rro", readonly=True, recursive_read_only=True),
        pb.Mount(host_path="/h", container_path="/rw", propagation=pb.PROPAGATION_BIDIRECTIONAL)])
    mounts = cri_mounts(cfg)
    assert [m["propagation"] for m in mounts] == ["PROPAGATION_PRIVATE", "PROPAGATION_PRIVATE",
                                                  "PROPAGATION_BIDIRECTIONAL"]
    spec = {"mounts": [{"destination": "/ro", "type": "bind", "source": "/h", "options": ["rbind", "rprivate", "rro"]},
                       {"destination": "/rro", "type": "bind", "source": "/h",
                        "options": ["rbind", "rprivate", "rro"]},
                       {"destination": "/rw", "type": "bind", "source": "/h", "options": ["rbind", "rshared"]}]}
    cri_mount_options(spec, mounts)
    assert [m["options"] for m in spec["mounts"]] == [["rbind", "rprivate", "ro"], ["rbind", "rprivate", "rro"],
                                                      ["rbind", "rshared"]]
    # recursive read-only where the engine could only give `ro`: refused, not weakened
    spec = {"mounts": [{"destination": "/rro", "type": "bind", "source": "/h", "options": ["rbind", "ro"]}]}
    with pytest.raises(InvalidParameter):
        cri_mount_options(spec, mounts)
    for bad in (pb.Mount(host_path="/h", container_path="/x", recursive_read_only=True),
                pb.Mount(host_path="/h", container_path="/x", readonly=True, recursive_read_only=True,
                         propagation=pb.PROPAGATION_HOST_TO_CONTAINER)):
        with pytest.raises(InvalidParameter):
            cri_mounts(pb.ContainerConfig(mounts=[bad]))


def test_container_status_reports_cri_mounts():
    from dockyard.cri.containers import container_status
    c = _cri_container(mounts=[{"host_path": "/h", "container_path": "/c", "readonly": True,
                                "recursive_read_only": False, "selinux_relabel": False,
                                "propagation": "PROPAGATION_HOST_TO_CONTAINER"}])
    [m] = container_status(c).mounts
    assert (m.host_path, m.container_path, m.readonly, m.propagation) == \
        ("/h", "/c", True, pb.PROPAGATION_HOST_TO_CONTAINER)

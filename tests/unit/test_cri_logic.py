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
    assert p.parse_args([]).cri_socket == "unix:///run/dockyard/cri.sock"
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

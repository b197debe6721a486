"""The one body type check (api/validate.py): moby's Go decoder's answers."""
import json
import os
import subprocess
import sys

import pytest

from dockyard.api import routes, server, validate  # noqa: F401  (routes registers the handlers)
from dockyard.errors import InvalidParameter

CREATE = validate.body_schema("POST", "/containers/create")


def error(body, schema=CREATE) -> str:
    with pytest.raises(InvalidParameter) as e:
        validate.check_body(body, schema)
    return e.value.message


def test_a_known_field_of_the_wrong_type_is_goes_json_error():
    assert error({"Image": "x", "Healthcheck": {"Retries": [None, None]}}) == (
        "invalid Healthcheck: json: cannot unmarshal array into Go struct field HealthConfig.Healthcheck.Retries of type int")
    assert error({"Image": 1}) == (
        "invalid Image: json: cannot unmarshal number into Go struct field CreateRequest.Image of type string")
    assert error([1]) == "invalid JSON: json: cannot unmarshal array into Go value of type CreateRequest"
    assert "number 1.5 into Go struct field HostConfig.HostConfig.Memory of type int64" in error(
        {"HostConfig": {"Memory": 1.5}})
    assert "of type int64" in error({"HostConfig": {"Memory": 1 << 64}})      # does not fit Go's int64
    assert "PortBinding.HostConfig.PortBindings.HostPort of type string" in error(
        {"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}})
    assert "Labels of type string" in error({"Labels": {"a": 1}})
    assert "of type bool" in error({"Tty": 1})


def test_what_gos_decoder_accepts_passes():
    for body in ({"Image": "x", "Cmd": "ls"},            # strslice.StrSlice: a string or a list
                 {"Image": "x", "Entrypoint": ["sh"], "Env": None, "Healthcheck": None},   # null: zero value
                 {"Image": "x", "Unknown": [1, {"a": 2}], "HostConfig": {"NotAField": 1}},  # unknown: ignored
                 {"Image": "x", "HostConfig": {"Memory": 0, "PortBindings": {"80/tcp": None},
                                               "RestartPolicy": {"Name": "always"}}},
                 None):
        validate.check_body(body, CREATE)


def test_network_connect_container_must_be_a_string():
    schema = validate.body_schema("POST", "/networks/{id}/connect")
    assert error({"Container": [None, None]}, schema) == (
        "invalid Container: json: cannot unmarshal array into Go struct field NetworkConnect.Container of type string")


def test_routes_get_their_schema_from_the_spec():
    names = {f"{f.__module__.rsplit('.', 1)[1]}.{f.__name__}" for f in server._BODY_SCHEMAS}
    assert {"containers.create", "container_ops.update", "exec.create", "exec.start", "networks.create",
            "networks.connect", "networks.disconnect", "volumes.create", "archive.commit"} <= names
    assert validate.body_schema("GET", "/images/{name:path}/json") is None


def test_the_vendored_schema_is_what_the_generator_makes(tmp_path):
    """api_schema.json is generated from the spec (scripts/gen-api-schema.py); regenerate, don't edit."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = os.environ.get("DOCKYARD_API_SPEC") or os.path.join(root, "..", "shared", "reference",
                                                                "docker-engine-api-v1.50.yaml")
    pytest.importorskip("yaml")
    if not os.path.exists(spec):
        pytest.skip("the API spec is not beside the checkout")
    out = tmp_path / "schema.json"
    subprocess.run([sys.executable, os.path.join(root, "scripts", "gen-api-schema.py"), spec, str(out)], check=True)
    with open(validate.SCHEMA_FILE) as f:
        vendored = json.load(f)
    made = json.loads(out.read_text())
    vendored.pop("source"), made.pop("source")
    assert made == vendored


def test_no_nul_byte_in_path_or_query_values():
    validate.check_params({"id": "web"}, {"ps_args": ["-ef"]})
    with pytest.raises(InvalidParameter, match="contains a NUL byte"):
        validate.check_params({}, {"ps_args": ["a\x00b"]})
    with pytest.raises(InvalidParameter, match="contains a NUL byte"):
        validate.check_params({"name": "v\x00"}, {})


def test_field_names_match_case_insensitively_and_come_out_canonical():
    """Go's encoding/json: the exact name, else a case-insensitive match, at every depth (issue 14)."""
    exec_create = validate.body_schema("POST", "/containers/{id}/exec")
    assert validate.check_body({"cmd": ["ls"], "detachKeys": "ctrl-x", "TTY": True}, exec_create) == {
        "Cmd": ["ls"], "DetachKeys": "ctrl-x", "Tty": True}
    body = validate.check_body({
        "image": "bb", "cmd": "ls", "labels": {"aB": "x", "image": "y"},
        "exposedports": {"80/tcp": {}}, "volumes": {"/Data": {}}, "healthcheck": {"test": ["NONE"]},
        "hostconfig": {"CPURealtimeRuntime": 5, "memory": 1, "restartpolicy": {"name": "always"},
                       "portbindings": {"80/tcp": [{"hostip": "127.0.0.1", "hostport": "8080"}]},
                       "logconfig": {"type": "json-file", "config": {"max-size": "1m"}},
                       "mounts": [{"type": "volume", "target": "/v", "volumeoptions": {"driverconfig": {
                           "options": {"Size": "1"}}}}],
                       "sysctls": {"net.ipv4.ip_forward": "1"}, "NotAField": 1},
        "networkingconfig": {"endpointsconfig": {"MyNet": {"aliases": ["a"], "ipamconfig": {"ipv4address": "1.2.3.4"},
                                                           "driveropts": {"Opt": "v"}}}}}, CREATE)
    assert body == {
        "Image": "bb", "Cmd": "ls", "Labels": {"aB": "x", "image": "y"},          # map keys stay as sent
        "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/Data": {}}, "Healthcheck": {"Test": ["NONE"]},
        "HostConfig": {"CpuRealtimeRuntime": 5, "Memory": 1, "RestartPolicy": {"Name": "always"},
                       "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                       "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
                       "Mounts": [{"Type": "volume", "Target": "/v", "VolumeOptions": {"DriverConfig": {
                           "Options": {"Size": "1"}}}}],
                       "Sysctls": {"net.ipv4.ip_forward": "1"}, "NotAField": 1},      # not a field: as sent
        "NetworkingConfig": {"EndpointsConfig": {"MyNet": {"Aliases": ["a"], "IPAMConfig": {"IPv4Address": "1.2.3.4"},
                                                           "DriverOpts": {"Opt": "v"}}}}}
    net = validate.body_schema("POST", "/networks/create")
    assert validate.check_body({"name": "n", "ipam": {"config": [{"subnet": "10.9.0.0/24", "auxiliaryaddresses": {
        "Host1": "10.9.0.5"}}], "options": {"K": "v"}}}, net) == {
        "Name": "n", "IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "AuxiliaryAddresses": {"Host1": "10.9.0.5"}}],
                              "Options": {"K": "v"}}}
    # Go's folding is Unicode's simple one: ſ is s, the Kelvin sign is k, ß is never ss
    assert validate.check_body({"Hoſtname": "h", "HostConfig": {"Lin\u212as": ["a:b"]}}, CREATE) == {
        "Hostname": "h", "HostConfig": {"Links": ["a:b"]}}
    assert validate.check_body({"Env": [], "HostConfig": {"VolumeDriver": "", "Binds": []}, "Hoßtname": 1},
                               CREATE)["Hoßtname"] == 1


def test_a_wrong_type_under_any_spelling_is_named_canonically():
    assert error({"Image": "x", "healthcheck": {"retries": [None]}}) == (
        "invalid Healthcheck: json: cannot unmarshal array into Go struct field HealthConfig.Healthcheck.Retries of type int")
    assert "Go struct field HostConfig.HostConfig.Memory of type int64" in error({"hostconfig": {"MEMORY": "1"}})


def test_a_field_given_twice_is_decoded_as_go_does():
    """The later spelling is decoded into what the earlier left: objects merge, null keeps a scalar."""
    assert validate.check_body({"Tty": True, "tty": False}, CREATE) == {"Tty": False}
    assert validate.check_body({"Tty": True, "tty": None}, CREATE) == {"Tty": True}
    assert validate.check_body({"Env": ["A=1"], "env": None}, CREATE) == {"Env": None}
    assert validate.check_body({"HostConfig": {"Memory": 1, "RestartPolicy": {"Name": "always"}},
                                "hostconfig": {"CpuShares": 2, "restartpolicy": {"MaximumRetryCount": 3}}},
                               CREATE) == {"HostConfig": {"Memory": 1, "CpuShares": 2, "RestartPolicy": {
                                   "Name": "always", "MaximumRetryCount": 3}}}
    assert validate.check_body({"Labels": {"a": "1"}, "labels": {"b": "2"}}, CREATE) == {"Labels": {"a": "1", "b": "2"}}


def test_old_clients_top_level_host_config_fields_are_checked_and_canonical():
    """moby up to Docker 26 read HostConfig's fields at the top level of a create body too."""
    assert validate.check_body({"Image": "x", "memory": 5, "runtime": "runc", "Cpuset": "0"}, CREATE) == {
        "Image": "x", "Memory": 5, "Runtime": "runc", "Cpuset": "0"}
    assert "CreateRequest.Memory of type int64" in error({"Image": "x", "Memory": "5"})


def test_checkpoint_create_body_is_decoded_too():
    schema = validate.body_schema("POST", "/containers/{id}/checkpoints")
    assert validate.check_body({"checkpointID": "c1", "exit": True}, schema) == {"CheckpointID": "c1", "Exit": True}

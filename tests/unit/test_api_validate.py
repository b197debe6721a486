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

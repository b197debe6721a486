"""Bad input is a 400, never a 500 (the issue's schemathesis findings, each
pinned), and a 500 never carries Python's words."""
import io
import json
import tarfile

import pytest


@pytest.mark.parametrize("method,path", [("GET", "/containers/json?filters=1e100"), ("GET", "/networks?filters=true"),
                                         ("POST", "/containers/prune?filters=7"), ("GET", "/containers/json?limit=1e3"),
                                         ("GET", "/containers/json?limit=99999999999999999999")])
def test_bad_query_shapes_are_400(daemon, method, path):
    status, body = daemon.api(method, path)
    assert status == 400, body


def test_a_field_of_the_wrong_type_at_create_is_gos_400(daemon):
    status, body = daemon.api("POST", "/containers/create", {"Image": "bb", "Healthcheck": {"Retries": [None, None]}})
    assert status == 400
    assert json.loads(body)["message"] == ("invalid Healthcheck: json: cannot unmarshal array into Go struct field "
                                           "HealthConfig.Healthcheck.Retries of type int")


@pytest.mark.parametrize("verb", ["connect", "disconnect"])
def test_network_connect_with_a_container_list_is_400(daemon, verb):
    status, body = daemon.api("POST", f"/networks/bridge/{verb}", {"Container": [None, None]})
    assert status == 400
    assert json.loads(body)["message"] == ("invalid Container: json: cannot unmarshal array into Go struct field "
                                           f"Network{verb.capitalize()}.Container of type string")


@pytest.fixture(scope="module")
def box(daemon, busybox_tar):
    if daemon.api("GET", "/images/bb/json")[0] != 200:
        daemon.docker("import", str(busybox_tar), "bb")
    daemon.docker("create", "--name", "badinput", "bb", "sleep", "60")
    yield "badinput"
    daemon.docker("rm", "-f", "badinput", check=False)


def test_put_archive_with_a_hard_link_to_a_missing_absolute_target_is_400(daemon, box):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("h")
        ti.type, ti.linkname = tarfile.LNKTYPE, "/no/such/target"
        tf.addfile(ti)
    status, body = daemon.api("PUT", f"/containers/{box}/archive?path=/tmp", buf.getvalue(),
                              headers={"Content-Type": "application/x-tar"})
    assert status == 400, body
    assert "invalid archive: hard link 'h' to '/no/such/target'" in json.loads(body)["message"]




def test_creating_a_predefined_network_is_dockerds_403(daemon):
    """moby's createNetwork refuses a predefined name (and `default`) before any
    name conflict: bridge/host/none answered 409 'already exists'."""
    for name in ("bridge", "host", "none", "default"):
        status, body = daemon.api("POST", "/networks/create", {"Name": name})
        assert (status, json.loads(body)) == (403, {"message": f"operation is not permitted on predefined {name} network "})

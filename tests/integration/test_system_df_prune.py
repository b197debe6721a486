"""system df, prunes and the swarm stubs (docker CLI, docker-py, our CLI)."""
from __future__ import annotations

import json
import time
import urllib.parse

import docker
import pytest

from conftest import unique_name


def test_df_docker_py_and_cli(daemon, bb_image):
    client = daemon.client()
    name = unique_name()
    c = client.containers.run("bb", "sh -c 'head -c 300000 /dev/zero > /big'", detach=True, name=name)
    c.wait()
    try:
        df = client.df()
        assert df["LayersSize"] > 0
        img = next(i for i in df["Images"] if "bb:latest" in (i["RepoTags"] or []))
        assert img["Containers"] >= 1 and img["SharedSize"] >= 0 and img["Size"] > 0
        mine = next(x for x in df["Containers"] if x["Id"] == c.id)
        assert mine["SizeRw"] >= 300000 and mine["SizeRootFs"] >= mine["SizeRw"] + img["Size"]
        assert mine["Names"] == ["/" + name] and mine["State"] == "exited"
        assert isinstance(df["Volumes"], list) and df["BuildCache"] == []
        # ?type= narrows (API 1.42+)
        st, body = daemon.api("GET", "/v1.50/system/df?type=container")
        assert st == 200 and set(json.loads(body)) == {"Containers"}
        out = daemon.docker("system", "df").stdout.splitlines()
        assert out[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert [l.split()[0] for l in out[1:]] == ["Images", "Containers", "Local", "Build"]
        row = daemon.docker("system", "df", "--format", "{{json .}}").stdout.splitlines()[1]
        assert json.loads(row)["Type"] == "Containers" and json.loads(row)["Reclaimable"] != "0B"
    finally:
        c.remove()


def test_ps_size_is_the_one_slow_option(daemon, bb_image):
    """`ps -s` (size=1) adds the writable layer's bytes and those plus the
    image's, as dockerd; a plain list has neither."""
    name = unique_name()
    daemon.docker("run", "--name", name, bb_image, "sh", "-c", "head -c 300000 /dev/zero > /big")
    try:
        flt = urllib.parse.quote(json.dumps({"name": [name]}))
        st, body = daemon.api("GET", f"/containers/json?all=1&size=1&filters={flt}")
        mine = json.loads(body)
        assert st == 200 and len(mine) == 1
        img = json.loads(daemon.api("GET", "/images/bb/json")[1])
        assert mine[0]["SizeRw"] >= 300000 and mine[0]["SizeRootFs"] == mine[0]["SizeRw"] + img["Size"]
        plain = json.loads(daemon.api("GET", f"/containers/json?all=1&filters={flt}")[1])
        assert "SizeRw" not in plain[0] and "SizeRootFs" not in plain[0]
        out = daemon.docker("ps", "-a", "-s", "--filter", f"name={name}", "--format", "{{.Size}}").stdout.strip()
        assert out.startswith("300kB") and "virtual" in out, out
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_prunes_reclaim_space(daemon, bb_image):
    client = daemon.client()
    keep = client.containers.run("bb", "sleep 100", detach=True, name=unique_name())
    gone = client.containers.run("bb", "sh -c 'head -c 200000 /dev/zero > /f'", detach=True,
                                 name=unique_name(), labels={"prune": "yes"})
    other = client.containers.run("bb", "true", detach=True, name=unique_name(), labels={"prune": "no"})
    gone.wait(), other.wait()
    try:
        assert client.containers.prune(filters={"until": "1h"})["ContainersDeleted"] is None  # all newer
        r = daemon.docker("container", "prune", "-f", "--filter", "until=soon", check=False)
        assert r.returncode != 0 and "invalid until filter: soon" in r.stderr
        r = client.containers.prune(filters={"label": "prune=yes", "until": "0s"})
        assert r["ContainersDeleted"] == [gone.id] and r["SpaceReclaimed"] >= 200000
        r = daemon.docker("system", "prune", "-f").stdout
        assert other.id in r and "Total reclaimed space:" in r
        assert [x.id for x in client.containers.list(all=True)] == [keep.id]   # running one stays
        evs = daemon.docker("events", "--since", "1m", "--until", "0s", "--filter", "event=prune",
                            "--format", "{{.Type}} {{.Action}}").stdout.splitlines()
        assert {"container prune", "network prune", "image prune"} <= set(evs)   # docker system prune's
        st, body = daemon.api("POST", "/containers/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")
        assert st == 400 and json.loads(body)["message"] == "invalid filter 'bogus'"
        st, body = daemon.api("POST", "/build/prune")
        assert st == 200 and json.loads(body) == {"CachesDeleted": None, "SpaceReclaimed": 0}
    finally:
        keep.remove(force=True)


def test_image_prune_filters(daemon, bb_image):
    """dangling=false prunes unused tagged images too, narrowed by label and until;
    an image a container uses stays; Docker's reply shape and 400s."""
    client = daemon.client()
    tag = unique_name()
    made = {}
    for k in ("a", "b"):
        c = client.containers.run("bb", f"sh -c 'head -c 150000 /dev/urandom > /{k}'", detach=True)
        c.wait()
        made[k] = c.commit(f"{tag}-{k}", "latest", changes=[f"LABEL pr={tag}-{k}"]).id
        c.remove()
    user = client.containers.create(f"{tag}-b", "true")           # b is in use
    try:
        r = client.images.prune(filters={"dangling": False, "label": f"pr={tag}-a", "until": "1h"})
        assert r == {"ImagesDeleted": None, "SpaceReclaimed": 0}    # made just now: not before 1h ago
        r = client.images.prune(filters={"dangling": False, "label": f"pr={tag}-a"})
        assert {"Untagged": f"{tag}-a:latest"} in r["ImagesDeleted"] and {"Deleted": made["a"]} in r["ImagesDeleted"]
        assert r["SpaceReclaimed"] >= 150000
        r = client.images.prune(filters={"dangling": False, "label": f"pr={tag}-b"})
        assert r["ImagesDeleted"] is None and client.images.get(f"{tag}-b").id == made["b"]
        st, body = daemon.api("POST", "/images/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")
        assert st == 400 and json.loads(body)["message"] == "invalid filter 'bogus'"
        st, body = daemon.api("POST", "/images/prune?filters=%7B%22until%22%3A%5B%22soon%22%5D%7D")
        assert st == 400 and "until" in json.loads(body)["message"]
    finally:
        user.remove()
        client.images.remove(f"{tag}-b")


def test_swarm_routes_answer_not_in_swarm(daemon):
    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as e:
        client.swarm.leave()
    assert e.value.status_code == 503 and "This node is not part of a swarm" in str(e.value)
    with pytest.raises(docker.errors.APIError) as e:
        client.services.list()
    assert e.value.status_code == 503 and "This node is not a swarm manager" in str(e.value)
    r = daemon.docker("node", "ls", check=False)
    assert r.returncode != 0 and "This node is not a swarm manager" in r.stderr
    assert client.info()["Swarm"]["LocalNodeState"] == "inactive"


def test_dockyard_system_df_and_prune(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "--name", name, "bb", "sh", "-c", "head -c 100000 /dev/zero > /f")
    out = daemon.dockyard("system", "df").stdout.splitlines()
    assert out[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    ours = {l.split()[0]: l for l in out[1:]}
    theirs = {l.split()[0]: l for l in daemon.docker("system", "df").stdout.splitlines()[1:]}
    assert ours["Images"].split() == theirs["Images"].split()
    assert ours["Containers"].split()[:2] == theirs["Containers"].split()[:2]
    def tables(out):       # section titles and column headers of `system df -v`
        return [l.split() for l in out.splitlines() if l.endswith(":") or l.startswith(("REPOSITORY", "CONTAINER ID",
                                                                                     "VOLUME NAME", "CACHE ID"))]
    assert tables(daemon.dockyard("system", "df", "-v").stdout) == tables(daemon.docker("system", "df", "-v").stdout)
    r = daemon.dockyard("system", "prune", "-f").stdout
    assert "Deleted Containers:" in r and "Total reclaimed space:" in r
    assert daemon.docker("ps", "-aq", "--filter", f"name={name}").stdout == ""


def test_volume_prune_events(daemon):
    client = daemon.client()
    since = int(time.time()) - 1
    vol = unique_name()
    client.volumes.create(vol)
    r = client.volumes.prune(filters={"all": "true", "label": "none-such"})
    assert not r.get("VolumesDeleted")
    r = client.volumes.prune(filters={"all": "true"})
    assert vol in r["VolumesDeleted"]
    evs = [(e["Action"], e["Actor"]["ID"]) for e in client.events(
        decode=True, since=since, until=int(time.time()) + 1, filters={"type": "volume"})]
    assert evs[0] == ("create", vol) and ("destroy", vol) in evs and evs[-1] == ("prune", "")


@pytest.mark.parametrize("method, path", [
    ("GET", "/containers/json?filters=1e100"),
    ("GET", "/networks?filters=true"),
    ("POST", "/containers/prune?filters=3"),
    ("GET", "/volumes?filters=%5B1%5D"),
    ("GET", "/images/json?filters=1"),
    ("POST", "/images/prune?filters=%5B%5D"),
    ("POST", "/volumes/prune?filters=%7B"),
    ("POST", "/networks/prune?filters=%7B%22label%22%3A%22x%22%7D"),
    ("GET", "/events?filters=%22x%22"),
    ("POST", "/build/prune?filters=1"),
])
def test_malformed_filters_are_400(daemon, method, path):
    """Every form moby's FromJSON refuses is its 400 `invalid filter`, never a 500."""
    st, body = daemon.api(method, path)
    assert st == 400 and json.loads(body)["message"] == "invalid filter"

"""The image routes over a real unix socket, driven by docker-py and (when
installed) the docker CLI, against a stand-in daemon that only has images."""
import asyncio
import json
import os
import shutil
import subprocess
import threading

import docker
import pytest

import dockyard.api.images  # noqa: F401  (registers the routes)
import dockyard.api.system  # noqa: F401  (/_ping, which the docker CLI wants first)
from dockyard.api.server import ApiServer
from dockyard.daemon.daemon import DaemonConfig
from dockyard.images.service import ImageService
from dockyard.store.db import Database
from test_images_tars import busybox_rootfs, docker_save, entry, make_tar

LAYER = make_tar([entry("hello", data=b"hi")])


class FakeEvents:
    def __init__(self):
        self.seen = []

    def emit(self, type, action, actor_id, attributes=None):
        self.seen.append((type, action, actor_id, dict(attributes or {})))


class FakeDaemon:
    def __init__(self, root):
        self.events = FakeEvents()
        self.config = DaemonConfig()
        self.images = ImageService(Database(os.path.join(root, "db.sqlite")), os.path.join(root, "image"),
                                   emit=self.events.emit)


@pytest.fixture
def api(tmp_path):
    """(daemon, socket path) with the server running in a thread."""
    daemon = FakeDaemon(str(tmp_path))
    sock = str(tmp_path / "api.sock")
    ready, loop_box = threading.Event(), {}

    async def main():
        server = ApiServer(daemon)
        await server.listen_unix(sock)
        loop_box["loop"], loop_box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await loop_box["stop"].wait()
        await server.close()

    t = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    t.start()
    assert ready.wait(5)
    yield daemon, sock
    loop_box["loop"].call_soon_threadsafe(loop_box["stop"].set)
    t.join(5)


def client(sock, version="1.50") -> docker.APIClient:
    return docker.APIClient(base_url="unix://" + sock, version=version, timeout=30)


@pytest.fixture
def rootfs(tmp_path):
    p = tmp_path / "rootfs.tar"
    p.write_bytes(busybox_rootfs())
    return str(p)


def test_import_inspect_list_tag_history_remove(api, rootfs):
    daemon, sock = api
    c = client(sock)
    out = c.import_image(src=rootfs, repository="bb", changes=['CMD ["sh"]', "ENV A=1"])
    image_id = json.loads(out.splitlines()[-1])["status"]
    assert image_id.startswith("sha256:") and daemon.images.resolve("bb").id == image_id

    info = c.inspect_image("bb")
    assert info["Id"] == image_id and info["Config"]["Cmd"] == ["sh"] and info["Comment"] == "Imported from -"
    assert [i["RepoTags"] for i in c.images()] == [["bb:latest"]]
    assert c.images(filters={"dangling": True}) == []

    assert c.tag("bb", "team/bb", "v1") is True             # 201
    assert c.inspect_image("team/bb:v1")["Id"] == image_id
    assert c.history("bb")[0]["Id"] == image_id

    assert c.remove_image("team/bb:v1") == [{"Untagged": "team/bb:v1"}]
    removed = c.remove_image("bb")
    assert removed[:2] == [{"Untagged": "bb:latest"}, {"Deleted": image_id}]
    with pytest.raises(docker.errors.ImageNotFound, match="No such image: bb:latest"):
        c.inspect_image("bb")
    assert os.listdir(daemon.images.tmp_dir) == []           # the spooled upload is gone
    assert [(t, a, i, at["name"]) for t, a, i, at in daemon.events.seen] == [
        ("image", "import", image_id, image_id),
        ("image", "tag", image_id, "team/bb:v1"),
        ("image", "untag", image_id, image_id),
        ("image", "untag", image_id, image_id),
        ("image", "delete", image_id, image_id),
    ]


def test_import_errors_are_400_before_the_upload(api, rootfs):
    _, sock = api
    c = client(sock)
    with pytest.raises(docker.errors.APIError) as e:
        c.import_image(src=rootfs, repository="Bad")
    assert e.value.status_code == 400 and "must be lowercase" in str(e.value)
    with pytest.raises(docker.errors.APIError) as e:
        c.import_image(src=rootfs, repository="bb", changes=["RUN x"])
    assert e.value.status_code == 400 and "run is not a valid change command" in str(e.value)
    with pytest.raises(docker.errors.APIError) as e:
        c.import_image(src="http://example.com/rootfs.tar", repository="bb")
    assert e.value.status_code == 501


def test_load_streams_result_and_errors(api, tmp_path):
    daemon, sock = api
    c = client(sock)
    tar = docker_save([([LAYER], {"Cmd": ["x"], "Labels": {"k": "v"}}, ["loaded:1", "loaded:2"])])
    msgs = list(c.load_image(tar))
    assert [m for m in msgs if "stream" in m] == [{"stream": "Loaded image: loaded:1\n"},
                                                  {"stream": "Loaded image: loaded:2\n"}]
    assert msgs[0]["status"] == "Loading layer" and msgs[0]["progressDetail"]["total"] > 0   # not ?quiet
    assert list(c.load_image(tar, quiet=True)) == [{"stream": "Loaded image: loaded:1\n"},
                                                   {"stream": "Loaded image: loaded:2\n"}]
    image_id = daemon.images.resolve("loaded:1").id
    assert daemon.events.seen == [("image", "load", image_id, {"k": "v", "name": image_id})] * 2   # two loads
    assert c.inspect_image("loaded:1")["Config"]["Cmd"] == ["x"]
    [err] = list(c.load_image(b"this is no archive" * 100))
    assert "invalid image archive" in err["error"] and err["errorDetail"]["message"] == err["error"]
    with pytest.raises(docker.errors.ImageLoadError):
        docker.DockerClient(base_url="unix://" + sock, version="1.50").images.load(b"garbage" * 100)


def test_pull_from_unreachable_registry_is_an_error(api, rootfs):
    _, sock = api
    c = client(sock)
    with pytest.raises(docker.errors.APIError) as e:
        c.pull("127.0.0.1:1/bb")          # nothing listens on port 1
    assert "127.0.0.1:1" in str(e.value)


def test_rmi_conflict_is_409(api, rootfs):
    daemon, sock = api
    c = client(sock)
    c.import_image(src=rootfs, repository="bb")
    image_id = daemon.images.resolve("bb").id
    daemon.images.in_use = lambda iid: [("ab" * 32, True)]
    with pytest.raises(docker.errors.APIError) as e:
        c.remove_image(image_id, force=True)
    assert e.value.status_code == 409
    assert "(cannot be forced) - image is being used by running container abababababab" in str(e.value)


def test_old_api_versions_see_none_tags_and_virtual_size(api, rootfs):
    _, sock = api
    client(sock).import_image(src=rootfs)
    [img] = client(sock, "1.41").images()
    assert img["RepoTags"] == ["<none>:<none>"] and img["VirtualSize"] == img["Size"]
    assert client(sock).images()[0]["RepoTags"] == []


def test_search_of_an_unreachable_index_and_unknown_image_404(api):
    """`docker search` of an index nobody answers for is dockerd's 500 with the
    connection error (a closed loopback port here: no outside traffic); a
    local image that does not exist is Docker's 404 'No such image: X'."""
    import socket
    _, sock = api
    c = client(sock)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]         # closed once the block ends: nothing listens there
    with pytest.raises(docker.errors.APIError) as e:
        c.search(f"127.0.0.1:{port}/busybox")
    assert e.value.status_code == 500 and f"127.0.0.1:{port}/v1/search" in str(e.value)
    for call in (lambda: c.inspect_image("nope:1"), lambda: c.history("nope"), lambda: c.get_image("nope:2")):
        with pytest.raises(docker.errors.ImageNotFound) as e:
            r = call()
            if hasattr(r, "__next__"):
                next(r)
        assert e.value.status_code == 404 and "No such image: nope:" in str(e.value)


def test_bad_filters_are_400(api):
    _, sock = api
    with pytest.raises(docker.errors.APIError) as e:
        client(sock).images(filters={"nope": "x"})
    assert e.value.status_code == 400 and "invalid filter 'nope'" in str(e.value)


@pytest.mark.skipif(not shutil.which("docker"), reason="docker CLI not installed")
def test_docker_cli(api, rootfs, tmp_path):
    _, sock = api
    env = {**os.environ, "DOCKER_HOST": "unix://" + sock, "DOCKER_CONFIG": str(tmp_path / "cfg")}

    def docker_cli(*args, ok=True):
        p = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=60)
        assert (p.returncode == 0) == ok, p.stderr
        return p.stdout + p.stderr

    image_id = docker_cli("import", "-c", "CMD [\"sh\"]", "-m", "hello", rootfs, "bb").strip()
    assert image_id.startswith("sha256:")
    assert docker_cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").split() == \
        ["bb:latest", image_id[7:19]]
    assert docker_cli("image", "inspect", "-f", "{{.Comment}} {{json .Config.Cmd}}", "bb").strip() == \
        'hello ["sh"]'
    save = tmp_path / "save.tar"
    save.write_bytes(docker_save([([LAYER], {}, ["cli:1"])]))
    assert "Loaded image: cli:1" in docker_cli("load", "-i", str(save))
    docker_cli("tag", "bb", "bb:two")
    assert docker_cli("rmi", "bb:two").strip() == "Untagged: bb:two"
    assert "No such image: nope:latest" in docker_cli("rmi", "nope", ok=False)
    out = docker_cli("rmi", "bb")
    assert out.startswith("Untagged: bb:latest\nDeleted: " + image_id)

"""Per-registry mirrors for CRI pulls (containerd's registry.mirrors):
dockyardd --cri-registry-mirror HOST=URL[,URL...] (daemon.json
"cri-registry-mirrors"), so that critest's registry.k8s.io and gcr.io
images come from a registry on loopback. The endpoints are tried in order
(a dead one is skipped), the image keeps the name it was asked by, and the
Docker API's pulls are not affected."""
from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest
from conftest import running_daemon
from registry_util import LocalRegistry, free_port

from dockyard.cri.proto import grpc_pb, pb


@pytest.fixture(scope="module")
def registry():
    r = LocalRegistry()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory, registry):
    dead = f"http://127.0.0.1:{free_port()}"          # nothing listens: the next endpoint is tried
    yield from running_daemon(request, tmp_path_factory, label="dockyardd-mirrors", extra_args=(
        "--cri-registry-mirror", f"registry.k8s.io={dead},http://{registry.host}",
        "--cri-registry-mirror", f"*=http://{registry.host}"))


@pytest.fixture
def img(daemon):
    ch = grpc.insecure_channel("unix:" + daemon.cri_sock)
    grpc.channel_ready_future(ch).result(timeout=10)
    try:
        yield SimpleNamespace(img=grpc_pb.ImageServiceStub(ch)).img
    finally:
        ch.close()


def serve(daemon, bb_image, registry, path: str) -> None:
    """bb, pushed to the loopback registry as `path` (repository:tag)."""
    ref = f"{registry.host}/{path}"
    daemon.docker("tag", bb_image, ref)
    daemon.docker("push", ref)
    daemon.docker("rmi", ref)


def test_pulls_come_from_the_mirror_under_their_own_name(daemon, img, bb_image, registry):
    serve(daemon, bb_image, registry, "pause:3.10")
    serve(daemon, bb_image, registry, "cri-tools/test-image-tags:1")
    for name in ("registry.k8s.io/pause:3.10", "gcr.io/cri-tools/test-image-tags:1"):
        image_id = img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=name))).image_ref
        st = img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=name))).image
        assert st.id == image_id and name in st.repo_tags
        # nothing named after the mirror
        assert not any(t.startswith(registry.host) for t in st.repo_tags)
        img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=name)))
    # the mirror has no such image, and the registry itself is not reachable here: the pull fails
    with pytest.raises(grpc.RpcError):
        img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="registry.k8s.io/no-such-image:1")), timeout=120)


def test_docker_pulls_do_not_use_the_cri_mirrors(daemon, bb_image, registry):
    serve(daemon, bb_image, registry, "cri-only:1")
    r = daemon.docker("pull", "gcr.io/cri-only:1", check=False, timeout=120)
    assert r.returncode != 0
    assert daemon.api("GET", "/images/gcr.io/cri-only:1/json")[0] == 404

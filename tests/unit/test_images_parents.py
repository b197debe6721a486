"""Images with parents, as the classic builder leaves them (a chain of step
images, only the last tagged): `images` hides the untagged intermediates
unless all=1, rmi of the child prunes the parents nothing else holds, a
parent with children cannot be deleted, prune takes chains; and the image
config shown in moby 28's shape for each API version."""
import pytest

from dockyard.errors import Conflict
from dockyard.images.views import config_for_api
from test_images_service import import_bb, service


@pytest.fixture
def chain(tmp_path):
    """base (tagged bb) <- mid (untagged) <- top (tagged app)."""
    svc = service(tmp_path)
    base = import_bb(svc, tmp_path, "bb", ["CMD base"])
    mid = import_bb(svc, tmp_path, None, ["CMD mid"])
    top = import_bb(svc, tmp_path, "app", ["CMD top"])
    svc.dist.set_parent(mid, base)
    svc.dist.set_parent(top, mid)
    return svc, base, mid, top


def ids(svc, **kw):
    return {i["Id"] for i in svc.list(**kw)}


def test_intermediates_are_listed_with_all_only(chain):
    svc, base, mid, top = chain
    assert ids(svc) == {base, top}
    assert ids(svc, all=True) == {base, mid, top}
    by_id = {i["Id"]: i for i in svc.list(all=True)}
    assert by_id[top]["ParentId"] == mid and by_id[mid]["ParentId"] == base and by_id[base]["ParentId"] == ""
    assert ids(svc, filters={"dangling": ["true"]}) == set()          # mid has a child: not dangling
    assert ids(svc, all=True, filters={"dangling": ["false"]}) == {base, top}
    assert svc.inspect("app")["Parent"] == mid


def test_a_parent_with_children_cannot_be_deleted(chain):
    svc, base, mid, top = chain
    for force in (False, True):
        with pytest.raises(Conflict, match=rf"conflict: unable to delete {mid[7:19]} \(cannot be forced\) - "
                                           "image has dependent child images"):
            svc.remove(mid, force=force)
    # a tagged parent is untagged by name and stays, hidden, for its child
    assert svc.remove("bb") == [{"Untagged": "bb:latest"}]
    assert ids(svc) == {top} and ids(svc, all=True) == {base, mid, top}


def test_removing_the_child_prunes_untagged_parents(chain):
    svc, base, mid, top = chain
    seen = []
    svc.emit = lambda *a: seen.append(a[:3])
    records = svc.remove("app")
    assert records[:3] == [{"Untagged": "app:latest"}, {"Deleted": top}, {"Deleted": mid}]
    assert ids(svc, all=True) == {base}                  # tagged: it stays
    assert ("image", "delete", top) in seen and ("image", "delete", mid) in seen


def test_removing_the_child_with_noprune_keeps_the_parent(chain):
    svc, base, mid, top = chain
    assert svc.remove("app", noprune=True) == [{"Untagged": "app:latest"}, {"Deleted": top}]
    assert ids(svc) == {base, mid}                       # mid is dangling now, listed again


def test_pruning_stops_at_a_parent_a_container_uses(chain):
    svc, base, mid, top = chain
    svc.in_use = lambda iid: [("c" * 64, False)] if iid == mid else []
    assert svc.remove("app") == [{"Untagged": "app:latest"}, {"Deleted": top}]
    assert ids(svc, all=True) == {base, mid}


def test_image_prune_takes_dangling_chains(tmp_path):
    svc = service(tmp_path)
    base = import_bb(svc, tmp_path, "bb", ["CMD base"])
    a = import_bb(svc, tmp_path, None, ["CMD a"])
    b = import_bb(svc, tmp_path, None, ["CMD b"])
    kept = import_bb(svc, tmp_path, None, ["CMD kept"])
    tagged = import_bb(svc, tmp_path, "t", ["CMD t"])
    svc.dist.set_parent(a, base)
    svc.dist.set_parent(b, a)
    svc.dist.set_parent(kept, base)
    svc.dist.set_parent(tagged, kept)                    # kept: an intermediate of a tagged image
    report = svc.prune()
    assert {r["Deleted"] for r in report["ImagesDeleted"] if r.get("Deleted") in (a, b, kept)} == {a, b}
    assert ids(svc, all=True) == {base, kept, tagged}


CFG = {"Cmd": ["sh"], "Env": ["PATH=/bin"], "ExposedPorts": {"80/tcp": {}}, "User": "1000"}


def test_config_shapes_per_api_version():
    legacy = config_for_api(CFG, (1, 45))
    assert list(legacy) == ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                            "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes",
                            "WorkingDir", "Entrypoint", "OnBuild", "Labels"]
    assert legacy["Cmd"] == ["sh"] and legacy["Volumes"] is None and legacy["Image"] == "" and not legacy["Tty"]
    assert len(config_for_api({}, (1, 41))) == 17              # dockerd's 17 always-present fields
    assert config_for_api({"Healthcheck": {"Test": ["NONE"]}}, (1, 41))["Healthcheck"] == {"Test": ["NONE"]}
    now = config_for_api(CFG, (1, 50))
    assert now == {"User": "1000", "ExposedPorts": {"80/tcp": {}}, "Env": ["PATH=/bin"], "Entrypoint": None,
                   "Cmd": ["sh"], "Volumes": None, "WorkingDir": "", "Labels": None, "OnBuild": None}
    assert list(config_for_api({"Shell": ["/bin/bash", "-c"], "StopSignal": "SIGINT"}, (1, 50)))[-4:] == \
        ["Labels", "StopSignal", "OnBuild", "Shell"]


def test_inspect_shows_only_the_image_config_fields(tmp_path):
    svc = service(tmp_path)
    image_id = import_bb(svc, tmp_path, "full", ['ENTRYPOINT ["/bin/sh"]', "ENV A=1", "WORKDIR /w", "USER 7",
                                                 "EXPOSE 80", "VOLUME /v", "LABEL l=1", "STOPSIGNAL SIGINT",
                                                 "ONBUILD RUN true",
                                                 "HEALTHCHECK CMD true"])
    cfg = svc.inspect(image_id)["Config"]
    assert set(cfg) >= {"User", "ExposedPorts", "Env", "Entrypoint", "Volumes", "WorkingDir", "Labels",
                        "StopSignal", "OnBuild", "Healthcheck"}


def test_prune_all_untags_a_parent_and_keeps_it_for_its_children(chain):
    """moby's ImagesPrune(dangling=false): a tagged image with children loses
    its references, and stays (an intermediate) while a child needs it."""
    svc, base, mid, top = chain
    svc.in_use = lambda iid: [("c" * 64, True)] if iid == top else []      # top runs: it stays
    report = svc.prune({"dangling": ["false"]})
    assert {"Untagged": "bb:latest"} in report["ImagesDeleted"]
    assert not any(r.get("Deleted") in (base, mid, top) for r in report["ImagesDeleted"])
    assert ids(svc, all=True) == {base, mid, top} and ids(svc) == {top}

"""ImageService: import, load, resolve, tag, remove, layer sharing, filters."""
import hashlib
import json
import os
import threading

import pytest

from dockyard.errors import Conflict, InvalidParameter, NoSuchImage
from dockyard.images.service import ImageService
from dockyard.store.db import Database
from test_images_tars import busybox_rootfs, docker_save, entry, make_tar, oci_layout, sha256

LAYER_A = make_tar([entry("a/", "dir"), entry("a/file", data=b"A" * 100)])
LAYER_B = make_tar([entry("b", data=b"B" * 50), entry("a/.wh.file")])
LAYER_C = make_tar([entry("c", data=b"C" * 10)])


@pytest.fixture
def root(tmp_path):
    return tmp_path


def service(root) -> ImageService:
    return ImageService(Database(str(root / "db.sqlite")), str(root / "image"))


@pytest.fixture
def svc(root):
    return service(root)


def write(root, name, data) -> str:
    p = root / name
    p.write_bytes(data)
    return str(p)


def layer_dirs(svc) -> list[str]:
    return sorted(os.listdir(svc.layers.dir))


def import_bb(svc, root, repo="bb", changes=(), data=None):
    return svc.import_rootfs(write(root, "rootfs.tar", data or busybox_rootfs()), repo, list(changes), "msg")


# ---------------------------------------------------------------- import

def test_import_with_changes(svc, root):
    image_id = import_bb(svc, root, "bb", ['CMD ["sh"]', "ENV PATH=/bin", "WORKDIR /tmp",
                                           "ENTRYPOINT [\"/bin/busybox\"]", "LABEL k=v", "EXPOSE 80"])
    row = svc.store.get(image_id)
    assert image_id == "sha256:" + hashlib.sha256(row.config).hexdigest()     # id = config digest
    cfg = svc.config(image_id)
    assert cfg["Cmd"] == ["sh"] and cfg["Entrypoint"] == ["/bin/busybox"]
    assert cfg["Env"] == ["PATH=/bin"] and cfg["WorkingDir"] == "/tmp" and cfg["User"] == ""
    assert cfg["Labels"] == {"k": "v"} and cfg["ExposedPorts"] == {"80/tcp": {}} and cfg["Volumes"] is None

    doc = json.loads(row.config)
    assert (doc["os"], doc["architecture"], doc["comment"]) == ("linux", "amd64", "msg")
    assert doc["rootfs"] == {"type": "layers", "diff_ids": [sha256(busybox_rootfs())]}

    lowers = svc.lower_dirs(image_id)
    assert len(lowers) == 1 and os.access(os.path.join(lowers[0], "bin", "busybox"), os.X_OK)

    info = svc.inspect("bb")
    assert info["Id"] == image_id and info["RepoTags"] == ["bb:latest"] and info["RepoDigests"] == []
    assert info["Config"]["Cmd"] == ["sh"] and "Volumes" not in info["Config"]
    assert info["RootFS"] == {"Type": "layers", "Layers": doc["rootfs"]["diff_ids"]}
    assert info["GraphDriver"] == {"Name": "overlay2", "Data": {"UpperDir": lowers[0]}}
    assert info["Created"] == doc["created"] and info["Created"].endswith("Z")
    assert info["Size"] == os.path.getsize("/bin/busybox") + len("root:x:0:0:root:/root:/bin/sh\n") + len("busybox")
    assert info["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    for key in ("Parent", "Comment", "DockerVersion", "Author", "Architecture", "Os"):
        assert key in info

    [summary] = svc.list()
    assert summary == {"Containers": -1, "Created": summary["Created"], "Id": image_id,
                       "Labels": {"k": "v"}, "ParentId": "", "RepoDigests": [],
                       "RepoTags": ["bb:latest"], "SharedSize": -1, "Size": info["Size"]}
    assert isinstance(summary["Created"], int)


def test_import_without_repo_is_dangling(svc, root):
    image_id = import_bb(svc, root, None)
    assert svc.inspect(image_id)["RepoTags"] == []
    assert svc.inspect(image_id)["Metadata"]["LastTagTime"] == "0001-01-01T00:00:00Z"
    assert [i["Id"] for i in svc.list(filters={"dangling": ["true"]})] == [image_id]
    assert svc.list(filters={"dangling": {"false": True}}) == []


def test_import_tag_forms(svc, root):
    import_bb(svc, root, "localhost:5000/team/app:v2")
    assert svc.inspect("localhost:5000/team/app:v2")["RepoTags"] == ["localhost:5000/team/app:v2"]


@pytest.mark.parametrize("repo, changes", [("Bad", []), ("bb", ["RUN x"]), ("bb", ["EXPOSE nope"])])
def test_import_rejects_bad_input_before_storing_anything(svc, root, repo, changes):
    with pytest.raises(InvalidParameter):
        import_bb(svc, root, repo, changes)
    assert layer_dirs(svc) == [] and svc.list() == []


def test_import_of_a_broken_tar_leaves_nothing(svc, root):
    with pytest.raises(InvalidParameter):
        import_bb(svc, root, "bb", data=busybox_rootfs()[:300_000] + b"\x00garbage" * 10)
    assert layer_dirs(svc) == [] and svc.list() == []


def test_same_rootfs_twice_shares_one_layer(svc, root):
    a = import_bb(svc, root, "a", ["CMD a"])
    b = import_bb(svc, root, "b", ["CMD b"])
    assert a != b and svc.lower_dirs(a) == svc.lower_dirs(b)
    assert len(layer_dirs(svc)) == 1
    svc.remove("a")
    assert len(layer_dirs(svc)) == 1 and os.path.isdir(svc.lower_dirs(b)[0])
    svc.remove("b")
    assert layer_dirs(svc) == []


def test_concurrent_imports_of_the_same_layer(svc, root):
    path = write(root, "rootfs.tar", busybox_rootfs())
    ids, errors = [], []

    def run(i):
        try:
            ids.append(svc.import_rootfs(path, f"c{i}", [f"CMD {i}"], ""))
        except Exception as e:      # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(ids)) == 4
    assert len(layer_dirs(svc)) == 1


# ---------------------------------------------------------------- resolve

def test_resolve_forms(svc, root):
    image_id = import_bb(svc, root, "bb")
    hexid = image_id[7:]
    for ref in (image_id, hexid, hexid[:12], hexid[:1], "sha256:" + hexid[:5], "bb", "bb:latest",
                "library/bb", "docker.io/library/bb:latest", "index.docker.io/library/bb"):
        assert svc.resolve(ref).id == image_id, ref
    with pytest.raises(NoSuchImage, match="No such image: nope:latest"):
        svc.resolve("nope")
    with pytest.raises(NoSuchImage):
        svc.resolve("bb:other")
    with pytest.raises(NoSuchImage):
        svc.resolve("f" * 64 if not hexid.startswith("f") else "e" * 64)
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        svc.resolve("Bad Name")


def test_ambiguous_prefix_is_no_such_image(svc, root):
    ids = [import_bb(svc, root, None, [f"CMD {i}"]) for i in range(40)]
    first = {i[7] for i in ids}
    shared = next(c for c in first if sum(i[7] == c for i in ids) > 1)
    with pytest.raises(NoSuchImage):
        svc.resolve(shared)


def test_tag_wins_over_id_prefix(svc, root):
    a = import_bb(svc, root, None, ["CMD a"])
    b = import_bb(svc, root, None, ["CMD b"])
    svc.tag(b, a[7:11])           # a tag that looks like a's id prefix
    assert svc.resolve(a[7:11]).id == b
    assert svc.resolve(a[7:13]).id == a


# ---------------------------------------------------------------- tag

def test_tag_and_retag(svc, root):
    a = import_bb(svc, root, "bb", ["CMD a"])
    b = import_bb(svc, root, None, ["CMD b"])
    svc.tag("bb", "reg.example.com:5000/x/y", "1.0")
    svc.tag(a, "other")
    assert svc.inspect(a)["RepoTags"] == ["bb:latest", "other:latest", "reg.example.com:5000/x/y:1.0"]
    svc.tag(b, "bb")                       # moves the tag; a keeps its others
    assert svc.resolve("bb").id == b
    assert "bb:latest" not in svc.inspect(a)["RepoTags"]


@pytest.mark.parametrize("repo, tag, message", [
    ("", None, "repository name must have at least one component"),
    ("Bad", None, "must be lowercase"),
    ("ok", "bad tag", "invalid tag format"),
    ("sha256", "x", "refusing to create an ambiguous tag using digest algorithm as name"),
])
def test_bad_tags(svc, root, repo, tag, message):
    import_bb(svc, root, "bb")
    with pytest.raises(InvalidParameter, match=message):
        svc.tag("bb", repo, tag)


def test_tag_missing_image(svc):
    with pytest.raises(NoSuchImage):
        svc.tag("nope", "x", None)


# ---------------------------------------------------------------- remove

def test_remove_by_name_untags_until_the_last_tag(svc, root):
    image_id = import_bb(svc, root, "bb")
    svc.tag("bb", "bb2")
    assert svc.remove("bb2") == [{"Untagged": "bb2:latest"}]
    chain = svc.store.chain_ids(image_id)[0]
    assert svc.remove("bb") == [{"Untagged": "bb:latest"}, {"Deleted": image_id}, {"Deleted": chain}]
    assert svc.list() == [] and layer_dirs(svc) == []
    with pytest.raises(NoSuchImage):
        svc.remove("bb")


def test_remove_lists_freed_layers_top_down(svc, root):
    from dockyard.images.layers import chain_ids
    svc.load(write(root, "s.tar", docker_save([([LAYER_A, LAYER_B, LAYER_C], {}, ["three:1"])])))
    image_id = svc.resolve("three:1").id
    chains = chain_ids([sha256(l) for l in (LAYER_A, LAYER_B, LAYER_C)])
    assert svc.remove("three:1") == [{"Untagged": "three:1"}, {"Deleted": image_id}] + \
        [{"Deleted": c} for c in reversed(chains)]
    assert layer_dirs(svc) == []


def test_remove_by_id_with_several_tags_needs_force(svc, root):
    image_id = import_bb(svc, root, "bb")
    svc.tag("bb", "other")
    with pytest.raises(Conflict) as e:
        svc.remove(image_id[7:19])
    assert e.value.message == (f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                               "image is referenced in multiple repositories")
    out = svc.remove(image_id[7:19], force=True)
    assert out[:3] == [{"Untagged": "bb:latest"}, {"Untagged": "other:latest"}, {"Deleted": image_id}]


def test_remove_by_id_with_one_tag(svc, root):
    image_id = import_bb(svc, root, "bb")
    assert svc.remove(image_id)[:2] == [{"Untagged": "bb:latest"}, {"Deleted": image_id}]


@pytest.mark.parametrize("hook", ["ids", "pairs"])
def test_remove_conflicts_with_containers(svc, root, hook):
    image_id = import_bb(svc, root, "bb")
    cid = "c0ffee" * 10 + "abcd"
    running = set()
    if hook == "ids":       # in_use gives ids, is_running tells their state
        svc.in_use = lambda iid: [cid] if iid == image_id else []
        svc.is_running = lambda c: c in running
    else:                   # in_use gives (id, running) pairs
        svc.in_use = lambda iid: [(cid, cid in running)] if iid == image_id else []
    short = image_id[7:19]

    with pytest.raises(Conflict) as e:
        svc.remove("bb")
    assert e.value.message == (f'conflict: unable to remove repository reference "bb" (must force) - '
                               f"container {cid[:12]} is using its referenced image {short}")
    with pytest.raises(Conflict) as e:
        svc.remove(image_id)
    assert e.value.message == (f"conflict: unable to delete {short} (must be forced) - "
                               f"image is being used by stopped container {cid[:12]}")
    running.add(cid)
    with pytest.raises(Conflict) as e:
        svc.remove(image_id, force=True)
    assert e.value.message == (f"conflict: unable to delete {short} (cannot be forced) - "
                               f"image is being used by running container {cid[:12]}")
    # forced by name while running: only the tag goes, the image stays (dangling)
    assert svc.remove("bb", force=True) == [{"Untagged": "bb:latest"}]
    assert svc.resolve(image_id).id == image_id
    running.clear()
    assert {"Deleted": image_id} in svc.remove(image_id, force=True)


def test_remove_by_a_tag_that_is_also_an_id_prefix(svc, root):
    """A name that is also a prefix of the image's id (1 in 256 for `bb`, which
    made the test above flaky) is taken as the name, as resolve() takes it: only
    that tag goes, with a removal by name's conflicts (moby's ImageDelete would
    treat it as an id: "referenced in multiple repositories", "must be forced")."""
    image_id = import_bb(svc, root, "bb")
    name, short, cid = image_id[7:10], image_id[7:19], "c0ffee" * 10 + "abcd"   # never "bb" itself
    svc.tag("bb", name)
    svc.in_use = lambda iid: [(cid, False)] if iid == image_id else []
    assert svc.remove(name) == [{"Untagged": f"{name}:latest"}]
    svc.tag("bb", name)
    assert svc.remove("bb") == [{"Untagged": "bb:latest"}]
    with pytest.raises(Conflict) as e:                 # its last tag, a stopped container uses it
        svc.remove(name)
    assert e.value.message == (f'conflict: unable to remove repository reference "{name}" (must force) - '
                               f"container {cid[:12]} is using its referenced image {short}")
    assert svc.remove(name, force=True) == [{"Untagged": f"{name}:latest"}, {"Deleted": image_id}]


def test_force_removed_image_stays_for_its_stopped_containers(svc, root):
    """As in Docker, `rmi -f` past a stopped container deletes the image for
    users, while the container keeps its config and layers and can start."""
    image_id = import_bb(svc, root, "bb", ["CMD x"])
    users = ["c" * 64]
    svc.in_use = lambda iid: list(users) if iid == image_id else []
    assert svc.remove("bb", force=True) == [{"Untagged": "bb:latest"}, {"Deleted": image_id}]
    with pytest.raises(NoSuchImage):
        svc.resolve(image_id)
    assert svc.list() == []
    assert svc.config(image_id)["Cmd"] == ["/bin/sh", "-c", "x"]
    assert os.path.isdir(svc.lower_dirs(image_id)[0])

    users.clear()                       # the container is gone
    svc.collect_garbage()
    assert layer_dirs(svc) == []
    with pytest.raises(NoSuchImage):
        svc.config(image_id)


def test_loading_a_removed_image_brings_it_back(svc, root):
    path = write(root, "s.tar", docker_save([([LAYER_A], {}, ["back:1"])]))
    svc.load(path)
    image_id = svc.resolve("back:1").id
    svc.in_use = lambda iid: ["c" * 64]
    svc.remove(image_id, force=True)
    assert svc.load(path) == ["Loaded image: back:1"]
    assert svc.resolve("back:1").id == image_id and len(svc.list()) == 1


# ---------------------------------------------------------------- load

@pytest.mark.parametrize("layout", ["legacy", "blobs"])
def test_load_docker_save(svc, root, layout):
    tar = docker_save([([LAYER_A, LAYER_B], {"Cmd": ["sh"]}, ["one:latest", "reg.io:5000/two:v1"]),
                       ([LAYER_A, LAYER_C], {}, [])], layout=layout)
    lines = svc.load(write(root, "save.tar", tar))
    images = svc.list()
    untagged = next(i for i in images if not i["RepoTags"])
    assert lines == ["Loaded image: one:latest", "Loaded image: reg.io:5000/two:v1",
                     f"Loaded image ID: {untagged['Id']}"]
    one = svc.inspect("one")
    assert one["RepoTags"] == ["one:latest", "reg.io:5000/two:v1"]
    assert svc.config(one["Id"])["Cmd"] == ["sh"]
    lowers = svc.lower_dirs(one["Id"])
    assert len(lowers) == 2 and "LowerDir" in one["GraphDriver"]["Data"]
    assert os.listdir(lowers[1]) == ["a"]                     # base layer last
    assert os.lstat(os.path.join(lowers[0], "a", "file")).st_rdev == os.makedev(0, 0)   # whiteout
    assert len(layer_dirs(svc)) == 3                          # A shared by both images
    assert svc.lower_dirs(untagged["Id"])[1] == lowers[1]


def test_save_writes_dockerd_25_layout(svc, root, tmp_path_factory):
    """What dockerd 25+ writes and loads: an OCI layout (oci-layout, index.json with
    containerd's name annotations, blobs/sha256/<hex> named by their content's
    digest) plus manifest.json and repositories over the same blobs; layers are the
    diff-id tars, so a second store loads the same image ids."""
    import io
    import tarfile
    from dockyard.images import save
    tar = docker_save([([LAYER_A, LAYER_B], {"Cmd": ["sh"]}, ["one:latest"]),
                       ([LAYER_A, LAYER_C], {}, ["reg.io:5000/two:v1"])], layout="legacy")
    svc.load(write(root, "in.tar", tar))
    ids = {r: svc.resolve(r).id for r in ("one:latest", "reg.io:5000/two:v1")}
    out = io.BytesIO()
    save.write(svc.layers, save.plan(svc, ["one", "reg.io:5000/two:v1"]), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
        names = tf.getnames()
    blobs = [n for n in files if n.startswith("blobs/sha256/")]
    assert all(n == "blobs/sha256/" + hashlib.sha256(files[n]).hexdigest() for n in blobs)
    assert len(blobs) == len(set(names) & set(blobs)) == len([n for n in names if n.startswith("blobs/sha256/")])
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["annotations"] for m in index["manifests"]] == [
        {"io.containerd.image.name": "docker.io/library/one:latest", "org.opencontainers.image.ref.name": "latest"},
        {"io.containerd.image.name": "reg.io:5000/two:v1", "org.opencontainers.image.ref.name": "v1"}]
    for desc, (ref, image_id) in zip(index["manifests"], ids.items()):
        blob = files["blobs/sha256/" + desc["digest"][7:]]
        assert len(blob) == desc["size"] and desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        m = json.loads(blob)
        assert m["config"]["digest"] == image_id and len(files["blobs/sha256/" + image_id[7:]]) == m["config"]["size"]
        assert [l["digest"] for l in m["layers"]] == svc.resolve(ref).diff_ids
        assert all(len(files["blobs/sha256/" + l["digest"][7:]]) == l["size"] for l in m["layers"])
    assert files["blobs/sha256/" + sha256(LAYER_A)[7:]] == LAYER_A            # shared layer, stored once
    assert json.loads(files["manifest.json"]) == [
        {"Config": f"blobs/sha256/{ids['one:latest'][7:]}", "RepoTags": ["one:latest"],
         "Layers": [f"blobs/sha256/{sha256(l)[7:]}" for l in (LAYER_A, LAYER_B)]},
        {"Config": f"blobs/sha256/{ids['reg.io:5000/two:v1'][7:]}", "RepoTags": ["reg.io:5000/two:v1"],
         "Layers": [f"blobs/sha256/{sha256(l)[7:]}" for l in (LAYER_A, LAYER_C)]}]
    assert json.loads(files["repositories"]) == {"one": {"latest": sha256(LAYER_B)[7:]},
                                                 "reg.io:5000/two": {"v1": sha256(LAYER_C)[7:]}}
    other_root = tmp_path_factory.mktemp("other")
    other = service(other_root)
    assert other.load(write(other_root, "s.tar", out.getvalue())) == [
        "Loaded image: one:latest", "Loaded image: reg.io:5000/two:v1"]
    assert {r: other.resolve(r).id for r in ids} == ids


def test_load_gzip_layers_repositories_file_and_compressed_archive(svc, root):
    import gzip
    tar = docker_save([([LAYER_A], {}, ["legacy:v1"])], repositories=True, gzip_layers=True)
    assert svc.load(write(root, "save.tar.gz", gzip.compress(tar))) == ["Loaded image: legacy:v1"]
    assert os.listdir(svc.tmp_dir) == []             # the decompressed copy is gone


def test_load_twice_reuses_layers_and_reports_moved_tags(svc, root):
    path = write(root, "save.tar", docker_save([([LAYER_A], {}, ["x:1"])]))
    svc.load(path)
    chain_dir = svc.lower_dirs("x:1")[0]
    inode = os.stat(chain_dir).st_ino
    assert svc.load(path) == ["Loaded image: x:1"]
    assert os.stat(chain_dir).st_ino == inode                 # not unpacked again
    old = svc.resolve("x:1").id
    lines = svc.load(write(root, "save2.tar", docker_save([([LAYER_C], {}, ["x:1"])])))
    assert lines == [f"The image x:1 already exists, renaming the old one with ID {old} to empty string",
                     "Loaded image: x:1"]
    assert svc.inspect(old)["RepoTags"] == []


def test_load_with_wrong_diff_id_stores_nothing(svc, root):
    import tarfile, io
    good = docker_save([([LAYER_A, LAYER_B], {}, ["bad:1"])])
    # swap the second layer's content for something else, keeping the config
    src = tarfile.open(fileobj=io.BytesIO(good))
    members = []
    for m in src.getmembers():
        data = src.extractfile(m).read() if m.isreg() else None
        if m.isreg() and data == LAYER_B:
            data = LAYER_C
            m.size = len(data)
        members.append((m, data))
    with pytest.raises(InvalidParameter, match="invalid diffID for layer 1"):
        svc.load(write(root, "bad.tar", make_tar(members)))
    assert svc.list() == [] and layer_dirs(svc) == []


def test_load_rejects_layer_count_mismatch_and_garbage(svc, root):
    tar = docker_save([([LAYER_A], {}, ["m:1"])])
    import tarfile, io
    src = tarfile.open(fileobj=io.BytesIO(tar))
    members = []
    for m in src.getmembers():
        data = src.extractfile(m).read() if m.isreg() else None
        if m.name == "manifest.json":
            doc = json.loads(data)
            doc[0]["Layers"] = doc[0]["Layers"] * 2
            data = json.dumps(doc).encode()
            m.size = len(data)
        members.append((m, data))
    with pytest.raises(InvalidParameter, match="layers length mismatch"):
        svc.load(write(root, "m.tar", make_tar(members)))
    with pytest.raises(InvalidParameter):
        svc.load(write(root, "g.tar", b"garbage" * 1000))
    with pytest.raises(InvalidParameter, match="neither manifest.json"):
        svc.load(write(root, "e.tar", make_tar([entry("x", data=b"1")])))


@pytest.mark.parametrize("nested", [False, True])
def test_load_oci_layout(svc, root, nested):
    tar, config_digest = oci_layout([LAYER_A, LAYER_C], {"Env": ["X=1"]}, name="docker.io/library/oci:1",
                                    nested_index=nested)
    assert svc.load(write(root, "oci.tar", tar)) == ["Loaded image: oci:1"]
    assert svc.resolve("oci:1").id == config_digest
    assert svc.config(config_digest)["Env"] == ["X=1"]
    assert len(svc.lower_dirs("oci:1")) == 2


def test_load_oci_layout_without_name_and_without_layers(svc, root):
    tar, config_digest = oci_layout([])
    assert svc.load(write(root, "oci.tar", tar)) == [f"Loaded image ID: {config_digest}"]
    assert svc.lower_dirs(config_digest) == [svc.layers.empty_dir]
    assert os.listdir(svc.layers.empty_dir) == []


# ---------------------------------------------------------------- views

def test_history(svc, root):
    svc.load(write(root, "s.tar", docker_save([([LAYER_A, LAYER_B], {}, ["h:1"])])))
    hist = svc.history("h:1")
    image_id = svc.resolve("h:1").id
    assert [h["Id"] for h in hist] == [image_id, "<missing>"]
    assert hist[0]["Tags"] == ["h:1"] and hist[1]["Tags"] is None
    assert [h["CreatedBy"] for h in hist] == ["step 1", "step 0"]
    assert hist[0]["Size"] == 50 and hist[1]["Size"] == 100


def test_list_filters(svc, root):
    a = import_bb(svc, root, "app/web:1", ["LABEL tier=front", "LABEL team=a"])
    b = import_bb(svc, root, "app/db:1", ["LABEL tier=back"])
    c = import_bb(svc, root, None)
    ids = lambda **kw: [i["Id"] for i in svc.list(**kw)]
    assert ids() == [c, b, a]                                       # newest first
    assert ids(filters={"reference": ["app/*"]}) == [b, a]
    assert ids(filters={"reference": ["app/w*:1"]}) == [a]
    assert ids(filters={"reference": ["*"]}) == []                  # * stops at /
    assert ids(filters={"label": ["tier"]}) == [b, a]
    assert ids(filters={"label": ["tier=front", "team=a"]}) == [a]
    assert ids(filters={"before": ["app/db:1"]}) == [a]
    assert ids(filters={"since": ["app/db:1"]}) == [c]
    assert ids(filters={"dangling": ["true"]}) == [c]
    svc.tag(a, "app/web", "2")
    assert svc.list(filters={"reference": ["app/web:2"]})[0]["RepoTags"] == ["app/web:2"]
    with pytest.raises(InvalidParameter, match="invalid filter 'nope'"):
        svc.list(filters={"nope": ["x"]})
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling=maybe'"):
        svc.list(filters={"dangling": ["maybe"]})
    with pytest.raises(NoSuchImage):
        svc.list(filters={"before": ["missing"]})


def test_prune_removes_unused_dangling_images(svc, root):
    keep = import_bb(svc, root, "keep", ["CMD k"])
    used = import_bb(svc, root, None, ["CMD u"])
    gone = import_bb(svc, root, None, ["CMD g"])
    svc.in_use = lambda iid: ["c" * 64] if iid == used else []
    report = svc.prune()
    assert report["ImagesDeleted"] == [{"Deleted": gone}]
    assert report["SpaceReclaimed"] == 0        # the layer is still shared
    assert {i["Id"] for i in svc.list()} == {keep, used}
    report = svc.prune({"dangling": ["false"]})
    assert {"Untagged": "keep:latest"} in report["ImagesDeleted"]
    assert report["SpaceReclaimed"] == 0



def test_prune_until_and_label_filters(svc, root):
    import time
    one = import_bb(svc, root, None, ["LABEL x=1"])
    two = import_bb(svc, root, None, ["LABEL x=2"])
    bare = import_bb(svc, root, None, ["CMD bare"])
    assert svc.prune({"label": ["x=1"]})["ImagesDeleted"] == [{"Deleted": one}]
    assert svc.prune({"label!": ["x"]})["ImagesDeleted"] == [{"Deleted": bare}]
    assert svc.prune({"until": ["1h"]})["ImagesDeleted"] is None          # created less than an hour ago
    assert svc.list(filters={"until": ["1h"]}) == []
    gone = svc.prune({"until": [str(time.time() + 60)]})
    assert gone["ImagesDeleted"][0] == {"Deleted": two} and svc.list() == []
    assert len(gone["ImagesDeleted"]) == 2 and gone["SpaceReclaimed"] > 0   # and the last image's layer
    for bad, msg in (("soon", "invalid value for 'until' filter"),           # 400s, not 500s
                     ("1h|2h", "more than one until filter specified")):
        with pytest.raises(InvalidParameter, match=msg):
            svc.prune({"until": bad.split("|")})
    with pytest.raises(InvalidParameter, match="invalid value for 'until' filter"):
        svc.list(filters={"until": ["soon"]})


# ---------------------------------------------------------------- crash leftovers

def test_startup_sweeps_unfinished_layers(root):
    svc = service(root)
    image_id = import_bb(svc, root, "bb")
    os.makedirs(os.path.join(svc.layers.dir, ".tmp-half", "diff", "x"))
    os.makedirs(os.path.join(svc.layers.dir, "ab" * 32, "diff"))        # renamed, never recorded
    open(os.path.join(svc.tmp_dir, "upload-1.tar"), "w").close()
    svc = service(root)
    assert layer_dirs(svc) == [svc.store.chain_ids(image_id)[0][7:]]
    assert os.listdir(svc.tmp_dir) == []
    assert os.path.isdir(svc.lower_dirs("bb")[0])


def test_prune_label_not_needs_every_value_to_keep(svc, root):
    """moby's matchLabels: an image stays when *every* `label!` holds, so
    `label!=x=1` with `label!=z` prunes an image that has only x=1."""
    only_x = import_bb(svc, root, None, ["LABEL x=1"])
    both = import_bb(svc, root, None, ["LABEL x=1 z=3"])
    assert svc.prune({"label!": ["x=1", "z"]})["ImagesDeleted"] == [{"Deleted": only_x}]
    assert {i["Id"] for i in svc.list()} == {both}


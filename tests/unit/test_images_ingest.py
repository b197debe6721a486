"""ImageService.ingest (the one path of load, import, pull and commit) and the
events the service emits itself."""
import json
import os

import pytest

from dockyard.errors import Conflict, SystemError_
from dockyard.images.ingest import Prestaged, config_bytes, image_id_of
from dockyard.images.service import ImageService
from dockyard.store.db import Database
from test_images_tars import docker_save, entry, make_tar, sha256

LAYER = make_tar([entry("f", data=b"F" * 64)])


def service(tmp_path, **kw) -> ImageService:
    return ImageService(Database(str(tmp_path / "db.sqlite")), str(tmp_path / "image"), **kw)


def config(diff_ids, cmd="x") -> bytes:
    return config_bytes({"architecture": "amd64", "os": "linux", "config": {"Cmd": [cmd]},
                         "created": "2024-01-01T00:00:00Z",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}})


def stage_from_bytes(svc, layers, calls):
    def stage(todo, staged):
        calls.append(list(todo))
        for i in todo:
            path = os.path.join(svc.tmp_dir, f"l{i}.tar")
            with open(path, "wb") as f:
                f.write(layers[i])
            with open(path, "rb") as f:
                staged[i] = svc.layers.stage(f)
            os.unlink(path)
    return stage


def leftovers(svc) -> list[str]:
    return [n for n in os.listdir(svc.layers.dir) if n.startswith((".tmp-", ".trash-"))]


def test_ingest_stages_only_missing_layers_and_tags(tmp_path):
    svc = service(tmp_path)
    calls = []
    from dockyard.images.reference import parse_normalized
    done = svc.ingest(config([sha256(LAYER)]), stage_from_bytes(svc, [LAYER], calls),
                      [parse_normalized("one:1")])
    assert calls == [[0]] and svc.resolve("one:1").id == done.image_id
    again = svc.ingest(config([sha256(LAYER)], "y"), stage_from_bytes(svc, [LAYER], calls))
    assert calls == [[0], []]                     # the layer is reused
    assert again.image_id == image_id_of(config([sha256(LAYER)], "y")) and leftovers(svc) == []


def test_ingest_retries_once_when_a_reused_layer_goes_away(tmp_path):
    svc = service(tmp_path)
    first = svc.ingest(config([sha256(LAYER)]), stage_from_bytes(svc, [LAYER], []))
    calls = []
    inner = stage_from_bytes(svc, [LAYER], calls)

    def stage(todo, staged):
        if not calls:
            svc.remove(first.image_id)            # an rmi between planning and recording
        inner(todo, staged)

    done = svc.ingest(config([sha256(LAYER)], "y"), stage)
    assert calls == [[], [0]]
    assert svc.resolve(done.image_id).diff_ids == [sha256(LAYER)] and leftovers(svc) == []


def test_ingest_gives_up_after_the_second_try_and_leaves_nothing(tmp_path):
    svc = service(tmp_path)
    with pytest.raises(SystemError_, match="layer store changed during pull"):
        svc.ingest(config([sha256(LAYER)]), lambda todo, staged: None, job="pull")
    assert svc.list() == [] and leftovers(svc) == [] and os.listdir(svc.layers.dir) == []


def test_prestaged_hands_over_once_and_discards_the_rest(tmp_path):
    svc = service(tmp_path)
    with open(tmp_path / "l.tar", "wb") as f:
        f.write(LAYER)
    with open(tmp_path / "l.tar", "rb") as f:
        layer = svc.layers.stage(f)
    with Prestaged(svc.layers, {0: layer}) as source:
        svc.ingest(config([layer.diff_id]), source)
    with open(tmp_path / "l.tar", "rb") as f:
        layer = svc.layers.stage(f)
    with Prestaged(svc.layers, {0: layer}) as source:      # present already: never handed over
        svc.ingest(config([layer.diff_id], "y"), source)
    assert not os.path.exists(layer.path) and leftovers(svc) == []


def test_the_service_emits_image_events(tmp_path):
    seen = []
    users = {}
    svc = service(tmp_path, emit=lambda *ev: seen.append(ev), in_use=lambda iid: users.get(iid, []))
    tar = docker_save([([LAYER], {"Cmd": ["x"], "Labels": {"k": "v"}}, ["app:1"])])
    path = tmp_path / "save.tar"
    path.write_bytes(tar)
    svc.load(str(path))
    image_id = svc.resolve("app:1").id
    svc.tag("app:1", "app", "2")
    users[image_id] = [("c" * 64, False)]
    with pytest.raises(Conflict):                    # the constructor's in_use is asked
        svc.remove(image_id)
    users.clear()
    svc.remove("app:2")
    svc.remove("app:1")
    svc.prune()
    assert [(t, a, i, attrs) for t, a, i, attrs in seen] == [
        ("image", "load", image_id, {"k": "v", "name": image_id}),
        ("image", "tag", image_id, {"k": "v", "name": "app:2"}),
        ("image", "untag", image_id, {"k": "v", "name": image_id}),
        ("image", "untag", image_id, {"name": image_id}),
        ("image", "delete", image_id, {"name": image_id}),
        ("image", "prune", "", {"reclaimed": 0}),
    ]


def test_commit_style_config_round_trips(tmp_path):
    raw = config([sha256(LAYER)])
    assert json.loads(raw)["rootfs"]["diff_ids"] == [sha256(LAYER)] and b" " not in raw

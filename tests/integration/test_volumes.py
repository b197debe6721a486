"""Volumes and mounts through the real docker CLI (and docker-py, our CLI):
named volumes that outlive containers, anonymous volumes, copy-up, binds,
tmpfs, --volumes-from, rm -v, in-use refusal, inspect Mounts."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import urllib.parse
from collections import Counter

import pytest



def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _inspect(daemon, ref, kind="container"):
    return json.loads(daemon.docker(kind, "inspect", ref).stdout)[0]


def test_named_volume_outlives_containers(daemon, bb_image):
    vol, a, b = _name("data"), _name("w"), _name("r")
    assert daemon.docker("volume", "create", vol).stdout.strip() == vol
    try:
        daemon.docker("run", "--name", a, "-v", f"{vol}:/data", bb_image, "sh", "-c", "echo hello > /data/f")
        r = daemon.docker("run", "--name", b, "-v", f"{vol}:/data", bb_image, "cat", "/data/f")
        assert r.stdout == "hello\n"
        r = daemon.docker("volume", "rm", vol, check=False)
        assert r.returncode != 0 and "volume is in use" in r.stderr
        st, body = daemon.api("DELETE", f"/volumes/{vol}")
        assert st == 409 and "volume is in use" in json.loads(body)["message"]
        mounts = _inspect(daemon, b)["Mounts"]
        assert mounts == [{"Type": "volume", "Name": vol, "Source": mounts[0]["Source"], "Destination": "/data",
                           "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}]
        assert mounts[0]["Source"].endswith(f"/volumes/{vol}/_data")
        daemon.docker("rm", a, b)
        assert daemon.docker("volume", "rm", vol).stdout.strip() == vol
    finally:
        daemon.docker("rm", "-f", a, b, check=False)
        daemon.docker("volume", "rm", "-f", vol, check=False)
    assert vol not in daemon.docker("volume", "ls", "-q").stdout.split()


def test_volume_api_shapes_and_errors(daemon):
    vol = _name("api")
    st, body = daemon.api("POST", "/volumes/create", {"Name": vol, "Labels": {"k": "v"}})
    assert st == 201
    v = json.loads(body)
    assert v["Name"] == vol and v["Driver"] == "local" and v["Scope"] == "local" and v["Labels"] == {"k": "v"}
    assert daemon.api("POST", "/volumes/create", {"Name": vol})[0] == 201      # existing: no-op
    st, body = daemon.api("GET", '/volumes?filters={"label":["k=v"]}')
    assert [x["Name"] for x in json.loads(body)["Volumes"]] == [vol]
    st, body = daemon.api("GET", f"/volumes/{vol}x")
    assert st == 404 and json.loads(body)["message"] == f"get {vol}x: no such volume"
    st, body = daemon.api("POST", "/volumes/create", {"Name": "bad/name"})
    assert st == 400 and "includes invalid characters for a local volume name" in json.loads(body)["message"]
    st, body = daemon.api("POST", "/volumes/create", {"Name": _name("o"), "DriverOpts": {"bogus": "1"}})
    assert st == 400 and 'invalid option key: "bogus"' in json.loads(body)["message"]
    assert daemon.api("DELETE", f"/volumes/{vol}")[0] == 204
    assert daemon.api("DELETE", f"/volumes/{vol}")[0] == 404


def test_copy_up_into_new_volume(daemon, bb_image):
    vol, c = _name("cu"), _name("c")
    try:
        # /etc of the image is copied into the new empty volume, ownership and all
        r = daemon.docker("run", "--name", c, "-v", f"{vol}:/etc", bb_image, "cat", "/etc/passwd")
        assert "root:" in r.stdout
        src = _inspect(daemon, vol, "volume")["Mountpoint"]
        assert os.path.exists(os.path.join(src, "passwd"))
        # nocopy: an empty volume stays empty
        vol2 = _name("nc")
        r = daemon.docker("run", "--rm", "--mount", f"type=volume,source={vol2},target=/etc,volume-nocopy",
                          bb_image, "ls", "/etc")
        assert r.stdout == ""
        daemon.docker("volume", "rm", vol2)
    finally:
        daemon.docker("rm", "-f", c, check=False)
        daemon.docker("volume", "rm", "-f", vol, check=False)


def test_image_volume_is_anonymous_and_copied_up(daemon, bb_image):
    """An image's VOLUME gets an anonymous volume holding the image's content
    there (copy-up), removed by rm -v."""
    src, image, c = _name("iv"), _name("ivimg"), _name("ivc")
    daemon.docker("run", "--name", src, bb_image, "sh", "-c", "mkdir /seed && echo from-image > /seed/f")
    try:
        daemon.docker("commit", "--change", 'VOLUME ["/seed"]', src, image)
        r = daemon.docker("run", "--name", c, image, "sh", "-c", "cat /seed/f; echo more > /seed/g")
        assert r.stdout == "from-image\n"
        mounts = _inspect(daemon, c)["Mounts"]
        assert [(m["Type"], m["Destination"], len(m["Name"])) for m in mounts] == [("volume", "/seed", 64)]
        data = _inspect(daemon, mounts[0]["Name"], "volume")["Mountpoint"]
        assert sorted(os.listdir(data)) == ["f", "g"]
        daemon.docker("rm", "-v", c)
        assert mounts[0]["Name"] not in daemon.docker("volume", "ls", "-q").stdout.split()
    finally:
        daemon.docker("rm", "-fv", c, src, check=False)
        daemon.docker("rmi", image, check=False)


def test_anonymous_volumes_and_rm_v(daemon, bb_image):
    c = _name("anon")
    daemon.docker("create", "--name", c, "-v", "/scratch", bb_image, "true")
    mounts = _inspect(daemon, c)["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Destination"] == "/scratch" and len(mounts[0]["Name"]) == 64
    anon = mounts[0]["Name"]
    assert anon in daemon.docker("volume", "ls", "-q").stdout.split()
    labels = _inspect(daemon, anon, "volume")["Labels"]
    assert "com.docker.volume.anonymous" in labels
    daemon.docker("rm", "-v", c)
    assert anon not in daemon.docker("volume", "ls", "-q").stdout.split()
    # --rm removes its anonymous volumes too
    before = set(daemon.docker("volume", "ls", "-q").stdout.split())
    daemon.docker("run", "--rm", "-v", "/x", bb_image, "true")
    assert set(daemon.docker("volume", "ls", "-q").stdout.split()) == before


def test_volumes_from(daemon, bb_image):
    src, dst = _name("src"), _name("dst")
    try:
        daemon.docker("run", "--name", src, "-v", "/shared", bb_image, "sh", "-c", "echo hi > /shared/f")
        r = daemon.docker("run", "--name", dst, "--volumes-from", f"{src}:ro", bb_image,
                          "sh", "-c", "cat /shared/f; touch /shared/g 2>&1; true")
        assert r.stdout.startswith("hi\n") and "Read-only file system" in r.stdout
        assert _inspect(daemon, dst)["Mounts"][0]["RW"] is False
    finally:
        daemon.docker("rm", "-fv", dst, src, check=False)


def test_bind_mounts(daemon, bb_image, tmp_path):
    host = tmp_path / "x"
    host.mkdir()
    (host / "in").write_text("from host\n")
    r = daemon.docker("run", "--rm", "-v", f"{host}:/x:ro", bb_image, "touch", "/x/f", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = daemon.docker("run", "--rm", "-v", f"{host}:/x", bb_image, "sh", "-c", "cat /x/in; echo out > /x/out")
    assert r.stdout == "from host\n" and (host / "out").read_text() == "out\n"
    # -v creates a missing source, --mount refuses it with Docker's message
    missing = tmp_path / "made"
    daemon.docker("run", "--rm", "-v", f"{missing}:/m", bb_image, "true")
    assert missing.is_dir()
    gone = tmp_path / "gone"
    r = daemon.docker("run", "--rm", "--mount", f"type=bind,source={gone},target=/g", bb_image, "true",
                      check=False)
    assert r.returncode == 125
    assert f'invalid mount config for type "bind": bind source path does not exist: {gone}' in r.stderr
    r = daemon.docker("run", "--rm", "--mount", f"type=bind,source={host},target=/x,readonly", bb_image,
                      "sh", "-c", "cat /x/in; touch /x/f 2>&1; true")
    assert "from host" in r.stdout and "Read-only file system" in r.stdout
    # a command that only the bind provides runs (start and exec); the image has no /x
    (host / "prog").write_text("#!/bin/sh\necho prog-ran\n")
    (host / "prog").chmod(0o755)
    r = daemon.docker("run", "--rm", "-v", f"{host}:/x:ro", bb_image, "/x/prog")
    assert r.stdout == "prog-ran\n"
    name = "bindexec-" + host.parent.name[-12:]
    daemon.docker("run", "-d", "--name", name, "-v", f"{host}:/x:ro", bb_image, "sleep", "60")
    try:
        assert daemon.docker("exec", name, "/x/prog").stdout == "prog-ran\n"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_bind_propagation(daemon, bb_image, tmp_path):
    """rslave: a mount made on the host under a shared source after the start
    reaches the container (the default rprivate does not); rshared: one made
    in the container reaches the host; a source that is not shared/slave is
    refused with moby's wording."""
    import subprocess
    shared, private = tmp_path / "shared", tmp_path / "private"
    made = []
    try:
        for path, kind in ((shared, "--make-shared"), (private, "--make-private")):
            path.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "dy-prop", str(path)], check=True)
            made.append(path)
            subprocess.run(["mount", kind, str(path)], check=True)
        (shared / "sub").mkdir()
        seen = {}
        for prop in ("rslave", "rprivate"):
            cid = daemon.docker("run", "-d", "--mount", f"type=bind,src={shared},dst=/x,bind-propagation={prop}",
                                bb_image, "sleep", "60").stdout.strip()
            try:
                subprocess.run(["mount", "-t", "tmpfs", "dy-prop-sub", str(shared / "sub")], check=True)
                (shared / "sub" / "marker").write_text("m")
                seen[prop] = daemon.docker("exec", cid, "ls", "/x/sub").stdout.split()
            finally:
                subprocess.run(["umount", str(shared / "sub")])
                daemon.docker("rm", "-f", cid)
        assert seen == {"rslave": ["marker"], "rprivate": []}
        # rshared: a mount the container makes reaches the host
        cid = daemon.docker("run", "-d", "--privileged", "-v", f"{shared}:/x:rshared", bb_image, "sh", "-c",
                            "mkdir /x/up && mount -t tmpfs dy-prop-up /x/up && touch /x/up/y && sleep 60").stdout.strip()
        try:
            import time
            deadline = time.monotonic() + 10
            while not (shared / "up" / "y").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (shared / "up" / "y").exists()
        finally:
            daemon.docker("rm", "-f", cid)
        for prop, kind in (("rslave", "shared or slave"), ("rshared", "shared")):
            r = daemon.docker("run", "--rm", "-v", f"{private}:/p:{prop}", bb_image, "true", check=False)
            assert r.returncode != 0
            assert f"path {private} is mounted on {private} but it is not a {kind} mount" in r.stderr
    finally:
        for path in reversed(made):
            subprocess.run(["umount", "-R", str(path)])


def test_bind_mount_inspect(daemon, bb_image, tmp_path):
    c = _name("b")
    daemon.docker("create", "--name", c, "-v", f"{tmp_path}:/h:ro", bb_image, "true")
    try:
        assert _inspect(daemon, c)["Mounts"] == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/h",
                                                  "Mode": "ro", "RW": False, "Propagation": "rprivate"}]
    finally:
        daemon.docker("rm", c)


def test_tmpfs_mounts(daemon, bb_image):
    r = daemon.docker("run", "--rm", "--tmpfs", "/t:size=1m", bb_image, "sh", "-c", "df -k /t | tail -1; grep ' /t ' /proc/mounts")
    lines = r.stdout.splitlines()
    assert lines[0].split()[1] == "1024"
    assert "noexec" in lines[1] and "nosuid" in lines[1]
    r = daemon.docker("run", "--rm", "--mount", "type=tmpfs,target=/u,tmpfs-size=2m", bb_image,
                      "sh", "-c", "df -k /u | tail -1")
    assert r.stdout.split()[1] == "2048"


def test_tmpfs_volume_driver_options(daemon, bb_image):
    vol = _name("tv")
    daemon.docker("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                  "--opt", "o=size=3m", vol)
    try:
        r = daemon.docker("run", "--rm", "-v", f"{vol}:/v", bb_image, "sh", "-c", "df -k /v | tail -1")
        assert r.stdout.split()[1] == "3072"
        assert _inspect(daemon, vol, "volume")["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=3m"}
    finally:
        daemon.docker("volume", "rm", vol)


def test_bad_mount_specs_make_nothing(daemon, bb_image):
    before = daemon.docker("ps", "-aq").stdout
    vols = daemon.docker("volume", "ls", "-q").stdout
    st, body = daemon.api("POST", "/containers/create", {
        "Image": bb_image, "HostConfig": {"Binds": ["/tmp:relative"]}})
    assert st == 400 and "mount path must be absolute" in json.loads(body)["message"]
    st, body = daemon.api("POST", "/containers/create", {
        "Image": bb_image, "HostConfig": {"Binds": ["/tmp:/a", "/tmp:/a"]}})
    assert st == 400 and json.loads(body)["message"] == "Duplicate mount point: /a"
    st, body = daemon.api("POST", "/containers/create", {
        "Image": bb_image, "Volumes": {"/anon": {}}, "HostConfig": {"Binds": ["/tmp:/b:bogus"]}})
    assert st == 400 and json.loads(body)["message"] == "invalid mode: bogus"
    assert daemon.docker("ps", "-aq").stdout == before
    assert daemon.docker("volume", "ls", "-q").stdout == vols


def test_prune(daemon, bb_image):
    named, c = _name("keep"), _name("p")
    daemon.docker("volume", "create", named)
    daemon.docker("create", "--name", c, "-v", "/anon", bb_image, "true")
    anon = _inspect(daemon, c)["Mounts"][0]["Name"]
    daemon.docker("rm", c)                       # without -v: the anonymous volume stays, unused
    r = daemon.docker("volume", "prune", "-f")
    assert anon in r.stdout and named not in r.stdout
    r = daemon.docker("volume", "prune", "-af")
    assert named in r.stdout
    assert named not in daemon.docker("volume", "ls", "-q").stdout.split()


def test_api_volume_without_name_is_anonymous_and_pruned_by_api_version(daemon):
    """moby: a volume created without a name is anonymous (labelled
    com.docker.volume.anonymous), so prune takes it without all=true; before
    API 1.42 prune took every unused local volume, named ones too."""
    tag = _name("t")
    q = "filters=" + urllib.parse.quote(json.dumps({"label": [f"t={tag}"]}))
    st, body = daemon.api("POST", "/volumes/create", {"Labels": {"t": tag}})
    assert st == 201
    anon = json.loads(body)
    assert anon["Labels"] == {"t": tag, "com.docker.volume.anonymous": ""}
    client = daemon.client()
    py_anon = client.volumes.create(labels={"t": tag})          # docker-py sends "Name": null
    assert "com.docker.volume.anonymous" in py_anon.attrs["Labels"]
    named = _name("named")
    daemon.api("POST", "/volumes/create", {"Name": named, "Labels": {"t": tag}})
    assert "com.docker.volume.anonymous" not in _inspect(daemon, named, "volume")["Labels"]
    st, body = daemon.api("POST", "/volumes/prune?" + q)
    assert st == 200
    assert sorted(json.loads(body)["VolumesDeleted"]) == sorted([anon["Name"], py_anon.name])
    st, body = daemon.api("POST", "/v1.42/volumes/prune?" + q)
    assert (st, json.loads(body)["VolumesDeleted"]) == (200, None)
    st, body = daemon.api("POST", "/v1.41/volumes/prune?" + q)
    assert (st, json.loads(body)["VolumesDeleted"]) == (200, [named])


def test_unknown_volume_driver_only_fails_the_volumes_it_would_make(daemon, bb_image, tmp_path):
    """dockerd accepts a VolumeDriver it cannot find when none of the
    container's volumes uses it; a -v volume fails with the plugin lookup."""
    c = _name("vd")
    daemon.docker("create", "--name", c, "--volume-driver", "nope", "-v", f"{tmp_path}:/h", bb_image, "true")
    try:
        assert _inspect(daemon, c)["HostConfig"]["VolumeDriver"] == "nope"
    finally:
        daemon.docker("rm", c)
    vol = _name("vd")
    before = daemon.docker("ps", "-aq").stdout
    # over the API: the CLI takes any 404 from create for a missing image and pulls
    st, body = daemon.api("POST", "/containers/create", {
        "Image": bb_image, "HostConfig": {"VolumeDriver": "nope", "Binds": [f"{vol}:/v"]}})
    assert (st, json.loads(body)["message"]) == (
        404, f'create {vol}: error looking up volume plugin nope: plugin "nope" not found')
    assert daemon.docker("ps", "-aq").stdout == before


def test_storage_opt_refused_at_create_as_overlay2_without_pquota(daemon, bb_image):
    """dockyard cannot enforce a size on the container's writable layer:
    dockerd's overlay2 refuses `--storage-opt size=` on a backing filesystem
    without project quota with its message (500), any other key as unknown."""
    before = daemon.docker("ps", "-aq").stdout
    r = daemon.docker("create", "--storage-opt", "size=1M", bb_image, "true", check=False)
    assert r.returncode != 0
    assert "--storage-opt is supported only for overlay over xfs with 'pquota' mount option" in r.stderr
    st, body = daemon.api("POST", "/containers/create", {"Image": bb_image, "HostConfig": {"StorageOpt": {"foo": "1"}}})
    assert (st, json.loads(body)["message"]) == (500, "Unknown option foo")
    assert daemon.docker("ps", "-aq").stdout == before


def test_docker_py_volumes(daemon, bb_image):
    client = daemon.client()
    name = _name("py")
    v = client.volumes.create(name, labels={"a": "b"})
    assert v.name == name and v.attrs["Labels"] == {"a": "b"}
    out = client.containers.run(bb_image, ["sh", "-c", "echo py > /v/f; cat /v/f"],
                                volumes={name: {"bind": "/v", "mode": "rw"}}, remove=True)
    assert out == b"py\n"
    assert name in [x.name for x in client.volumes.list()]
    v.remove()


def test_our_cli_volume_commands(daemon, bb_image, tmp_path):
    vol = _name("cli")
    assert daemon.dockyard("volume", "create", "--label", "x=y", vol).stdout.strip() == vol
    ls = daemon.dockyard("volume", "ls", "--filter", "label=x=y").stdout.splitlines()
    assert ls[0].split() == ["DRIVER", "VOLUME", "NAME"] and ls[1].split() == ["local", vol]
    info = json.loads(daemon.dockyard("volume", "inspect", vol).stdout)[0]
    assert info["Labels"] == {"x": "y"}
    assert daemon.dockyard("volume", "inspect", "-f", "{{.Driver}}", vol).stdout.strip() == "local"
    r = daemon.dockyard("run", "--rm", "-v", f"{vol}:/d", "--mount", f"type=bind,src={tmp_path},dst=/h,readonly",
                        bb_image, "sh", "-c", "echo v > /d/f && cat /d/f && touch /h/x 2>&1; true")
    assert r.stdout.startswith("v\n") and "Read-only file system" in r.stdout
    assert daemon.dockyard("volume", "rm", vol).stdout.strip() == vol
    r = daemon.dockyard("volume", "rm", vol, check=False)
    assert r.returncode == 1 and f"get {vol}: no such volume" in r.stderr
    anon = _name("pr")
    daemon.dockyard("volume", "create", anon)
    r = daemon.dockyard("volume", "prune", "-af")
    assert anon in r.stdout and "Total reclaimed space" in r.stdout


def test_bind_type_local_volume(daemon, bb_image, tmp_path):
    vol = _name("bv")
    (tmp_path / "seed").write_text("seed\n")
    daemon.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={tmp_path}", vol)
    try:
        r = daemon.docker("run", "--rm", "-v", f"{vol}:/b", bb_image, "sh", "-c", "cat /b/seed; echo new > /b/new")
        assert r.stdout == "seed\n" and (tmp_path / "new").read_text() == "new\n"
    finally:
        daemon.docker("volume", "rm", vol)
    assert not any(str(tmp_path) in line for line in open("/proc/self/mountinfo"))


def test_mount_inspect_shapes_and_volume_options(daemon, bb_image):
    c, vol = _name("ms"), _name("mv")
    daemon.docker("create", "--name", c, "--tmpfs", "/hidden", "--mount", "type=tmpfs,target=/shown",
                  "--mount", f"type=volume,src={vol},dst=/v,volume-label=k=v,volume-opt=type=tmpfs,"
                  "volume-opt=device=tmpfs", bb_image, "true")
    try:
        mounts = {m["Destination"]: m for m in _inspect(daemon, c)["Mounts"]}
        assert set(mounts) == {"/shown", "/v"}
        assert mounts["/shown"] == {"Type": "tmpfs", "Source": "", "Destination": "/shown", "Mode": "",
                                    "RW": True, "Propagation": ""}
        assert mounts["/v"]["Mode"] == "z" and mounts["/v"]["Name"] == vol
        v = _inspect(daemon, vol, "volume")
        assert v["Labels"] == {"k": "v"} and v["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    finally:
        daemon.docker("rm", c)
        daemon.docker("volume", "rm", vol)


def test_mounts_recorded_at_start_when_create_did_not(daemon, bb_image):
    """A crash between create's name reservation and its mount records loses
    nothing: start records them (here the record is removed by hand)."""
    import sqlite3
    c = _name("crash")
    daemon.docker("create", "--name", c, "-v", "/anon", bb_image, "sh", "-c", "echo ok > /anon/f; cat /anon/f")
    cid = _inspect(daemon, c)["Id"]
    db = sqlite3.connect(str(daemon.data_root / "dockyard.db"))
    with db:
        db.execute("DELETE FROM container_mounts WHERE container_id=?", (cid,))
    db.close()
    try:
        assert _inspect(daemon, c)["Mounts"] == []
        assert daemon.docker("start", "-a", c).stdout == "ok\n"
        assert [m["Destination"] for m in _inspect(daemon, c)["Mounts"]] == ["/anon"]
    finally:
        daemon.docker("rm", "-v", c)


def test_volume_subpath(daemon, bb_image):
    vol = _name("sp")
    daemon.docker("run", "--rm", "-v", f"{vol}:/v", bb_image, "sh", "-c",
                  "mkdir -p /v/sub && echo in-sub > /v/sub/f && ln -s / /v/out")
    try:
        r = daemon.docker("run", "--rm", "--mount", f"type=volume,src={vol},dst=/s,volume-subpath=sub",
                          bb_image, "cat", "/s/f")
        assert r.stdout == "in-sub\n"
        # a link inside the volume resolves inside it, never to the host's /
        r = daemon.docker("run", "--rm", "--mount", f"type=volume,src={vol},dst=/s,volume-subpath=out",
                          bb_image, "ls", "/s")
        assert set(r.stdout.split()) == {"sub", "out"}
        r = daemon.docker("run", "--rm", "--mount", f"type=volume,src={vol},dst=/s,volume-subpath=nope",
                          bb_image, "true", check=False)
        assert r.returncode != 0 and "no such file or directory" in r.stderr
    finally:
        daemon.docker("volume", "rm", vol)


def test_failed_start_with_rm_removes_its_anonymous_volumes(daemon, bb_image):
    before = set(daemon.docker("volume", "ls", "-q").stdout.split())
    r = daemon.docker("run", "--rm", "-v", "/anon", bb_image, "no-such-command", check=False)
    assert r.returncode == 127
    import time
    deadline = time.monotonic() + 10       # the daemon removes it right after answering the start
    while time.monotonic() < deadline and set(daemon.docker("volume", "ls", "-q").stdout.split()) != before:
        time.sleep(0.1)
    assert set(daemon.docker("volume", "ls", "-q").stdout.split()) == before


def test_ps_filter_volume(daemon, bb_image, tmp_path):
    vol, a, b = _name("pf"), _name("a"), _name("b")
    daemon.docker("create", "--name", a, "-v", f"{vol}:/data", bb_image, "true")
    daemon.docker("create", "--name", b, "-v", f"{tmp_path}:/h", bb_image, "true")
    try:
        names = lambda ref: daemon.docker("ps", "-a", "--filter", f"volume={ref}", "--format", "{{.Names}}").stdout.split()
        assert names(vol) == [a]
        assert names("/data") == [a]
        assert names(str(tmp_path)) == [b]
    finally:
        daemon.docker("rm", a, b)
        daemon.docker("volume", "rm", vol)


def test_volumes_survive_a_daemon_restart(daemon, bb_image):
    vol, c = _name("rs"), _name("rc")
    daemon.docker("run", "--name", c, "-v", f"{vol}:/d", bb_image, "sh", "-c", "echo kept > /d/f")
    daemon.restart()
    try:
        assert vol in daemon.docker("volume", "ls", "-q").stdout.split()
        assert _inspect(daemon, c)["Mounts"][0]["Name"] == vol
        r = daemon.docker("volume", "rm", vol, check=False)
        assert "volume is in use" in r.stderr                 # still known to be in use
        daemon.docker("rm", c)
        r = daemon.docker("run", "--rm", "-v", f"{vol}:/d", bb_image, "cat", "/d/f")
        assert r.stdout == "kept\n"
    finally:
        daemon.docker("rm", "-f", c, check=False)
        daemon.docker("volume", "rm", "-f", vol, check=False)


def _race(daemon, first, second):
    """Run two API calls at the same moment; their (status, body)."""
    gate, out = threading.Barrier(2), [None, None]

    def go(i, call):
        gate.wait()
        out[i] = call()
    threads = [threading.Thread(target=go, args=(i, call)) for i, call in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_volume_rm_racing_a_create_on_it(daemon, bb_image):
    """`volume rm` and `create -v NAME:/x` at once, 200 times: the rm is
    refused with Docker's 409 (the create recorded its reference first), or
    it went first and the create made the volume again (Docker creates a
    named volume a create asks for). Never a container whose volume is gone."""
    seen = Counter()
    for _ in range(200):
        vol, name = _name("race"), _name("rc")
        assert daemon.api("POST", "/volumes/create", {"Name": vol})[0] == 201
        try:
            (rm_st, rm_body), (cr_st, cr_body) = _race(
                daemon, lambda: daemon.api("DELETE", f"/volumes/{vol}"),
                lambda: daemon.api("POST", f"/containers/create?name={name}",
                                   {"Image": bb_image, "HostConfig": {"Binds": [f"{vol}:/x"]}}))
            assert cr_st == 201, cr_body
            cid = json.loads(cr_body)["Id"]
            assert rm_st in (204, 409), rm_body
            if rm_st == 409:
                assert json.loads(rm_body)["message"] == f"remove {vol}: volume is in use - [{cid}]"
            seen[rm_st] += 1
            # whoever won, the container's volume exists and is known to be in use
            assert daemon.api("GET", f"/volumes/{vol}")[0] == 200
            st, body = daemon.api("DELETE", f"/volumes/{vol}")
            assert st == 409 and json.loads(body)["message"] == f"remove {vol}: volume is in use - [{cid}]"
        finally:
            daemon.api("DELETE", f"/containers/{name}?force=1")
            daemon.api("DELETE", f"/volumes/{vol}?force=1")
    assert sum(seen.values()) == 200, seen


@pytest.fixture
def tree_with_submount(tmp_path):
    """A bind source with a tmpfs mounted inside it (unmounted after)."""
    src = tmp_path / "ro"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "dyt-rro", str(src / "sub")], check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", str(src / "sub")], check=True)


_PROBE = "for f in /host/top /host/sub/f; do touch $f 2>/dev/null && echo $f:rw || echo $f:ro; done"


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_read_only_binds_are_read_only_all_the_way_down(daemon, bb_image, tree_with_submount, runtime):
    src = tree_with_submount
    r = daemon.docker("run", "--rm", "--runtime", runtime, "-v", f"{src}:/host:ro", bb_image, "sh", "-c", _PROBE)
    assert r.stdout.split() == ["/host/top:ro", "/host/sub/f:ro"]
    r = daemon.docker("run", "--rm", "--runtime", runtime, "-v", f"{src}:/host:ro", bb_image,
                      "touch", "/host/sub/f", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    # --mount ...,readonly,bind-recursive=writable (ReadOnlyNonRecursive): the submount stays writable
    r = daemon.docker("run", "--rm", "--runtime", runtime, "--mount",
                      f"type=bind,src={src},dst=/host,readonly,bind-recursive=writable", bb_image, "sh", "-c", _PROBE)
    assert r.stdout.split() == ["/host/top:ro", "/host/sub/f:rw"]
    os.unlink(src / "sub" / "f")
    # bind-recursive=readonly (ReadOnlyForceRecursive): this kernel and runtime can, so it runs
    r = daemon.docker("run", "--rm", "--runtime", runtime, "--mount",
                      f"type=bind,src={src},dst=/host,readonly,bind-recursive=readonly,bind-propagation=rprivate", bb_image, "sh", "-c", _PROBE)
    assert r.stdout.split() == ["/host/top:ro", "/host/sub/f:ro"]
    assert not os.listdir(src / "sub") and not os.path.exists(src / "top")


def test_read_only_binds_for_clients_before_api_1_44(daemon, bb_image, tree_with_submount):
    """Before API 1.44 read-only binds were read-only on their top mount only:
    older clients keep that; they cannot ask for ReadOnlyForceRecursive."""
    src, name = tree_with_submount, _name("old")
    st, body = daemon.api("POST", f"/v1.43/containers/create?name={name}", {
        "Image": bb_image, "Cmd": ["sh", "-c", _PROBE], "HostConfig": {"Binds": [f"{src}:/host:ro"]}})
    assert st == 201, body
    try:
        daemon.docker("start", "-a", name)
        assert daemon.docker("logs", name).stdout.split() == ["/host/top:ro", "/host/sub/f:rw"]
    finally:
        daemon.docker("rm", "-f", name, check=False)
    st, body = daemon.api("POST", "/v1.43/containers/create", {
        "Image": bb_image, "HostConfig": {"Mounts": [{
            "Type": "bind", "Source": str(src), "Target": "/host", "ReadOnly": True,
            "BindOptions": {"ReadOnlyForceRecursive": True}}]}})
    assert st == 400 and json.loads(body)["message"] == \
        "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_host_root_read_only_bind_keeps_dev_shm_read_only(daemon, bb_image, runtime):
    """The audit's case: `-v /:/host:ro` and a write under the host's /dev/shm."""
    if not os.path.ismount("/dev/shm"):
        pytest.skip("/dev/shm is not a mount on this host")
    probe = f"/dev/shm/dyt-rro-{secrets.token_hex(4)}"
    try:
        r = daemon.docker("run", "--rm", "--runtime", runtime, "-v", "/:/host:ro", bb_image,
                          "touch", f"/host{probe}", check=False)
        assert r.returncode != 0 and "Read-only file system" in r.stderr
        assert not os.path.exists(probe)
        # and every mount under /host is read-only (mountinfo: point, then per-mount options)
        r = daemon.docker("run", "--rm", "--runtime", runtime, "-v", "/:/host:ro", bb_image,
                          "awk", '$5 ~ "^/host" {print $5, $6}', "/proc/self/mountinfo")
        mounts = [line.split() for line in r.stdout.splitlines()]
        assert len(mounts) > 1 and "/host/dev/shm" in [m[0] for m in mounts]
        assert [m for m in mounts if "ro" not in m[1].split(",")] == []
    finally:
        if os.path.exists(probe):
            os.unlink(probe)

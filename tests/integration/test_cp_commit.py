"""docker cp (both ways, stopped and running), diff, export, commit,
history, save/load round trip and image prune, through the real docker CLI."""
from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import tarfile

import pytest


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def ctr(daemon, bb_image):
    """A stopped container that changed its filesystem: added, modified, deleted."""
    name = _name("fs")
    daemon.docker("run", "--name", name, "--network", "none", bb_image, "sh", "-c",
                  "mkdir -p /data && echo hello > /data/new.txt && echo changed >> /etc/passwd "
                  "&& rm /bin/vi && ln -s /etc/passwd /data/link")
    yield name
    daemon.docker("rm", "-f", name, check=False)


def test_diff_lists_added_modified_deleted(daemon, ctr):
    out = daemon.docker("diff", ctr).stdout.splitlines()
    assert "A /data" in out and "A /data/new.txt" in out and "A /data/link" in out
    assert "C /etc/passwd" in out
    assert "D /bin/vi" in out and "C /bin" in out
    assert not any(p.endswith(("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")) for p in out), out


def test_cp_out_of_a_stopped_container(daemon, ctr, tmp_path):
    daemon.docker("cp", f"{ctr}:/data/new.txt", str(tmp_path / "got.txt"))
    assert (tmp_path / "got.txt").read_text() == "hello\n"
    daemon.docker("cp", f"{ctr}:/data", str(tmp_path / "dir"))
    assert (tmp_path / "dir" / "new.txt").read_text() == "hello\n"
    assert os.readlink(tmp_path / "dir" / "link") == "/etc/passwd"
    # to stdout: a tar
    raw = subprocess.run(["docker", "-H", daemon.host, "cp", f"{ctr}:/data/new.txt", "-"],
                         capture_output=True, env=daemon.env, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        assert tf.getnames() == ["new.txt"]
    # "/." copies the directory's contents, into a new or an existing directory
    daemon.docker("cp", f"{ctr}:/data/.", str(tmp_path / "contents"))
    assert (tmp_path / "contents" / "new.txt").read_text() == "hello\n"
    (tmp_path / "existing").mkdir()
    daemon.docker("cp", f"{ctr}:/data/.", str(tmp_path / "existing"))
    assert (tmp_path / "existing" / "new.txt").read_text() == "hello\n"
    # a symlink is copied as a link, or followed with -L
    daemon.docker("cp", f"{ctr}:/data/link", str(tmp_path / "l1"))
    assert os.readlink(tmp_path / "l1") == "/etc/passwd"
    daemon.docker("cp", "-L", f"{ctr}:/data/link", str(tmp_path / "l2"))
    assert (tmp_path / "l2").read_text().endswith("changed\n")
    r = daemon.docker("cp", f"{ctr}:/nope", str(tmp_path / "x"), check=False)
    assert r.returncode != 0 and "Could not find the file /nope in container" in r.stderr
    # nothing stays mounted
    assert not any(ctr in line for line in open("/proc/self/mountinfo"))


def test_cp_into_a_container_then_read_it_back(daemon, ctr, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("from host\n")
    daemon.docker("cp", str(src), f"{ctr}:/data/")
    daemon.docker("cp", str(src), f"{ctr}:/renamed.txt")
    daemon.docker("cp", f"{ctr}:/data/in.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "from host\n"
    diff = daemon.docker("diff", ctr).stdout.splitlines()
    assert "A /renamed.txt" in diff and "A /data/in.txt" in diff


def test_cp_running_container_and_path_safety(daemon, bb_image, tmp_path):
    name = _name("cprun")
    daemon.docker("run", "-d", "--name", name, "--network", "none", bb_image, "sleep", "300")
    try:
        assert daemon.docker("diff", name).stdout == ""      # the runtime's mount targets are not changes
        (tmp_path / "f").write_text("live\n")
        daemon.docker("cp", str(tmp_path / "f"), f"{name}:/tmp/f")
        daemon.docker("cp", f"{name}:/tmp/f", str(tmp_path / "back"))
        assert (tmp_path / "back").read_text() == "live\n"
        # a tar whose names climb out, and a symlink pointing outside, never escape the container
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            link = tarfile.TarInfo("esc")
            link.type, link.linkname = tarfile.SYMTYPE, "/"
            tf.addfile(link)
            data = b"pwned\n"
            ti = tarfile.TarInfo(f"esc/tmp/{name}-outside")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
            ti2 = tarfile.TarInfo("../../../../tmp/" + name + "-climb")
            ti2.size = len(data)
            tf.addfile(ti2, io.BytesIO(data))
        status, body = daemon.api("PUT", f"/containers/{name}/archive?path=/tmp", buf.getvalue(),
                                  headers={"Content-Type": "application/x-tar"})
        assert not os.path.exists(f"/tmp/{name}-outside")
        assert not os.path.exists(f"/tmp/{name}-climb")
        assert status == 400 and b"outside" in body, (status, body)
        # commit while it runs: paused meanwhile, running again after
        repo = _name("live")
        daemon.docker("commit", name, f"{repo}:1")
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "running"
        got = daemon.docker("run", "--rm", "--network", "none", f"{repo}:1", "cat", "/tmp/f")
        assert got.stdout == "live\n"
        daemon.docker("rmi", f"{repo}:1")
        # HEAD: the stat header the CLI reads
        status, _ = daemon.api("HEAD", f"/containers/{name}/archive?path=/tmp/f")
        assert status == 200
        status, _ = daemon.api("HEAD", f"/containers/{name}/archive?path=/nonexistent")
        assert status == 404
    finally:
        daemon.docker("rm", "-f", name)


def test_cp_reaches_into_volumes(daemon, bb_image, tmp_path):
    name, vol = _name("cpvol"), _name("vol")
    daemon.docker("create", "--name", name, "--network", "none", "-v", f"{vol}:/data", bb_image, "true")
    try:
        (tmp_path / "v.txt").write_text("in volume\n")
        daemon.docker("cp", str(tmp_path / "v.txt"), f"{name}:/data/")
        got = daemon.docker("run", "--rm", "--network", "none", "-v", f"{vol}:/data", bb_image, "cat", "/data/v.txt")
        assert got.stdout == "in volume\n"
        daemon.docker("cp", f"{name}:/data/v.txt", str(tmp_path / "back.txt"))
        assert (tmp_path / "back.txt").read_text() == "in volume\n"
        assert "/data/v.txt" not in daemon.docker("diff", name).stdout     # not in the container's layer
    finally:
        daemon.docker("rm", "-f", "-v", name, check=False)
    # a read-only bind mount is refused, and nothing reaches its host directory
    ro_src = tmp_path / "ro"
    ro_src.mkdir()
    daemon.docker("create", "--name", name, "--network", "none", "-v", f"{ro_src}:/ro:ro", bb_image, "true")
    try:
        r = daemon.docker("cp", str(tmp_path / "v.txt"), f"{name}:/ro/", check=False)
        assert r.returncode != 0 and "mounted volume is marked read-only" in r.stderr, r.stderr
        assert list(ro_src.iterdir()) == []
    finally:
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("volume", "rm", vol, check=False)


def test_cp_archive_mode_ownership(daemon, bb_image, tmp_path):
    """Into a container: root's files, or with -a the source's ids; with -a into a
    container that has a user, that user's (resolved in the container's passwd)."""
    src = tmp_path / "owned.txt"
    src.write_text("x\n")
    os.chown(src, 1234, 1235)
    plain, user = _name("cpown"), _name("cpuser")
    daemon.docker("create", "--name", plain, "--network", "none", bb_image, "true")
    daemon.docker("create", "--name", user, "--network", "none", "--user", "nobody", bb_image, "true")
    try:
        def owner(name, path):
            raw = subprocess.run(["docker", "-H", daemon.host, "cp", f"{name}:{path}", "-"],
                                 capture_output=True, env=daemon.env, check=True).stdout
            with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
                m = tf.getmembers()[0]
                return m.uid, m.gid
        daemon.docker("cp", str(src), f"{plain}:/root.txt")
        daemon.docker("cp", "-a", str(src), f"{plain}:/kept.txt")
        daemon.docker("cp", "-a", str(src), f"{user}:/user.txt")
        assert owner(plain, "/root.txt") == (0, 0)
        assert owner(plain, "/kept.txt") == (1234, 1235)
        assert owner(user, "/user.txt") == (65534, 65534)        # busybox's nobody:nogroup
    finally:
        daemon.docker("rm", "-f", plain, user, check=False)


def test_noOverwriteDirNonDir(daemon, ctr):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("data")           # a file where /data is a directory
        tf.addfile(ti, io.BytesIO(b""))
    status, body = daemon.api("PUT", f"/containers/{ctr}/archive?path=/&noOverwriteDirNonDir=true",
                              buf.getvalue(), headers={"Content-Type": "application/x-tar"})
    assert status == 400 and b"cannot overwrite directory" in body
    assert "A /data/new.txt" in daemon.docker("diff", ctr).stdout


def test_export_is_the_whole_rootfs(daemon, ctr, tmp_path):
    out = tmp_path / "exp.tar"
    daemon.docker("export", "-o", str(out), ctr)
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
        assert "data/new.txt" in names and "bin/busybox" in names and "bin/vi" not in names
        assert tf.extractfile("data/new.txt").read() == b"hello\n"
        assert tf.getmember("data/link").linkname == "/etc/passwd"


def test_commit_then_run_the_new_image(daemon, ctr):
    repo = _name("committed")
    cid = daemon.docker("commit", "-c", "ENV FOO=bar", "-c", 'CMD ["cat", "/data/new.txt"]',
                        "-m", "snap", "-a", "me", ctr, f"{repo}:v1").stdout.strip()
    assert cid.startswith("sha256:")
    run = daemon.docker("run", "--rm", "--network", "none", f"{repo}:v1")
    assert run.stdout == "hello\n"
    env = daemon.docker("run", "--rm", "--network", "none", f"{repo}:v1", "sh", "-c",
                        "echo $FOO; test -e /bin/vi || echo novi")
    assert env.stdout == "bar\nnovi\n"
    hist = daemon.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", f"{repo}:v1")
    first = hist.stdout.splitlines()[0]
    assert first.endswith("|snap"), hist.stdout
    inspect = json.loads(daemon.docker("inspect", f"{repo}:v1").stdout)[0]
    assert inspect["Author"] == "me" and len(inspect["RootFS"]["Layers"]) == 2
    parent = json.loads(daemon.docker("inspect", "bb").stdout)[0]["Id"]
    assert inspect["Parent"] == parent
    ids = daemon.docker("history", "-q", "--no-trunc", f"{repo}:v1").stdout.split()
    assert ids == [cid, parent], ids          # the parent's entry is named, as in Docker
    daemon.docker("rmi", f"{repo}:v1")


def test_save_load_round_trip(daemon, ctr, tmp_path):
    repo = _name("saved")
    daemon.docker("commit", ctr, f"{repo}:1")
    image_id = json.loads(daemon.docker("inspect", f"{repo}:1").stdout)[0]["Id"]
    tar = tmp_path / "s.tar"
    daemon.docker("save", "-o", str(tar), f"{repo}:1")
    with tarfile.open(tar) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))
    assert "index.json" in names and "oci-layout" in names
    assert manifest[0]["RepoTags"] == [f"{repo}:1"]
    daemon.docker("rmi", f"{repo}:1")
    out = daemon.docker("load", "-i", str(tar))
    assert f"Loaded image: {repo}:1" in out.stdout
    assert json.loads(daemon.docker("inspect", f"{repo}:1").stdout)[0]["Id"] == image_id
    run = daemon.docker("run", "--rm", "--network", "none", f"{repo}:1", "cat", "/data/new.txt")
    assert run.stdout == "hello\n"
    r = daemon.docker("save", "nosuchimage:1", check=False)
    assert r.returncode != 0 and "No such image" in r.stderr
    daemon.docker("rmi", f"{repo}:1")


def _du(path: str) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)


def test_image_prune_frees_layers(daemon, ctr):
    layers_dir = os.path.join(daemon.data_root, "image", "layers")
    before = set(os.listdir(layers_dir))
    du_before = _du(os.path.join(daemon.data_root, "image"))
    df_before = json.loads(daemon.api("GET", "/system/df")[1])["LayersSize"]
    repo = _name("dangling")
    daemon.docker("commit", ctr, f"{repo}:1")
    assert len(set(os.listdir(layers_dir)) - before) == 1
    daemon.docker("tag", f"{repo}:1", f"{repo}:2")
    daemon.docker("rmi", f"{repo}:1", f"{repo}:2")
    assert set(os.listdir(layers_dir)) == before
    # a dangling one: commit without a name
    image_id = daemon.docker("commit", ctr).stdout.strip()
    assert len(set(os.listdir(layers_dir)) - before) == 1
    assert _du(os.path.join(daemon.data_root, "image")) > du_before
    out = daemon.docker("image", "prune", "-f")
    assert "Total reclaimed space" in out.stdout and f"deleted: {image_id}" in out.stdout, out.stdout
    assert set(os.listdir(layers_dir)) == before
    # disk usage is back to what it was (files under image/, and what system df counts)
    assert _du(os.path.join(daemon.data_root, "image")) == du_before
    assert json.loads(daemon.api("GET", "/system/df")[1])["LayersSize"] == df_before


def test_save_here_load_into_a_second_dockyardd(daemon, ctr, tmp_path, tmp_path_factory):
    """The archive carries everything: a daemon that never saw the image loads and runs it."""
    from conftest import Daemon, shut_down
    repo = _name("moved")
    daemon.docker("commit", "-c", 'CMD ["cat", "/data/new.txt"]', ctr, f"{repo}:1")
    image_id = json.loads(daemon.docker("inspect", f"{repo}:1").stdout)[0]["Id"]
    tar = tmp_path / "m.tar"
    daemon.docker("save", "-o", str(tar), f"{repo}:1")
    other = Daemon(log_path=tmp_path_factory.mktemp("second") / "dockyardd.log")
    try:
        other.start()
        out = other.docker("load", "-i", str(tar))
        assert f"Loaded image: {repo}:1" in out.stdout
        assert json.loads(other.docker("inspect", f"{repo}:1").stdout)[0]["Id"] == image_id
        # not --rm: `docker rm` returns only once the runtime deleted the container (and its cgroup)
        ran = other.docker("run", "--name", "moved", "--network", "none", f"{repo}:1")
        assert ran.stdout == "hello\n"
        other.docker("rm", "moved")
    finally:
        errors, _ = shut_down(other, None, False)
        assert not errors, errors
    daemon.docker("rmi", f"{repo}:1")

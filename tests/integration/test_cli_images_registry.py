"""Our own CLI: pull/push/login/logout, save/load, history, commit, diff,
export, cp and image prune against a real registry and daemon."""
from __future__ import annotations

import json
import os
import secrets
import tarfile

import pytest

from registry_util import LocalRegistry


@pytest.fixture(scope="module")
def registry():
    r = LocalRegistry(users={"carol": "pw1"})
    yield r
    r.stop()


@pytest.fixture
def cli_env(daemon, tmp_path):
    env = dict(daemon.env, DOCKYARD_CONFIG=str(tmp_path / "cfg"))
    return env


def test_login_push_pull_with_our_cli(daemon, bb_image, registry, cli_env):
    ref = f"{registry.host}/cli-{secrets.token_hex(3)}:1"
    daemon.dockyard("tag", bb_image, ref, env=cli_env)
    bad = daemon.dockyard("login", "-u", "carol", "--password-stdin", registry.host, input="no\n",
                          env=cli_env, check=False)
    assert bad.returncode == 1 and "401 Unauthorized" in bad.stderr, bad.stderr
    ok = daemon.dockyard("login", "-u", "carol", "--password-stdin", registry.host, input="pw1\n", env=cli_env)
    assert "Login Succeeded" in ok.stdout
    cfg = json.load(open(os.path.join(cli_env["DOCKYARD_CONFIG"], "config.json")))
    assert registry.host in cfg["auths"]
    push = daemon.dockyard("push", ref, env=cli_env)
    assert "Pushed" in push.stdout and "1: digest: sha256:" in push.stdout
    daemon.dockyard("rmi", ref, env=cli_env)
    pull = daemon.dockyard("pull", ref, env=cli_env)
    assert pull.stdout.splitlines()[-1] == ref and "Status: Downloaded newer image" in pull.stdout
    [repo_digest] = json.loads(daemon.api("GET", f"/images/{ref}/json")[1])["RepoDigests"]
    repo, tag = ref.rsplit(":", 1)
    listed = daemon.dockyard("images", "--digests", repo, env=cli_env).stdout.splitlines()
    assert listed[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert listed[1].split()[:3] == [repo, tag, repo_digest.split("@")[1]], listed
    out = daemon.dockyard("logout", registry.host, env=cli_env)
    assert "Removing login credentials" in out.stdout
    r = daemon.dockyard("pull", f"{registry.host}/cli-nothing:1", env=cli_env, check=False)
    assert r.returncode == 1 and "no basic auth credentials" in r.stderr, r.stderr
    daemon.dockyard("rmi", ref, env=cli_env)


def test_fs_commands_with_our_cli(daemon, bb_image, tmp_path):
    name = f"clifs-{secrets.token_hex(3)}"
    daemon.dockyard("run", "--name", name, "--network", "none", bb_image, "sh", "-c", "echo hi > /hi.txt")
    try:
        assert "A /hi.txt" in daemon.dockyard("diff", name).stdout.splitlines()
        daemon.dockyard("cp", f"{name}:/hi.txt", str(tmp_path / "hi"))
        assert (tmp_path / "hi").read_text() == "hi\n"
        (tmp_path / "up.txt").write_text("up\n")
        daemon.dockyard("cp", str(tmp_path / "up.txt"), f"{name}:/tmp/")
        assert "A /tmp/up.txt" in daemon.dockyard("diff", name).stdout.splitlines()
        daemon.dockyard("export", "-o", str(tmp_path / "e.tar"), name)
        with tarfile.open(tmp_path / "e.tar") as tf:
            assert "hi.txt" in tf.getnames()
        repo = f"clicommit-{secrets.token_hex(3)}"
        image_id = daemon.dockyard("commit", "-m", "msg", name, f"{repo}:1").stdout.strip()
        assert image_id.startswith("sha256:")
        hist = daemon.dockyard("history", f"{repo}:1").stdout.splitlines()
        assert hist[0].startswith("IMAGE") and "msg" in hist[1]
        daemon.dockyard("save", "-o", str(tmp_path / "s.tar"), f"{repo}:1")
        daemon.dockyard("rmi", f"{repo}:1")
        assert f"Loaded image: {repo}:1" in daemon.dockyard("load", "-i", str(tmp_path / "s.tar")).stdout
        daemon.dockyard("rmi", f"{repo}:1")
        dangling = daemon.dockyard("commit", name).stdout.strip()
        listed = daemon.dockyard("images", "-a", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split()
        assert dangling in listed, listed
        assert dangling not in daemon.dockyard("images", "-q", "--no-trunc", "--filter", "dangling=false").stdout
        out = daemon.dockyard("image", "prune", "-f").stdout
        assert "Deleted Images:" in out and "Total reclaimed space" in out and f"deleted: {dangling}" in out, out
        assert dangling not in daemon.dockyard("images", "-a", "-q", "--no-trunc").stdout
    finally:
        daemon.dockyard("rm", "-f", name, check=False)

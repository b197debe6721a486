"""Push and pull against a real Distribution registry (Debian's
docker-registry) on 127.0.0.1: open, with htpasswd basic auth, and behind
a bearer-token server."""
from __future__ import annotations

import json

import pytest

from registry_util import LocalRegistry, TokenServer


@pytest.fixture(scope="module")
def registry():
    r = LocalRegistry()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def auth_registry():
    r = LocalRegistry(users={"alice": "s3cret"})
    yield r
    r.stop()


def _digest_of(daemon, ref: str) -> list[str]:
    status, body = daemon.api("GET", f"/images/{ref}/json")
    assert status == 200, body
    return json.loads(body)["RepoDigests"]


def test_push_rmi_pull_run(daemon, bb_image, registry):
    import time
    import urllib.parse
    t0 = int(time.time()) - 1
    ref = f"{registry.host}/app:1"
    daemon.docker("tag", bb_image, ref)
    push = daemon.docker("push", ref)
    assert "Pushed" in push.stdout, push.stdout
    assert f"The push refers to repository [{registry.host}/app]" in push.stdout
    assert "1: digest: sha256:" in push.stdout
    digests = _digest_of(daemon, ref)
    assert digests and digests[0].startswith(f"{registry.host}/app@sha256:")
    # a second push sends nothing: the registry has every blob
    again = daemon.docker("push", ref)
    assert "Layer already exists" in again.stdout and "Pushed" not in again.stdout
    # remove every local name, so the layer itself goes, then pull it back
    daemon.docker("rmi", ref)
    daemon.docker("rmi", bb_image)
    assert daemon.api("GET", f"/images/{ref}/json")[0] == 404
    pull = daemon.docker("pull", ref)
    assert "Pull complete" in pull.stdout, pull.stdout
    assert f"Status: Downloaded newer image for {ref}" in pull.stdout
    assert "Digest: sha256:" in pull.stdout
    run = daemon.docker("run", "--rm", "--network", "none", ref, "echo", "pulled")
    assert run.stdout == "pulled\n"
    # everything present: no download
    up = daemon.docker("pull", ref)
    assert f"Status: Image is up to date for {ref}" in up.stdout
    # by digest
    digest = _digest_of(daemon, ref)[0].split("@")[1]
    by_digest = daemon.docker("pull", f"{registry.host}/app@{digest}")
    assert digest in by_digest.stdout
    r = daemon.docker("run", "--rm", "--network", "none", f"{registry.host}/app@{digest}", "true")
    assert r.returncode == 0
    # Docker's image events for both transfers, named by the repository
    flt = urllib.parse.quote(json.dumps({"type": ["image"], "event": ["push", "pull"]}))
    st, body = daemon.api("GET", f"/events?since={t0}&until={int(time.time()) + 1}&filters={flt}")
    assert st == 200
    seen = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    acts = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in seen]
    assert ("push", ref) in acts and ("pull", ref) in acts, acts
    assert all(e["Type"] == "image" and e["scope"] == "local" for e in seen)
    daemon.docker("tag", ref, bb_image)
    daemon.docker("rmi", ref)


def test_push_to_another_repository_mounts_the_blob(daemon, bb_image, registry):
    a, b = f"{registry.host}/mount-a:1", f"{registry.host}/mount-b:1"
    daemon.docker("tag", bb_image, a)
    daemon.docker("tag", bb_image, b)
    daemon.docker("push", a)
    out = daemon.docker("push", b).stdout
    assert "Mounted from " in out or "Layer already exists" in out, out
    assert "Pushed" not in out
    daemon.docker("rmi", a, b)


def test_pull_progress_stream(daemon, bb_image, registry):
    """The raw stream: Docker's JSON messages, per-layer ids and progressDetail."""
    ref = f"{registry.host}/progress:1"
    daemon.docker("tag", bb_image, ref)
    daemon.docker("push", ref)
    status, body = daemon.api("POST", f"/images/create?fromImage={registry.host}/progress&tag=1")
    assert status == 200
    msgs = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert any(m.get("status") == "Already exists" and len(m.get("id", "")) == 12 for m in msgs), msgs
    text = json.dumps(msgs)
    assert "Pulling from progress" in text and "Already exists" in text
    daemon.docker("rmi", ref)


def test_pull_unknown_tag(daemon, registry):
    r = daemon.docker("pull", f"{registry.host}/app:nope", check=False)
    assert r.returncode != 0
    assert f"manifest for {registry.host}/app:nope not found: manifest unknown" in r.stderr, r.stderr


def test_pull_of_an_os_this_host_cannot_run_is_refused_before_the_registry(daemon):
    """As dockerd 20.10: `--platform windows/…` is refused up front (the
    registry named here does not exist: asking it would be a connection error)."""
    for platform in ("windows/amd64", "Windows/arm64", "darwin"):
        r = daemon.docker("pull", "--platform", platform, "127.0.0.1:9/app:1", check=False)
        assert r.returncode != 0
        os_ = platform.split("/")[0].lower()
        assert r.stderr.strip() == f"Error response from daemon: unsupported os {os_}", r.stderr


def test_push_unknown_image(daemon, registry):
    r = daemon.docker("push", f"{registry.host}/nothing:1", check=False)
    assert r.returncode != 0
    assert f"An image does not exist locally with the tag: {registry.host}/nothing" in r.stderr, r.stderr


def test_login_push_pull_with_htpasswd(daemon, bb_image, auth_registry):
    host = auth_registry.host
    ref = f"{host}/secret:1"
    daemon.docker("tag", bb_image, ref)
    # without credentials: the registry's refusal
    r = daemon.docker("push", ref, check=False)
    assert r.returncode != 0 and ("no basic auth credentials" in r.stderr or "unauthorized" in r.stderr), r.stderr
    bad = daemon.docker("login", "-u", "alice", "--password-stdin", host, input="wrong\n", check=False)
    assert bad.returncode != 0
    assert "401 Unauthorized" in bad.stderr, bad.stderr
    ok = daemon.docker("login", "-u", "alice", "--password-stdin", host, input="s3cret\n")
    assert "Login Succeeded" in ok.stdout
    push = daemon.docker("push", ref)
    assert "Pushed" in push.stdout
    daemon.docker("rmi", ref)
    pull = daemon.docker("pull", ref)
    assert f"Status: Downloaded newer image for {ref}" in pull.stdout
    daemon.docker("logout", host)
    daemon.docker("rmi", ref)


def test_bearer_token_flow(daemon, bb_image, registry):
    tokens = TokenServer(registry.host, {"bob": "pw"})
    try:
        ref = f"{tokens.host}/tok:1"
        daemon.docker("tag", bb_image, ref)
        bad = daemon.docker("login", "-u", "bob", "--password-stdin", tokens.host, input="nope\n", check=False)
        assert bad.returncode != 0 and "invalid username or password" in bad.stderr, bad.stderr
        daemon.docker("login", "-u", "bob", "--password-stdin", tokens.host, input="pw\n")
        push = daemon.docker("push", ref)
        assert "1: digest: sha256:" in push.stdout, push.stdout
        assert any("scope=repository%3Atok%3Apull%2Cpush" in s for s in tokens.scopes), tokens.scopes
        daemon.docker("rmi", ref)
        pull = daemon.docker("pull", ref)
        assert f"Status: Image is up to date for {ref}" in pull.stdout or "Downloaded newer image" in pull.stdout
        daemon.docker("logout", tokens.host)
        daemon.docker("rmi", ref)
    finally:
        tokens.stop()


def test_digest_references_like_docker(daemon, bb_image, registry):
    """rmi of the last tag also untags the repository's digests; an image pulled only
    by digest is not dangling, so prune keeps it."""
    ref = f"{registry.host}/digests:1"
    daemon.docker("tag", bb_image, ref)
    daemon.docker("push", ref)
    digest = _digest_of(daemon, ref)[0]
    out = daemon.docker("rmi", ref).stdout
    assert f"Untagged: {ref}" in out and f"Untagged: {digest}" in out, out
    daemon.docker("pull", digest)
    assert daemon.api("GET", f"/images/{digest}/json")[0] == 200
    daemon.docker("image", "prune", "-f")
    assert daemon.api("GET", f"/images/{digest}/json")[0] == 200
    listed = json.loads(daemon.api("GET", "/images/json")[1])
    assert any(digest in (i.get("RepoDigests") or []) for i in listed)
    out = daemon.docker("rmi", digest).stdout
    assert f"Untagged: {digest}" in out


def test_pull_all_tags(daemon, bb_image, registry):
    repo = f"{registry.host}/alltags"
    for t in ("a", "b"):
        daemon.docker("tag", bb_image, f"{repo}:{t}")
        daemon.docker("push", f"{repo}:{t}")
        daemon.docker("rmi", f"{repo}:{t}")
    out = daemon.docker("pull", "-a", repo).stdout
    assert f"Status: Downloaded newer image for {repo}" in out, out
    for t in ("a", "b"):
        assert daemon.api("GET", f"/images/{repo}:{t}/json")[0] == 200
        daemon.docker("rmi", f"{repo}:{t}")


def test_docker_py_push_pull_with_auth_config(daemon, bb_image, auth_registry):
    c = daemon.client()
    repo = f"{auth_registry.host}/dockerpy"
    c.images.get(bb_image).tag(repo, "7")
    creds = {"username": "alice", "password": "s3cret"}
    msgs = list(c.images.push(repo, "7", stream=True, decode=True, auth_config=creds))
    assert any(m.get("aux", {}).get("Digest", "").startswith("sha256:") for m in msgs), msgs
    assert not any("error" in m for m in msgs)
    c.images.remove(f"{repo}:7")
    img = c.images.pull(repo, tag="7", auth_config=creds)
    assert f"{repo}:7" in img.tags
    import docker
    with pytest.raises(docker.errors.APIError) as e:
        c.images.pull(repo, tag="7", auth_config={"username": "alice", "password": "bad"})
    assert e.value.status_code == 401
    c.images.remove(f"{repo}:7")


def test_pulled_layers_save_and_push_elsewhere_unchanged(daemon, bb_image, registry, tmp_path):
    """A pulled layer keeps the registry's blob: saving it gives the exact tar
    (same image id after load), pushing it to another registry sends the same blob."""
    src = f"{registry.host}/keep:1"
    daemon.docker("tag", bb_image, src)
    daemon.docker("push", src)
    daemon.docker("rmi", src, bb_image)                   # layer gone: the pull below fetches it
    daemon.docker("pull", src)
    image_id = json.loads(daemon.api("GET", f"/images/{src}/json")[1])["Id"]
    blob = json.loads(daemon.api("GET", f"/images/{src}/json")[1])["RootFS"]["Layers"][0]
    tar = tmp_path / "k.tar"
    daemon.docker("save", "-o", str(tar), src)
    daemon.docker("rmi", src)
    daemon.docker("load", "-i", str(tar))
    assert json.loads(daemon.api("GET", f"/images/{src}/json")[1])["Id"] == image_id
    daemon.docker("rmi", src)
    daemon.docker("pull", src)                             # the gzip blob again
    other = LocalRegistry()
    try:
        dst = f"{other.host}/keep:1"
        daemon.docker("tag", src, dst)
        daemon.docker("push", dst)
        m_src = json.loads(_manifest(registry.host, "keep", "1"))
        m_dst = json.loads(_manifest(other.host, "keep", "1"))
        assert m_src["layers"][0]["digest"] == m_dst["layers"][0]["digest"]
        daemon.docker("rmi", dst)
    finally:
        other.stop()
    daemon.docker("tag", src, bb_image)
    daemon.docker("rmi", src)
    assert blob.startswith("sha256:")


def _manifest(host: str, repo: str, tag: str) -> bytes:
    import urllib.request
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req) as r:
        return r.read()

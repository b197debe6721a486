"""`dockyard build`'s client side: the context tar as the docker CLI makes it
and the query it sends."""
import io
import json
import os
import tarfile

import pytest

from dockyard.cli import build


def members(buf: io.BytesIO) -> dict[str, tarfile.TarInfo]:
    buf.seek(0)
    with tarfile.open(fileobj=buf) as t:
        return {m.name: m for m in t.getmembers()}


def read(buf: io.BytesIO, name: str) -> bytes:
    buf.seek(0)
    with tarfile.open(fileobj=buf) as t:
        return t.extractfile(name).read()


@pytest.fixture
def ctx(tmp_path):
    root = tmp_path / "ctx"
    for name, text in {"Dockerfile": "FROM bb\n", "a.txt": "a", "secret": "s", "logs/x.log": "x",
                       "logs/keep.log": "k", "sub/Dockerfile.dev": "FROM bb\nRUN dev\n",
                       ".dockerignore": "secret\nlogs\n!logs/keep.log\nDockerfile\n"}.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    os.symlink("a.txt", root / "link")
    return root


def test_a_directory_context_honours_dockerignore_and_keeps_the_dockerfile(ctx, monkeypatch):
    monkeypatch.chdir(ctx.parent)
    buf = io.BytesIO()
    assert build._dir_context(buf, str(ctx), None, None) == "Dockerfile"
    m = members(buf)
    assert set(m) == {"Dockerfile", "a.txt", "logs/keep.log", "sub", "sub/Dockerfile.dev",   # (no "logs": excluded)
                      ".dockerignore", "link"}
    assert all(i.uid == 0 and i.gid == 0 and i.uname == "" for i in m.values())
    assert m["link"].issym() and m["link"].linkname == "a.txt"


def test_dockerfile_flag_is_relative_to_the_current_directory(ctx, monkeypatch):
    monkeypatch.chdir(ctx)
    buf = io.BytesIO()
    assert build._dir_context(buf, ".", "sub/Dockerfile.dev", None) == "sub/Dockerfile.dev"
    with pytest.raises(build._Failed, match="unable to prepare context: unable to evaluate symlinks in "
                                            "Dockerfile path: lstat .*/nope: no such file or directory"):
        build._dir_context(io.BytesIO(), ".", "nope", None)
    with pytest.raises(build._Failed, match='unable to prepare context: path "missing" not found'):
        build._dir_context(io.BytesIO(), "missing", None, None)


def test_a_dockerfile_outside_the_context_gets_a_random_name_the_daemon_drops(ctx, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside.Dockerfile").write_text("FROM bb\nRUN outside\n")
    buf = io.BytesIO()
    name = build._dir_context(buf, str(ctx), "outside.Dockerfile", None)
    assert name.startswith(".dockerfile.") and len(name) == len(".dockerfile.") + 20
    assert read(buf, name) == b"FROM bb\nRUN outside\n"
    assert read(buf, ".dockerignore").endswith(f"\n{name}\n".encode())
    assert "Dockerfile" not in members(buf)           # ignored, and no longer the build's Dockerfile
    # -f - : the Dockerfile from stdin, the same way
    buf = io.BytesIO()
    name = build._dir_context(buf, str(ctx), None, b"FROM bb\nRUN stdin\n")
    assert read(buf, name) == b"FROM bb\nRUN stdin\n"


def test_stdin_context_is_a_tar_or_a_bare_dockerfile():
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        build._add_file(t, "Dockerfile", b"FROM bb\n")
    out = io.BytesIO()
    assert build._stdin_context(out, tar.getvalue(), None) == "Dockerfile" and out.getvalue() == tar.getvalue()
    out = io.BytesIO()
    assert build._stdin_context(out, b"FROM bb\nRUN x\n", "ignored") == "Dockerfile"
    assert read(out, "Dockerfile") == b"FROM bb\nRUN x\n"


def test_query_from_flags(monkeypatch):
    monkeypatch.setenv("FROM_ENV", "e")
    monkeypatch.delenv("UNSET_ARG", raising=False)
    opts, _ = build.BUILD.parse(["-t", "a", "-t", "b:1", "--build-arg", "A=1", "--build-arg", "FROM_ENV",
                                 "--build-arg", "UNSET_ARG", "--label", "l=v", "--label", "bare", "-q",
                                 "--no-cache", "--rm=false", "--force-rm", "--network", "host",
                                 "--add-host", "h:1.2.3.4", "-m", "64m", "--ulimit", "nofile=10:20",
                                 "--target", "t", "--pull", "--iidfile", "f", "."], "dockyard build")
    q = build.query(opts, "Dockerfile")
    assert q["t"] == ["a", "b:1"] and q["q"] == 1 and q["nocache"] == 1 and q["rm"] == 0 and q["forcerm"] == 1
    assert json.loads(q["buildargs"]) == {"A": "1", "FROM_ENV": "e", "UNSET_ARG": None}
    assert json.loads(q["labels"]) == {"l": "v", "bare": ""}
    assert q["networkmode"] == "host" and q["extrahosts"] == ["h:1.2.3.4"] and q["memory"] == 64 << 20
    assert json.loads(q["ulimits"]) == [{"Name": "nofile", "Soft": 10, "Hard": 20}]
    assert q["target"] == "t" and q["pull"] == 1
    opts, _ = build.BUILD.parse(["."], "dockyard build")
    q = build.query(opts, "Dockerfile")
    assert q["rm"] == 1 and q["networkmode"] == "default" and q["buildargs"] is None

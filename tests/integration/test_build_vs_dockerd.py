"""The same Dockerfiles built by dockyardd and by a private reference dockerd
(tests/refdockerd.py; skipped where it is not available), both through the
docker CLI's classic builder: the image configs, the history lines and the
stream's steps must agree, COPY's source hashes (moby's tarsums) included."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

refdockerd = pytest.importorskip("refdockerd")

DOCKER = "/usr/local/bin/docker"

# Dockerfiles whose results must match, file name -> (Dockerfile, context files, build args)
CASES = {
    "app": ("""\
FROM bb
ARG GREETING=hello
ENV APP_HOME=/app NAME=world
WORKDIR $APP_HOME
COPY . .
RUN echo "$GREETING $NAME" > /app/greeting
USER 1234
EXPOSE 8080/tcp 9090
LABEL org.example.name="the app" version=1
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD cat /app/greeting
ENTRYPOINT ["cat"]
CMD ["/app/greeting"]
""", {"hello.txt": "hi\n"}, ["--build-arg", "GREETING=howdy"]),
    "meta": ("""\
FROM bb
SHELL ["/bin/sh", "-xc"]
RUN echo shelled
VOLUME ["/data", "/more"]
STOPSIGNAL SIGUSR1
ONBUILD RUN echo triggered
MAINTAINER someone
HEALTHCHECK NONE
ENV A=1 B="two words"
LABEL a=b
ENTRYPOINT echo ep
""", {}, ["--label", "cli=yes"]),
    "multistage": ("""\
FROM bb AS builder
RUN mkdir /out && echo built > /out/artifact
FROM bb
COPY --from=builder /out/artifact /artifact
WORKDIR /w
CMD ["cat", "/artifact"]
""", {}, []),
    "args": ("""\
ARG BASE=bb
FROM $BASE
ARG WHO
ARG LEVEL=3
ENV WHO_ENV=${WHO:-nobody} LEVEL=$LEVEL
RUN echo "$WHO at $LEVEL" > /who
RUN echo proxy is $HTTP_PROXY > /proxy
ARG LEVEL=4
RUN echo $LEVEL > /level
CMD echo $WHO_ENV
""", {}, ["--build-arg", "WHO=me", "--build-arg", "HTTP_PROXY=http://proxy:3128"]),
    "copy": ("""\
FROM bb
COPY dir /dir/
COPY one.txt two.txt /both/
COPY --chown=7:8 one.txt /owned
WORKDIR /tmp
WORKDIR rel
COPY one.txt .
""", {"dir/a.txt": "a\n", "dir/sub/b.txt": "b\n", "one.txt": "1\n", "two.txt": "2\n"}, []),
}

_CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
                "Healthcheck", "StopSignal", "OnBuild", "Shell", "ArgsEscaped")


@pytest.fixture(scope="module")
def ref_dockerd(busybox_tar):
    why = refdockerd.unavailable_reason()
    if why:
        pytest.skip(why)
    try:
        d = refdockerd.start_private_dockerd(image_tar=busybox_tar)
    except refdockerd.Unavailable as e:
        pytest.skip(str(e))
    yield d
    problems = d.stop()
    assert not problems, problems


def _build(host: str, env: dict, ctx, tag: str, extra: list[str]) -> str:
    e = dict(env)
    e["DOCKER_BUILDKIT"] = "0"
    r = subprocess.run([DOCKER, "-H", host, "build", "-t", tag, *extra, str(ctx)], env=e, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, (host, r.stdout, r.stderr)
    return r.stdout


def _inspect(host: str, env: dict, ref: str) -> dict:
    r = subprocess.run([DOCKER, "-H", host, "image", "inspect", ref], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def _history(host: str, env: dict, ref: str) -> list[str]:
    r = subprocess.run([DOCKER, "-H", host, "history", "--no-trunc", "--format", "{{.CreatedBy}}", ref], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # dockerd 20.10 wrote no space after --chown=x (moby 28 does)
    lines = [re.sub(r"--chown=(\S+?)(file|dir|multi):", r"--chown=\1 \2:", line) for line in r.stdout.splitlines()]
    return lines


def _no_hashes(lines: list[str]) -> list[str]:
    return [re.sub(r"\b(file|dir|multi):[0-9a-f]{64}", r"\1:<hash>", line) for line in lines]


def _as_dockerd(ours: list[str], version: str) -> list[str]:
    """Before Docker 25 a healthcheck had no StartInterval, so its history
    line has one duration less."""
    m = re.search(r"(\d+)\.\d+", version)          # "Docker version 20.10.24+dfsg1, build ..."
    if m is None or int(m.group(1)) >= 25:
        return ours
    return [re.sub(r'(HEALTHCHECK &\{\[.*?\] "[^"]*" "[^"]*" "[^"]*") "[^"]*"', r"\1", line) for line in ours]


def _config(doc: dict) -> dict:
    cfg = doc.get("Config") or {}
    return {k: (cfg.get(k) or None) for k in _CONFIG_KEYS}


def _steps(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("Step ")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_image_as_dockerd(daemon, bb_image, ref_dockerd, tmp_path, case):
    dockerfile, files, extra = CASES[case]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in files.items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(data)
    ours = _build(daemon.host, daemon.env, ctx, f"cmp-{case}", extra)
    theirs = _build(ref_dockerd.host, ref_dockerd.env, ctx, f"cmp-{case}", extra)
    assert _steps(ours) == _steps(theirs)
    a, b = _inspect(daemon.host, daemon.env, f"cmp-{case}"), _inspect(ref_dockerd.host, ref_dockerd.env,
                                                                     f"cmp-{case}")
    assert _config(a) == _config(b)
    assert a.get("Author", "") == b.get("Author", "")
    assert len(a["RootFS"]["Layers"]) == len(b["RootFS"]["Layers"])
    ours = _as_dockerd(_history(daemon.host, daemon.env, f"cmp-{case}"), refdockerd.dockerd_version())
    theirs = _history(ref_dockerd.host, ref_dockerd.env, f"cmp-{case}")
    if case == "multistage":
        # COPY --from's source hash is moby's lazy-source tarsum of an image's file, whose
        # header moby fills from the host's user database (uname/gname): compared by shape
        ours, theirs = _no_hashes(ours), _no_hashes(theirs)
    assert ours == theirs

"""The build engine (daemon/build/service.py) through POST /build: the docker
CLI's classic builder (DOCKER_BUILDKIT=0) and raw API requests against a
real dockyardd: instructions and the image config they make, history, the
stream's messages, the cache, multi-stage builds, failures that leave
nothing behind."""
from __future__ import annotations

import io
import json
import os
import tarfile
import time
from urllib.parse import quote


DOCKER = "/usr/local/bin/docker"


def _build_env(daemon) -> dict:
    env = dict(daemon.env)
    env["DOCKER_BUILDKIT"] = "0"
    return env


def build(daemon, ctx, *args, check=True, timeout=120):
    """`docker build` (classic builder) of context dir `ctx`."""
    return daemon._run([DOCKER, "-H", daemon.host, "build", *map(str, args), str(ctx)], check, timeout,
                       env=_build_env(daemon))


def write(ctx, files: dict) -> None:
    for name, data in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data) if isinstance(data, str) else p.write_bytes(data)


def context_tar(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def api_build(daemon, files: dict, query: str = "", timeout: float = 120) -> tuple[int, list[dict]]:
    status, body = daemon.api("POST", "/build" + (("?" + query) if query else ""), context_tar(files),
                              headers={"Content-Type": "application/x-tar"}, timeout=timeout)
    if status != 200:
        return status, [json.loads(body)]
    return status, [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def api_build_h(daemon, files: dict, query: str, headers: dict) -> tuple[int, list[dict]]:
    status, body = daemon.api("POST", "/build?" + query, context_tar(files),
                              headers={"Content-Type": "application/x-tar", **headers}, timeout=120)
    if status != 200:
        return status, [json.loads(body)]
    return status, [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def stream_text(msgs: list[dict]) -> str:
    return "".join(m.get("stream", "") for m in msgs)


def inspect(daemon, ref: str) -> dict:
    status, body = daemon.api("GET", f"/images/{ref}/json")
    assert status == 200, body
    return json.loads(body)


def history(daemon, ref: str) -> list[dict]:
    status, body = daemon.api("GET", f"/images/{ref}/history")
    assert status == 200, body
    return json.loads(body)


def containers(daemon) -> list[dict]:
    return json.loads(daemon.api("GET", "/containers/json?all=1")[1])


def overlay_mounts(daemon) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if str(daemon.data_root) in line.split()[1]]


APP = """\
FROM bb
ARG GREETING=hello
ENV APP_HOME=/app NAME=world
WORKDIR $APP_HOME
COPY . .
RUN echo "$GREETING $NAME" > /app/greeting && adduser -D -u 1234 appuser 2>/dev/null || true
USER 1234
EXPOSE 8080/tcp 9090
LABEL org.example.name="the app" version=1
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD cat /app/greeting
ENTRYPOINT ["cat"]
CMD ["/app/greeting"]
"""


def test_build_run_and_config(daemon, bb_image, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": APP, "hello.txt": "hi there\n", "secret.key": "nope\n", ".dockerignore": "*.key\n"})
    r = build(daemon, ctx, "-t", "app:1", "--build-arg", "GREETING=howdy")
    out = r.stdout
    assert "Step 1/12 : FROM bb" in out
    assert "Step 6/12 : RUN echo" in out
    assert " ---> Running in " in out
    assert " ---> Removed intermediate container " in out
    assert "Successfully built " in out and "Successfully tagged app:1" in out
    run = daemon.docker("run", "--rm", "app:1")
    assert run.stdout == "howdy world\n"
    ls = daemon.docker("run", "--rm", "--entrypoint", "ls", "app:1", "/app")
    assert ls.stdout.split() == sorted(["Dockerfile", "greeting", "hello.txt"])      # .dockerignore'd key absent
    cfg = inspect(daemon, "app:1")["Config"]
    assert cfg["Entrypoint"] == ["cat"] and cfg["Cmd"] == ["/app/greeting"]
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "1234"
    assert "APP_HOME=/app" in cfg["Env"] and "NAME=world" in cfg["Env"]
    assert not any(e.startswith("GREETING=") for e in cfg["Env"])       # build args stay out of the image
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "9090/tcp": {}}
    assert cfg["Labels"]["org.example.name"] == "the app" and cfg["Labels"]["version"] == "1"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "cat /app/greeting"], "Interval": 5000000000,
                                  "Timeout": 3000000000, "Retries": 2}
    hist = history(daemon, "app:1")
    created = [h["CreatedBy"] for h in hist]
    assert created[0] == '/bin/sh -c #(nop)  CMD ["/app/greeting"]'
    assert created[1] == '/bin/sh -c #(nop)  ENTRYPOINT ["cat"]'
    assert created[3] == '/bin/sh -c #(nop)  LABEL org.example.name=the app version=1'
    assert created[4] == "/bin/sh -c #(nop)  EXPOSE 8080/tcp 9090"
    assert created[5] == "/bin/sh -c #(nop)  USER 1234"
    assert created[6].startswith('|1 GREETING=howdy /bin/sh -c echo "$GREETING $NAME"')
    assert created[7].startswith("/bin/sh -c #(nop) COPY dir:") or created[7].startswith("/bin/sh -c #(nop) COPY")
    assert created[8] == "/bin/sh -c #(nop) WORKDIR /app"
    assert created[9] == "/bin/sh -c #(nop)  ENV APP_HOME=/app NAME=world"
    assert created[10] == "/bin/sh -c #(nop)  ARG GREETING=hello"
    # each step's image is the next one's parent; the intermediates are images too
    top = inspect(daemon, "app:1")
    assert top["Parent"].startswith("sha256:")
    assert inspect(daemon, top["Parent"])["Id"] == top["Parent"]
    # metadata steps add no layer; RUN, COPY and WORKDIR (a new dir) do
    assert len(top["RootFS"]["Layers"]) == len(inspect(daemon, "bb")["RootFS"]["Layers"]) + 3
    assert not [c for c in containers(daemon) if c["Image"].startswith("sha256:") or "app" in c["Image"]]


def test_cache_reuse_and_bust(daemon, bb_image, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM bb\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCMD [\"cat\", \"/b.txt\"]\n",
                "a.txt": "one\n"})
    first = build(daemon, ctx, "-t", "cached")
    assert "Using cache" not in first.stdout
    id1 = inspect(daemon, "cached")["Id"]
    second = build(daemon, ctx, "-t", "cached")
    assert second.stdout.count(" ---> Using cache") == 3
    assert " ---> Running in" not in second.stdout
    assert inspect(daemon, "cached")["Id"] == id1
    (ctx / "a.txt").write_text("two\n")
    third = build(daemon, ctx, "-t", "cached")
    assert " ---> Using cache" not in third.stdout       # the COPY missed, and everything after it
    assert daemon.docker("run", "--rm", "cached").stdout == "two\n"
    nocache = build(daemon, ctx, "--no-cache", "-t", "cached")
    assert "Using cache" not in nocache.stdout


def test_failing_run_leaves_nothing(daemon, bb_image, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM bb\nRUN echo before\nRUN echo out; exit 3\n"})
    before = {c["Id"] for c in containers(daemon)}
    r = build(daemon, ctx, check=False)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3" in r.stderr
    assert "out" in r.stdout
    assert {c["Id"] for c in containers(daemon)} == before
    assert not [m for m in overlay_mounts(daemon) if "/builder/" in m or "/overlay/" in m]
    assert os.listdir(daemon.data_root / "builder") == []
    # and the next build works
    write(ctx, {"Dockerfile": "FROM bb\nRUN echo fine\n"})
    assert "Successfully built" in build(daemon, ctx).stdout


def test_bad_input_words(daemon, bb_image):
    status, msgs = api_build(daemon, {"Dockerfile": "FROM bb\nFOO bar\n"})
    assert status == 400 and msgs[0]["message"] == \
        "dockerfile parse error on line 2: unknown instruction: FOO (did you mean FROM?)"
    status, msgs = api_build(daemon, {"Dockerfile": "FROM bb\nCOPY missing.txt /x\n"})
    assert status == 200
    assert "file not found in build context or excluded by .dockerignore" in msgs[-1]["error"]
    status, msgs = api_build(daemon, {"Dockerfile": "FROM nosuchimage-here\n"})
    assert "error" in msgs[-1] or status != 200
    status, msgs = api_build(daemon, {"Dockerfile": "FROM bb AS a\nFROM a\n"}, "target=zzz")
    assert status == 400 and msgs[0]["message"] == 'target stage "zzz" could not be found'


def test_stream_shapes_and_args(daemon, bb_image):
    files = {"Dockerfile": "ARG BASE=bb\nFROM $BASE\nARG WHO\nRUN echo hi $WHO\nENV X=${WHO:-nobody}\n"}
    status, msgs = api_build(daemon, files, "t=streamed&buildargs=" + quote(json.dumps({"WHO": "me", "UNUSED": "x"})))
    assert status == 200, msgs
    text = stream_text(msgs)
    assert text.startswith("Step 1/5 : ARG BASE=bb\nStep 2/5 : FROM $BASE\n ---> ")
    assert "hi me\n" in text
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in text
    aux = [m["aux"]["ID"] for m in msgs if "aux" in m]
    assert aux and aux[-1] == inspect(daemon, "streamed")["Id"]
    assert "X=me" in inspect(daemon, "streamed")["Config"]["Env"]
    results = [m for m in msgs if "cacheKey" in m]
    assert len(results) == 3 and all(len(m["cacheKey"]) == 64 for m in results)
    run_result = [m for m in results if "startTrace" in m]
    assert len(run_result) == 1 and run_result[0]["startTrace"]["Ok"] is True
    assert [s["Step"] for s in run_result[0]["startTrace"]["Steps"]][:2] == ["verify", "mount"]
    hist = history(daemon, "streamed")
    assert hist[1]["CreatedBy"] == "|1 WHO=me /bin/sh -c echo hi $WHO"


def test_multistage_target_and_copy_from(daemon, bb_image, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM bb AS builder\nRUN mkdir /out && echo built > /out/artifact\n"
                              "FROM bb AS final\nCOPY --from=builder /out/artifact /artifact\n"
                              "CMD [\"cat\", \"/artifact\"]\n"
                              "FROM bb AS other\nRUN false\n",
                "other.Dockerfile": "FROM bb\nCMD [\"echo\", \"other\"]\n"})
    build(daemon, ctx, "--target", "final", "-t", "ms")
    assert daemon.docker("run", "--rm", "ms").stdout == "built\n"
    build(daemon, ctx, "-f", str(ctx / "other.Dockerfile"), "-t", "otherdf")
    assert daemon.docker("run", "--rm", "otherdf").stdout == "other\n"


def test_metadata_instructions(daemon, bb_image):
    df = ("FROM bb\nSHELL [\"/bin/sh\", \"-xc\"]\nRUN echo shelled\nVOLUME [\"/data\", \"/more\"]\nSTOPSIGNAL SIGUSR1\n"
          "ONBUILD RUN echo triggered > /onbuild\nMAINTAINER someone\nHEALTHCHECK NONE\n"
          "ENTRYPOINT echo ep\n")
    status, msgs = api_build(daemon, {"Dockerfile": df}, "t=meta&labels=" + quote(json.dumps({"from.cli": "yes"})))
    assert status == 200, msgs
    cfg = inspect(daemon, "meta")["Config"]
    assert cfg["Shell"] == ["/bin/sh", "-xc"]
    assert cfg["StopSignal"] == "SIGUSR1"
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild"]
    assert cfg["Healthcheck"] == {"Test": ["NONE"]}
    assert cfg["Entrypoint"] == ["/bin/sh", "-xc", "echo ep"] and cfg.get("Cmd") is None
    assert cfg["Labels"] == {"from.cli": "yes"}
    assert inspect(daemon, "meta")["Author"] == "someone"
    hist = [h["CreatedBy"] for h in history(daemon, "meta")]
    assert hist[0] == "/bin/sh -xc #(nop)  LABEL from.cli=yes"
    assert hist[2] == '/bin/sh -xc #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" \'\\x00\'}'
    # ONBUILD triggers run when a later build starts FROM the image
    status, msgs = api_build(daemon, {"Dockerfile": "FROM meta\nCMD [\"x\"]\n"}, "t=child")
    assert status == 200, msgs
    assert "# Executing 1 build trigger\n" in stream_text(msgs), msgs
    assert "error" not in msgs[-1], msgs
    assert inspect(daemon, "child")["Config"].get("OnBuild") is None
    r = daemon.docker("run", "--rm", "--entrypoint", "cat", "child", "/onbuild")
    assert r.stdout == "triggered\n"


def test_prune_and_df(daemon, bb_image):
    status, msgs = api_build(daemon, {"Dockerfile": "FROM bb\nRUN echo x > /x\n"})
    assert status == 200
    df = json.loads(daemon.api("GET", "/system/df")[1])
    assert df["BuildCache"]
    status, body = daemon.api("POST", "/build/prune?all=1")
    assert status == 200
    reply = json.loads(body)
    assert reply["CachesDeleted"]
    assert json.loads(daemon.api("GET", "/system/df")[1])["BuildCache"] in ([], None)


def test_perf_ten_steps(daemon, bb_image, tmp_path, capsys):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM bb\nRUN echo 1 > /1\nRUN echo 2 > /2\nRUN echo 3 > /3\nRUN echo 4 > /4\n"
                              "RUN echo 5 > /5\nCOPY big.bin /big.bin\nENV A=b\nWORKDIR /w\nCMD [\"sh\"]\n",
                "big.bin": os.urandom(20 << 20)})
    t0 = time.perf_counter()
    build(daemon, ctx, "--no-cache", "-t", "perf")
    t1 = time.perf_counter()
    build(daemon, ctx, "-t", "perf")
    t2 = time.perf_counter()
    with capsys.disabled():
        print(f"\n10-step build: no-cache {t1 - t0:.2f}s, cached {t2 - t1:.2f}s")
    assert t1 - t0 < 30


def test_client_gone_mid_run_leaves_nothing(daemon, bb_image):
    import socket
    before = {c["Id"] for c in containers(daemon)}
    body = context_tar({"Dockerfile": "FROM bb\nRUN echo started; sleep 60\n"})
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(daemon.sock))
    s.sendall(b"POST /build HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    deadline = time.monotonic() + 30
    marker = b'"stream": "started\\n"'      # the RUN's own output line
    while marker not in got and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    assert b"Running in" in got and marker in got, got
    s.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if {c["Id"] for c in containers(daemon)} == before and \
                not [m for m in overlay_mounts(daemon) if "/overlay/" in m or "/builder/" in m]:
            break
        time.sleep(0.2)
    assert {c["Id"] for c in containers(daemon)} == before
    assert not [m for m in overlay_mounts(daemon) if "/overlay/" in m or "/builder/" in m]
    assert os.listdir(daemon.data_root / "builder") == []


def test_cache_from(daemon, bb_image):
    files = {"Dockerfile": "FROM bb\nENV A=1\nRUN echo cf > /cf\nCMD [\"cat\", \"/cf\"]\n"}
    status, msgs = api_build(daemon, files, "t=cfsrc")
    assert status == 200, msgs
    src = inspect(daemon, "cfsrc")["Id"]
    # the local cache serves a --cache-from build only along the given image's chain
    status, msgs = api_build(daemon, files, "t=cf2&cachefrom=" + quote(json.dumps(["cfsrc"])))
    assert stream_text(msgs).count(" ---> Using cache") == 3, msgs
    assert inspect(daemon, "cf2")["Id"] == src
    status, msgs = api_build(daemon, files, "t=cf3&cachefrom=" + quote(json.dumps(["bb"])))
    assert " ---> Using cache" not in stream_text(msgs)
    # without cache records, the given image's history serves the steps (moby's restoreCachedImage)
    assert daemon.api("POST", "/build/prune?all=1")[0] == 200
    status, msgs = api_build(daemon, files, "t=cf4&cachefrom=" + quote(json.dumps(["cfsrc"])))
    assert stream_text(msgs).count(" ---> Using cache") == 3, msgs
    assert inspect(daemon, "cf4")["Id"] == src
    assert daemon.docker("run", "--rm", "cf4").stdout == "cf\n"


def test_from_private_registry_pulls_with_registry_config(daemon, bb_image):
    import base64

    from registry_util import LocalRegistry
    reg = LocalRegistry(users={"alice": "s3cret"})
    try:
        ref = f"{reg.host}/base:1"
        daemon.docker("tag", bb_image, ref)
        auth = base64.urlsafe_b64encode(json.dumps({"username": "alice", "password": "s3cret",
                                                    "serveraddress": reg.host}).encode()).decode()
        status, body = daemon.api("POST", f"/images/{quote(reg.host + '/base', safe='')}/push?tag=1",
                                  headers={"X-Registry-Auth": auth}, timeout=60)
        assert status == 200 and b"errorDetail" not in body, body
        daemon.docker("rmi", ref)
        files = {"Dockerfile": f"FROM {ref}\nRUN echo pulled > /p\n"}
        status, msgs = api_build(daemon, files, "t=frompriv")          # no credentials: refused
        assert status != 200 or "error" in msgs[-1], msgs
        cfg = base64.b64encode(json.dumps({reg.host: {"username": "alice", "password": "s3cret"}}).encode())
        status, msgs = api_build_h(daemon, files, "t=frompriv", {"X-Registry-Config": cfg.decode()})
        assert status == 200 and "error" not in msgs[-1], msgs
        assert any("Pulling" in (m.get("status") or "") or "Downloaded" in (m.get("status") or "")
                   for m in msgs), msgs
        assert daemon.docker("run", "--rm", "frompriv", "cat", "/p").stdout == "pulled\n"
    finally:
        reg.stop()


def test_platform_mismatch_words(daemon, bb_image):
    status, msgs = api_build(daemon, {"Dockerfile": "FROM --platform=linux/s390x bb\n"})
    text = msgs[-1].get("error") or msgs[-1].get("message")
    assert text.startswith("image with reference bb was found but its platform (linux/"), msgs
    assert text.endswith("does not match the specified platform (linux/s390x)")


def test_copy_add_ownership_modes_and_archives(daemon, bb_image, tmp_path):
    ctx = tmp_path / "ctx"
    arch = io.BytesIO()
    with tarfile.open(fileobj=arch, mode="w:gz") as tf:
        data = b"from the archive\n"
        ti = tarfile.TarInfo("inner/file.txt")
        ti.size, ti.uid, ti.gid = len(data), 42, 43
        tf.addfile(ti, io.BytesIO(data))
    write(ctx, {"Dockerfile": "FROM bb\nRUN echo app:x:1500:1500::/:/bin/sh >> /etc/passwd && echo grp:x:1600: >> /etc/group\n"
                              "COPY --chown=app:grp f.txt /owned/\nCOPY --chmod=0600 f.txt /private.txt\n"
                              "ADD pack.tar.gz /unpacked/\nCOPY pack.tar.gz /kept/\n"
                              "FROM bb\nCOPY --from=0 /owned/f.txt /from0.txt\n",
                "f.txt": "content\n", "pack.tar.gz": arch.getvalue()})
    status, msgs = api_build(daemon, {"Dockerfile": (ctx / "Dockerfile").read_text(), "f.txt": "content\n",
                                      "pack.tar.gz": arch.getvalue()}, "t=owners")
    assert status == 200 and "error" not in msgs[-1], msgs
    # the first stage, by its id in the stream (aux after each stage)
    first = [m["aux"]["ID"] for m in msgs if "aux" in m][0]
    r = daemon.docker("run", "--rm", first, "sh", "-c",
                      "stat -c '%u:%g %a' /owned/f.txt /private.txt /unpacked/inner/file.txt; "
                      "cat /unpacked/inner/file.txt; ls /kept")
    assert r.stdout.splitlines() == ["1500:1600 644", "0:0 600", "42:43 644", "from the archive",
                                     "pack.tar.gz"], r.stdout
    r = daemon.docker("run", "--rm", "owners", "stat", "-c", "%u:%g", "/from0.txt")
    assert r.stdout == "1500:1600\n"          # COPY --from keeps the owners it finds
    hist = [h["CreatedBy"] for h in history(daemon, first)]
    assert hist[0].startswith("/bin/sh -c #(nop) COPY file:") and hist[0].endswith(" in /kept/ ")
    assert hist[3].startswith("/bin/sh -c #(nop) COPY --chown=app:grp file:")


def test_copy_chown_unknown_user(daemon, bb_image):
    status, msgs = api_build(daemon, {"Dockerfile": "FROM bb\nCOPY --chown=nobody-here f /f\n", "f": "x"})
    assert "unable to convert uid/gid chown string to host mapping: unable to find user nobody-here" \
        in msgs[-1]["error"], msgs


def test_add_url(daemon, bb_image):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/data.txt":
                body = b"downloaded\n"
                self.send_response(200)
                self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
            else:
                body = b"no such thing"
                self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        status, msgs = api_build(daemon, {"Dockerfile": f"FROM bb\nADD {base}/data.txt /d/\n"}, "t=addurl")
        assert status == 200 and "error" not in msgs[-1], msgs
        r = daemon.docker("run", "--rm", "addurl", "sh", "-c", "stat -c '%a %Y' /d/data.txt; cat /d/data.txt")
        assert r.stdout == "600 1445412480\ndownloaded\n"
        status, msgs = api_build(daemon, {"Dockerfile": f"FROM bb\nADD {base}/missing /m\n"})
        assert msgs[-1]["error"] == f"ADD failed: failed to GET {base}/missing with status 404 Not Found: " \
                                    "no such thing"
        status, msgs = api_build(daemon, {"Dockerfile": f"FROM bb\nCOPY {base}/data.txt /m\n"})
        assert msgs[-1]["error"] == "COPY failed: source can't be a URL for COPY"
    finally:
        srv.shutdown()


def test_rm_false_keeps_the_step_containers(daemon, bb_image):
    before = {c["Id"] for c in containers(daemon)}
    status, msgs = api_build(daemon, {"Dockerfile": "FROM bb\nRUN echo kept > /k\n"}, "rm=0&t=rmfalse")
    assert status == 200 and "error" not in msgs[-1], msgs
    assert "Removed intermediate container" not in stream_text(msgs)
    kept = [c for c in containers(daemon) if c["Id"] not in before]
    assert len(kept) == 1
    # the kept container still has its change; so does the image
    r = daemon.docker("diff", kept[0]["Id"])
    assert "A /k" in r.stdout
    assert daemon.docker("run", "--rm", "rmfalse", "cat", "/k").stdout == "kept\n"
    daemon.docker("rm", kept[0]["Id"])


def test_run_gets_network_mode_extra_hosts_and_limits(daemon, bb_image):
    df = ("FROM bb\nRUN grep -c : /proc/net/dev; grep buildhost /etc/hosts; "
          "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max\n")
    q = "networkmode=none&extrahosts=buildhost:10.1.2.3&memory=" + str(64 << 20)
    status, msgs = api_build(daemon, {"Dockerfile": df}, q)
    assert status == 200 and "error" not in msgs[-1], msgs
    out = stream_text(msgs)
    assert "\n1\n" in out                                   # no interface but lo
    assert "10.1.2.3\tbuildhost" in out or "10.1.2.3 buildhost" in out, out
    assert str(64 << 20) in out


def test_scratch_stages(daemon, bb_image):
    df = ("FROM scratch AS files\nCOPY a.txt /a.txt\nENV X=1\n"
          "FROM bb\nCOPY --from=files /a.txt /from-scratch.txt\nCMD [\"cat\", \"/from-scratch.txt\"]\n")
    status, msgs = api_build(daemon, {"Dockerfile": df, "a.txt": "scratch file\n"}, "t=fromscratch")
    assert status == 200 and "error" not in msgs[-1], msgs
    assert "Step 1/6 : FROM scratch AS files\n ---> \n" in stream_text(msgs)
    first = [m["aux"]["ID"] for m in msgs if "aux" in m][0]
    doc = inspect(daemon, first)
    assert len(doc["RootFS"]["Layers"]) == 1 and doc["Config"]["Env"][-1] == "X=1"
    assert daemon.docker("run", "--rm", "fromscratch").stdout == "scratch file\n"
    status, msgs = api_build(daemon, {"Dockerfile": "FROM scratch\n"})
    assert msgs[-1].get("error") == "No image was generated. Is your Dockerfile empty?", msgs


def test_dockerignore_symlink_never_reads_the_host(daemon, bb_image, tmp_path):
    # .dockerignore a symlink to a host file that would exclude secret.txt: it is
    # resolved inside the context (where that path does not exist), so nothing is excluded
    host_file = tmp_path / "host-ignore"
    host_file.write_text("secret.txt\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("Dockerfile", b"FROM bb\nCOPY secret.txt /ctx/\n"), ("secret.txt", b"copied\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo(".dockerignore")
        ti.type, ti.linkname = tarfile.SYMTYPE, str(host_file)
        tf.addfile(ti)
    status, body = daemon.api("POST", "/build?t=ignlink", buf.getvalue(),
                              headers={"Content-Type": "application/x-tar"}, timeout=120)
    msgs = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    assert status == 200 and "error" not in msgs[-1], msgs
    assert daemon.docker("run", "--rm", "ignlink", "cat", "/ctx/secret.txt").stdout == "copied\n"

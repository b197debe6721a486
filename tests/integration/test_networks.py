"""User-defined networks, DNS, connect/disconnect, port publishing: docker CLI and docker-py
against a real dockyardd. Traffic goes only to loopback and the test's own containers."""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import free_subnet


def uname(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 10) -> str:
    """GET, retrying while the server in a just-started container is not listening yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.read().decode()
        except urllib.error.URLError as e:
            if not isinstance(e.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def ports_of(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


@pytest.fixture
def www(daemon, bb_image):
    """A network with an httpd container `db-XXXX` (alias `data-XXXX`) serving a page."""
    net, db, alias = uname("app"), uname("db"), uname("data")
    subnet = free_subnet()
    daemon.docker("network", "create", "--subnet", subnet, net)
    daemon.docker("run", "-d", "--network", net, "--network-alias", alias, "--name", db, bb_image,
                  "sh", "-c", f"mkdir -p /www && echo hello-{db} > /www/index.html && httpd -f -p 80 -h /www")
    ip = json.loads(daemon.docker("inspect", db).stdout)[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
    # ready when it answers by address (names are what the tests check)
    daemon.docker("run", "--rm", "--network", net, bb_image, "sh", "-c",
                  f"for i in $(seq 100); do wget -qO- http://{ip}/ >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1")
    yield {"net": net, "db": db, "alias": alias, "subnet": subnet}
    daemon.docker("rm", "-f", db, check=False)
    daemon.docker("network", "rm", net, check=False)


def test_containers_reach_each_other_by_name_and_alias(daemon, bb_image, www):
    for host in (www["db"], www["alias"]):
        r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "wget", "-qO-", f"http://{host}/")
        assert r.stdout.strip() == f"hello-{www['db']}"
    r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "sh", "-c",
                      f"ping -c1 -W2 {www['db']} && nslookup {www['alias']}")
    ip = json.loads(daemon.docker("inspect", www["db"]).stdout)[0]["NetworkSettings"]["Networks"][www["net"]]
    assert ip["IPAddress"] in r.stdout and ipaddress.ip_address(ip["IPAddress"]) in ipaddress.ip_network(
        www["subnet"])
    assert www["alias"] in ip["Aliases"]


def test_default_bridge_has_no_names_but_links_do(daemon, bb_image):
    db = uname("srv")
    daemon.docker("run", "-d", "--name", db, bb_image, "sleep", "60")
    try:
        # --dns 127.0.0.1: the lookup never leaves the container (no nsswitch.conf: glibc asks DNS first)
        r = daemon.docker("run", "--rm", "--dns", "127.0.0.1", "--link", f"{db}:dbalias", bb_image, "sh", "-c",
                          "cat /etc/hosts; ping -c1 -W2 dbalias")
        assert "dbalias" in r.stdout and " 0% packet loss" in r.stdout
    finally:
        daemon.docker("rm", "-f", db)


def test_publish_on_loopback_and_docker_port(daemon, bb_image):
    port = free_port()
    name = uname("web")
    daemon.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", bb_image, "sh", "-c",
                  "mkdir -p /www && echo published > /www/index.html && httpd -f -p 80 -h /www")
    try:
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "published"
        assert daemon.docker("port", name).stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
        daemon.docker("restart", "-t", "0", name)   # ports go with the old start and come back with the new
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "published"
        # the port is held: a second container cannot take it, and nothing of it is left behind
        before = ports_of(daemon.bridge)
        r = daemon.docker("run", "-d", "-p", f"127.0.0.1:{port}:80", bb_image, "sleep", "5", check=False)
        assert r.returncode != 0 and "already allocated" in r.stderr
        assert ports_of(daemon.bridge) == before
    finally:
        daemon.docker("rm", "-f", name)
    daemon.docker("container", "prune", "-f")


def test_publish_all_picks_a_free_port(daemon, bb_image):
    name = uname("pub")
    daemon.docker("run", "-d", "--name", name, "--expose", "80", "-P", bb_image, "sh", "-c",
                  "mkdir -p /www && echo any > /www/index.html && httpd -f -p 80 -h /www")
    try:
        ports = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Ports"]
        host_port = int(ports["80/tcp"][0]["HostPort"])
        lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        assert lo <= host_port <= hi
        assert http_get(f"http://127.0.0.1:{host_port}/").strip() == "any"
        assert f"0.0.0.0:{host_port}->80/tcp" in daemon.docker("ps", "--filter", f"name={name}").stdout
    finally:
        daemon.docker("rm", "-f", name)


def test_connect_and_disconnect_live(daemon, bb_image, www):
    name = uname("live")
    daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "300")
    try:
        daemon.docker("network", "connect", "--alias", "late", www["net"], name)
        out = daemon.docker("exec", name, "ip", "-o", "-4", "addr").stdout
        assert "eth1" in out
        db_ip = json.loads(daemon.docker("inspect", www["db"]).stdout)[0]["NetworkSettings"]["Networks"][
            www["net"]]["IPAddress"]
        r = daemon.docker("exec", name, "wget", "-qO-", f"http://{db_ip}/")
        assert r.stdout.strip() == f"hello-{www['db']}"
        # its first user network: as with dockerd, its resolv.conf now names the embedded resolver
        assert "nameserver 127.0.0.11" in daemon.docker("exec", name, "cat", "/etc/resolv.conf").stdout
        r = daemon.docker("exec", name, "wget", "-qO-", f"http://{www['db']}/")
        assert r.stdout.strip() == f"hello-{www['db']}"
        net = json.loads(daemon.docker("network", "inspect", www["net"]).stdout)[0]
        assert any(v["Name"] == name for v in net["Containers"].values())
        r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "ping", "-c1", "-W2", "late")
        assert " 0% packet loss" in r.stdout
        daemon.docker("network", "disconnect", www["net"], name)
        assert "eth1" not in daemon.docker("exec", name, "ip", "-o", "link").stdout
        net = json.loads(daemon.docker("network", "inspect", www["net"]).stdout)[0]
        assert not any(v["Name"] == name for v in net["Containers"].values())
    finally:
        daemon.docker("rm", "-f", name)


def test_internal_network_has_no_route_out(daemon, bb_image):
    net = uname("int")
    daemon.docker("network", "create", "--internal", "--subnet", free_subnet(), net)
    try:
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "ip", "route")
        assert "default" not in r.stdout and "dev eth0" in r.stdout
        gw = json.loads(daemon.docker("network", "inspect", net).stdout)[0]["IPAM"]["Config"][0]["Gateway"]
        # the bridge answers, nothing beyond it is routed
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "sh", "-c",
                          f"ping -c1 -W2 {gw} >/dev/null && echo gw-ok; ping -c1 -W1 192.0.2.1 2>&1", check=False)
        assert "gw-ok" in r.stdout and "unreachable" in (r.stdout + r.stderr).lower()
        # its DNS server answers for the network, and forwards nothing (SERVFAIL at once)
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "nslookup", "outside.invalid", check=False)
        assert r.returncode != 0 and "SERVFAIL" in (r.stdout + r.stderr)
    finally:
        daemon.docker("network", "rm", net)


def test_errors_leave_nothing_behind(daemon, bb_image, www):
    r = daemon.docker("network", "create", "--subnet", www["subnet"], uname("dup"), check=False)
    assert r.returncode != 0 and "Pool overlaps with other one on this address space" in r.stderr
    r = daemon.docker("network", "rm", www["net"], check=False)
    assert r.returncode != 0 and "has active endpoints" in r.stderr
    r = daemon.docker("run", "--rm", "--network", "nope-" + uname(""), bb_image, "true", check=False)
    assert r.returncode != 0 and "not found" in r.stderr
    bridge = "br-" + json.loads(daemon.docker("network", "inspect", www["net"]).stdout)[0]["Id"][:12]
    before = ports_of(bridge)
    outside = str(ipaddress.ip_network(free_subnet()).network_address + 5)
    r = daemon.docker("run", "--rm", "--network", www["net"], "--ip", outside, bb_image, "true", check=False)
    assert r.returncode != 0 and "out of range" in r.stderr
    assert ports_of(bridge) == before
    status, body = daemon.api("GET", "/networks/" + uname("missing"))
    assert status == 404 and b"not found" in body
    status, body = daemon.api("DELETE", "/networks/bridge")
    assert status == 403


def test_docker_py_network_api(daemon, bb_image):
    import docker
    client = daemon.client()
    subnet = ipaddress.ip_network(free_subnet())
    name = uname("py")
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=str(subnet), gateway=str(subnet.network_address + 1))])
    net = client.networks.create(name, driver="bridge", ipam=ipam, labels={"t": name})
    c = client.containers.run(bb_image, ["sleep", "300"], detach=True, name=uname("pyc"))
    try:
        static = str(subnet.network_address + 50)
        net.connect(c, aliases=["pyalias"], ipv4_address=static)
        net.reload()
        assert net.attrs["IPAM"]["Config"][0]["Subnet"] == str(subnet)
        assert net.attrs["Labels"] == {"t": name}
        entry = net.attrs["Containers"][c.id]
        assert entry["IPv4Address"] == f"{static}/24"
        c.reload()
        assert c.attrs["NetworkSettings"]["Networks"][name]["IPAddress"] == static
        assert "pyalias" in c.attrs["NetworkSettings"]["Networks"][name]["Aliases"]
        r = daemon.docker("run", "--rm", "--network", name, bb_image, "ping", "-c1", "-W2", "pyalias")
        assert f"({static})" in r.stdout and " 0% packet loss" in r.stdout
        assert client.networks.get(net.id[:10]).name == name
        assert name in [n.name for n in client.networks.list(names=[name])]
        net.disconnect(c)
    finally:
        c.remove(force=True)
    pruned = client.networks.prune(filters={"label": f"t={name}"})
    assert name in (pruned["NetworksDeleted"] or [])
    assert {"bridge", "host", "none"} <= {n.name for n in client.networks.list()}


def test_everything_is_gone_after_rm_and_prune(daemon, bb_image):
    from dockyard.network import firewall
    net = uname("gone")
    daemon.docker("network", "create", "--subnet", free_subnet(), net)
    nid = json.loads(daemon.docker("network", "inspect", net).stdout)[0]["Id"]
    bridge = "br-" + nid[:12]
    name = uname("g")
    port = free_port()
    daemon.docker("run", "-d", "--network", net, "--name", name, "-p", f"127.0.0.1:{port}:80",
                  bb_image, "sleep", "300")
    info = json.loads(daemon.docker("inspect", name).stdout)[0]
    veth, ip = info["NetworkSettings"]["Networks"][net]["EndpointID"], info["NetworkSettings"]["Networks"][net][
        "IPAddress"]
    ports_table = firewall.table_name(daemon.bridge) + "-ports"

    def ports_rules() -> str:
        return subprocess.run(["nft", "list", "table", "ip", ports_table], capture_output=True, text=True).stdout

    assert bridge in links() and veth in ports_of(bridge) and f"{ip} . 80" in ports_rules()
    net_table = firewall.network_table(daemon.bridge, bridge)
    assert net_table in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert os.listdir(daemon.exec_root / "netns") == [info["Id"]]
    daemon.docker("rm", "-f", name)
    daemon.docker("network", "prune", "-f")
    # the kernel deletes a namespace's veth pair when it frees the namespace, a moment later
    for _ in range(100):
        if veth not in links():
            break
        time.sleep(0.05)
    assert bridge not in links() and veth not in links()
    assert os.listdir(daemon.exec_root / "netns") == []
    assert str(port) not in ports_rules() and ip not in ports_rules()
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert bridge not in tables and net_table not in tables
    with socket.socket() as s:   # the held host port is free again
        s.bind(("127.0.0.1", port))


def test_run_flags_static_ip_mac_hostname_dns_and_hosts(daemon, bb_image, www):
    subnet = ipaddress.ip_network(www["subnet"])
    ip, mac = str(subnet.network_address + 77), "02:42:ac:11:00:99"
    r = daemon.docker("run", "--rm", "--network", www["net"], "--ip", ip, "--mac-address", mac,
                      "--hostname", "box", "--domainname", "example.test", "--add-host", "gw:host-gateway",
                      "--add-host", "pinned:10.1.2.3", "--dns-search", "corp.test", "--dns-option", "ndots:2",
                      bb_image, "sh", "-c", "ip -o -4 addr show eth0; ip link show eth0; hostname; "
                      "cat /etc/hosts /etc/resolv.conf")
    out = r.stdout
    assert f"inet {ip}/24" in out and mac in out
    gateway = str(subnet.network_address + 1)
    default_gw = json.loads(daemon.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    assert f"{default_gw}\tgw" in out and "10.1.2.3\tpinned" in out
    assert f"{ip}\tbox.example.test box" in out
    # Docker's embedded resolver, not the gateway (the DNS server listened there before)
    assert "nameserver 127.0.0.11" in out and gateway not in out.split("nameserver", 1)[1]
    assert "search corp.test" in out and "options ndots:2" in out
    # --dns on the default bridge is written as given
    r = daemon.docker("run", "--rm", "--dns", "10.9.9.9", bb_image, "cat", "/etc/resolv.conf")
    assert "nameserver 10.9.9.9" in r.stdout


def test_icc_false_isolates_containers_but_not_the_gateway(daemon, bb_image):
    net = uname("icc")
    subnet = ipaddress.ip_network(free_subnet())
    daemon.docker("network", "create", "--subnet", str(subnet), "-o", "com.docker.network.bridge.enable_icc=false",
                  net)
    peer = uname("p")
    try:
        daemon.docker("run", "-d", "--network", net, "--name", peer, bb_image, "sleep", "300")
        peer_ip = str(subnet.network_address + 2)
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "sh", "-c",
                          f"ping -c1 -W2 {subnet.network_address + 1} >/dev/null && echo gw-ok; "
                          f"ping -c1 -W1 {peer_ip} >/dev/null && echo peer-ok", check=False)
        assert "gw-ok" in r.stdout and "peer-ok" not in r.stdout
    finally:
        daemon.docker("rm", "-f", peer)
        daemon.docker("network", "rm", net)


def test_our_cli_network_commands_and_port(daemon, bb_image):
    net, name = uname("cli"), uname("cp")
    subnet = free_subnet()
    nid = daemon.dockyard("network", "create", "--subnet", subnet, "--label", "k=v", net).stdout.strip()
    assert len(nid) == 64
    assert net in daemon.dockyard("network", "ls").stdout
    assert daemon.dockyard("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
                           net).stdout.strip() == subnet
    port = free_port()
    daemon.dockyard("run", "-d", "--name", name, "--network", net, "--network-alias", "cli-alias",
                    "-p", f"127.0.0.1:{port}:80", bb_image, "sleep", "300")
    try:
        assert daemon.dockyard("port", name).stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
        assert daemon.dockyard("port", name, "80").stdout.strip() == f"127.0.0.1:{port}"
        r = daemon.dockyard("run", "--rm", "--network", net, bb_image, "ping", "-c1", "-W2", "cli-alias")
        assert " 0% packet loss" in r.stdout
        r = daemon.dockyard("network", "rm", net, check=False)
        assert r.returncode != 0 and "active endpoints" in r.stderr
    finally:
        daemon.dockyard("rm", "-f", name)
    assert daemon.dockyard("network", "rm", net).stdout.strip() == net


def test_networks_and_published_ports_survive_a_daemon_restart(daemon, bb_image, www):
    port = free_port()
    name = uname("rs")
    daemon.docker("run", "-d", "--name", name, "--network", www["net"], "-p", f"127.0.0.1:{port}:80", bb_image,
                  "sh", "-c", "mkdir -p /www && echo again > /www/index.html && httpd -f -p 80 -h /www")
    try:
        daemon.restart()
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "again"
        r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "wget", "-qO-", f"http://{name}/")
        assert r.stdout.strip() == "again"
    finally:
        daemon.docker("rm", "-f", name)


def test_networks_are_isolated_from_each_other(daemon, bb_image, www):
    other = uname("iso")
    daemon.docker("network", "create", "--subnet", free_subnet(), other)
    try:
        db_ip = json.loads(daemon.docker("inspect", www["db"]).stdout)[0]["NetworkSettings"]["Networks"][
            www["net"]]["IPAddress"]
        r = daemon.docker("run", "--rm", "--network", other, bb_image, "sh", "-c",
                          f"ping -c1 -W1 {db_ip} >/dev/null && echo crossed || echo blocked")
        assert r.stdout.strip() == "blocked"
        r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "sh", "-c",
                          f"ping -c1 -W2 {db_ip} >/dev/null && echo reached")
        assert r.stdout.strip() == "reached"
    finally:
        daemon.docker("network", "rm", other)


def test_after_a_crash_missing_rules_come_back(daemon, bb_image, www):
    port = free_port()
    keep = uname("keep")
    daemon.docker("run", "-d", "--name", keep, "--network", www["net"], "-p", f"127.0.0.1:{port}:80", bb_image,
                  "sh", "-c", "mkdir -p /www && echo kept > /www/index.html && httpd -f -p 80 -h /www")
    try:
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "kept"
        daemon.kill9()
        # host state lost while the daemon was down: its NAT, network and port tables
        from dockyard.network import firewall
        tables = [t for t in subprocess.run(["nft", "list", "tables", "ip"], capture_output=True,
                                            text=True).stdout.split()
                  if t.startswith(firewall.table_name(daemon.bridge))]
        assert len(tables) >= 3
        for t in tables:
            subprocess.run(["nft", "delete", "table", "ip", t], check=True)
        daemon.start()
        listed = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True).stdout.split()
        assert set(tables) <= set(listed)
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "kept"
        r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "wget", "-qO-", f"http://{keep}/")
        assert r.stdout.strip() == "kept"
    finally:
        daemon.docker("rm", "-f", keep, check=False)


def test_two_networks_at_create_and_published_port_range_seen_from_another_network(daemon, bb_image, www):
    """A container on two networks (NetworkingConfig) answers on both; its port, published from a
    host-port range, is reached through DNAT from a container on the default bridge (as another host)."""
    second = uname("two")
    daemon.docker("network", "create", "--subnet", free_subnet(), second)
    name = uname("dual")
    lo = free_port()
    try:
        body = {"Image": bb_image, "Cmd": ["sh", "-c", "mkdir -p /www && echo dual > /www/index.html && "
                                           "httpd -f -p 80 -h /www"],
                "ExposedPorts": {"80/tcp": {}},
                "HostConfig": {"NetworkMode": www["net"],
                               "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": f"{lo}-{lo + 5}"}]}},
                "NetworkingConfig": {"EndpointsConfig": {www["net"]: {}, second: {"Aliases": ["second-alias"]}}}}
        status, out = daemon.api("POST", f"/containers/create?name={name}", body)
        assert status == 201, out
        daemon.docker("start", name)
        info = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]
        assert set(info["Networks"]) == {www["net"], second}
        host_port = int(info["Ports"]["80/tcp"][0]["HostPort"])
        assert lo <= host_port <= lo + 5
        out = daemon.docker("run", "--rm", "--network", second, bb_image, "sh", "-c",
                            "for i in $(seq 100); do wget -qO- http://second-alias/ && exit 0; sleep 0.05; done; "
                            "exit 1").stdout
        assert out.strip() == "dual"
        gw = json.loads(daemon.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
        r = daemon.docker("run", "--rm", bb_image, "wget", "-qO-", f"http://{gw}:{host_port}/")
        assert r.stdout.strip() == "dual"
    finally:
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("network", "rm", second)


def test_connect_while_stopped_applies_at_start_and_rename_is_resolved(daemon, bb_image, www):
    name, new = uname("st"), uname("rn")
    daemon.docker("create", "--name", name, bb_image, "sleep", "300")
    try:
        daemon.docker("network", "connect", "--alias", "stopped-alias", www["net"], name)
        daemon.docker("start", name)
        nets = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Networks"]
        assert set(nets) == {"bridge", www["net"]} and nets[www["net"]]["IPAddress"]
        daemon.docker("rename", name, new)
        r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "sh", "-c",
                          f"ping -c1 -W2 {new} >/dev/null && ping -c1 -W2 stopped-alias >/dev/null && echo both")
        assert r.stdout.strip() == "both"
    finally:
        daemon.docker("rm", "-f", new, name, check=False)


def test_ps_filters_network_publish_expose(daemon, bb_image, www):
    name = uname("flt")
    daemon.docker("run", "-d", "--name", name, "--network", www["net"], "-p", f"127.0.0.1:{free_port()}:80",
                  "--expose", "7000/udp", bb_image, "sleep", "300")
    try:
        def ps(*filters):
            args = [a for f in filters for a in ("--filter", f)]
            return daemon.docker("ps", "--format", "{{.Names}}", *args).stdout.split()
        assert name in ps(f"network={www['net']}") and www["db"] in ps(f"network={www['net']}")
        assert name not in ps("network=bridge")
        assert ps(f"name={name}", "publish=80") == [name] and ps(f"name={name}", "publish=81") == []
        assert ps(f"name={name}", "expose=7000/udp") == [name]
    finally:
        daemon.docker("rm", "-f", name)


def test_network_events(daemon, bb_image):
    import time as _time
    since = str(int(_time.time()) - 1)
    net = uname("ev")
    daemon.docker("network", "create", "--subnet", free_subnet(), net)
    daemon.docker("network", "rm", net)
    until = str(int(_time.time()) + 1)
    out = daemon.docker("events", "--since", since, "--until", until, "--filter", "type=network",
                        "--format", "{{.Action}} {{.Actor.Attributes.name}}").stdout.split("\n")
    assert f"create {net}" in out and f"destroy {net}" in out


def test_network_without_subnet_gets_a_free_one(daemon, bb_image):
    net = uname("auto")
    daemon.docker("network", "create", net)
    try:
        subnet = ipaddress.ip_network(json.loads(daemon.docker("network", "inspect", net).stdout)[0]["IPAM"][
            "Config"][0]["Subnet"])
        default = json.loads(daemon.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Subnet"]
        assert not subnet.overlaps(ipaddress.ip_network(default))
        r = daemon.docker("run", "--rm", "--network", net, bb_image, "ip", "-o", "-4", "addr", "show", "eth0")
        assert str(subnet.network_address + 2) in r.stdout
    finally:
        daemon.docker("network", "rm", net)


def test_hairpin_a_container_reaches_published_ports_through_the_host(daemon, bb_image, www):
    name = uname("hp")
    port = free_port()
    daemon.docker("run", "-d", "--name", name, "--network", www["net"], "-p", f"{port}:80", bb_image, "sh", "-c",
                  "mkdir -p /www && echo hairpin > /www/index.html && httpd -f -p 80 -h /www")
    try:
        gw = str(ipaddress.ip_network(www["subnet"]).network_address + 1)
        http_get(f"http://127.0.0.1:{port}/")   # up
        # a neighbour on the same bridge, and the container itself, through the host's address
        r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "wget", "-qO-", f"http://{gw}:{port}/")
        assert r.stdout.strip() == "hairpin"
        r = daemon.docker("exec", name, "wget", "-qO-", f"http://{gw}:{port}/")
        assert r.stdout.strip() == "hairpin"
    finally:
        daemon.docker("rm", "-f", name)


def test_mac_address_on_the_default_bridge(daemon, bb_image):
    mac = "02:42:ac:11:00:42"
    r = daemon.docker("run", "--rm", "--mac-address", mac, bb_image, "ip", "link", "show", "eth0")
    assert mac in r.stdout


def test_disconnecting_the_first_network_keeps_the_others_for_the_next_start(daemon, bb_image, www):
    other = uname("sec")
    daemon.docker("network", "create", "--subnet", free_subnet(), other)
    name = uname("dc")
    daemon.docker("run", "-d", "--name", name, "--network", other, bb_image, "sleep", "300")
    try:
        daemon.docker("network", "connect", www["net"], name)
        daemon.docker("network", "disconnect", other, name)
        daemon.docker("restart", "-t", "0", name)
        nets = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Networks"]
        assert list(nets) == [www["net"]] and nets[www["net"]]["IPAddress"]
        assert "eth0" in daemon.docker("exec", name, "ip", "-o", "-4", "addr").stdout
    finally:
        daemon.docker("rm", "-f", name)
        daemon.docker("network", "rm", other)


def test_bad_input_statuses_and_a_failed_start_leaves_nothing_half_made(daemon, bb_image, www):
    """Issue 3's 'Bad input' over the raw API (Docker's status and wording), and a start that fails
    after its address and veth were made (host port taken by a program that is not dockyard)
    gives back the veth, the address, the netns and the held ports, and adds no DNAT element."""
    from dockyard.network import firewall
    dup, v6, missing = uname("dup"), uname("v6"), uname("missing")
    status, body = daemon.api("POST", "/networks/create",
                              {"Name": dup, "IPAM": {"Config": [{"Subnet": www["subnet"]}]}})
    assert status == 403 and b"Pool overlaps with other one on this address space" in body
    status, body = daemon.api("DELETE", f"/networks/{www['net']}")
    assert status == 403 and f"error while removing network: network {www['net']} ".encode() in body
    assert b"has active endpoints" in body
    status, body = daemon.api("GET", f"/networks/{missing}")
    assert (status, json.loads(body)["message"]) == (404, f"network {missing} not found")
    # IPv6 networks are made (test_ipv6_networks.py); an IPv6 subnet without EnableIPv6 is refused
    status, body = daemon.api("POST", "/networks/create",
                              {"Name": v6, "IPAM": {"Config": [{"Subnet": "fd00:77::/64"}]}})
    assert status == 400 and b"EnableIPv6" in body
    names = daemon.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert dup not in names and v6 not in names
    # invalid port specs: 400 at create, no container
    for bad in ({"80/tcp": [{"HostPort": "99999"}]}, {"80/sctp": [{}]}, {"x/tcp": [{}]},
                {"80/tcp": [{"HostPort": "90-80"}]}):
        name = uname("badp")
        status, body = daemon.api("POST", f"/containers/create?name={name}",
                                  {"Image": bb_image, "Cmd": ["true"], "HostConfig": {"PortBindings": bad}})
        assert status == 400 and b"invalid" in body, (bad, body)
        assert daemon.docker("inspect", name, check=False).returncode != 0

    bridge = "br-" + json.loads(daemon.docker("network", "inspect", www["net"]).stdout)[0]["Id"][:12]
    ports_table = firewall.table_name(daemon.bridge) + "-ports"

    def state():
        net = json.loads(daemon.docker("network", "inspect", www["net"]).stdout)[0]
        rules = subprocess.run(["nft", "list", "table", "ip", ports_table], capture_output=True, text=True).stdout
        return (ports_of(bridge), sorted(os.listdir(daemon.exec_root / "netns")), sorted(net["Containers"]),
                rules)

    before = state()
    subnet = ipaddress.ip_network(www["subnet"])
    used = {str(subnet.network_address + 1)} | {v["IPv4Address"].split("/")[0]
                                                for v in json.loads(daemon.docker(
                                                    "network", "inspect", www["net"]).stdout)[0][
                                                    "Containers"].values()}
    lowest_free = next(str(h) for h in subnet.hosts() if str(h) not in used)
    name = uname("taken")
    with socket.socket() as other:   # a host program listening on the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        try:
            # 80 (a random host port, held first) then 81 (taken): the held one is let go
            r = daemon.docker("run", "-d", "--name", name, "--network", www["net"], "-p", "127.0.0.1::80",
                              "-p", f"127.0.0.1:{port}:81", bb_image, "sleep", "300", check=False)
            assert r.returncode != 0 and f"127.0.0.1:{port} failed: port is already allocated" in r.stderr
            assert state() == before
            assert json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Ports"] in ({}, None)
        finally:
            daemon.docker("rm", "-f", name, check=False)
    # the address the failed start had is free again: the next container gets the lowest free one
    r = daemon.docker("run", "--rm", "--network", www["net"], bb_image, "ip", "-o", "-4", "addr", "show", "eth0")
    assert f"inet {lowest_free}/" in r.stdout
    with socket.socket() as s:   # the port it held is free again
        s.bind(("127.0.0.1", port))


def test_network_prune_until_keeps_newer_networks(daemon, bb_image):
    label = uname("pr")
    net = uname("until")
    daemon.docker("network", "create", "--subnet", free_subnet(), "--label", label, net)
    try:
        created = json.loads(daemon.docker("network", "inspect", net).stdout)[0]["Created"]
        assert created
        old = str(int(time.time()) - 3600)
        out = daemon.docker("network", "prune", "-f", "--filter", f"until={old}", "--filter",
                            f"label={label}").stdout
        assert net not in out
        assert daemon.docker("network", "inspect", net, check=False).returncode == 0
        out = daemon.docker("network", "prune", "-f", "--filter", "until=1h", "--filter", f"label={label}").stdout
        assert net not in out   # a duration back from now: created an hour ago at most
        r = daemon.docker("network", "prune", "-f", "--filter", "until=yesterday", check=False)
        assert r.returncode != 0 and "invalid until filter" in r.stderr
        out = daemon.docker("network", "prune", "-f", "--filter", f"until={int(time.time()) + 5}", "--filter",
                            f"label={label}").stdout
        assert net in out
        assert daemon.docker("network", "inspect", net, check=False).returncode != 0
    finally:
        daemon.docker("network", "rm", net, check=False)


def test_bridge_name_option_and_predefined_networks_cannot_go(daemon, bb_image):
    br, net, name = "dyn" + secrets.token_hex(4), uname("brn"), uname("b")
    daemon.docker("network", "create", "--subnet", free_subnet(), "-o", f"com.docker.network.bridge.name={br}", net)
    try:
        assert br in links()
        daemon.docker("run", "-d", "--name", name, "--network", net, bb_image, "sleep", "300")
        veth = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Networks"][net]["EndpointID"]
        assert ports_of(br) == [veth]
        opts = json.loads(daemon.docker("network", "inspect", net).stdout)[0]["Options"]
        assert opts["com.docker.network.bridge.name"] == br
    finally:
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("network", "rm", net, check=False)
    assert br not in links()
    for predefined in ("bridge", "host", "none"):
        status, body = daemon.api("DELETE", f"/networks/{predefined}")
        assert status == 403 and b"pre-defined network and cannot be removed" in body
        r = daemon.docker("network", "rm", predefined, check=False)
        assert r.returncode != 0 and "cannot be removed" in r.stderr
    assert {"bridge", "host", "none"} <= set(daemon.docker("network", "ls", "--format", "{{.Name}}").stdout.split())


def test_published_ports_answer_on_both_families(daemon, bb_image):
    """-p PORT:80 is 0.0.0.0 and [::] as with dockerd (IPv6 relayed by the daemon to the IPv4 container);
    -p [::1]:PORT:80 only on IPv6 loopback, -p 0.0.0.0:PORT:80 only on IPv4."""
    both, v6, v4 = free_port(), free_port(), free_port()
    name = uname("dual")
    daemon.docker("run", "-d", "--name", name, "-p", f"{both}:80", "-p", f"[::1]:{v6}:81", "-p",
                  f"0.0.0.0:{v4}:82", bb_image, "sh", "-c",
                  "mkdir -p /www && echo both > /www/index.html && (httpd -p 81 -h /www; httpd -p 82 -h /www; "
                  "exec httpd -f -p 80 -h /www)")
    try:
        assert http_get(f"http://127.0.0.1:{both}/").strip() == "both"
        assert http_get(f"http://[::1]:{both}/").strip() == "both"
        assert http_get(f"http://[::1]:{v6}/").strip() == "both"
        assert http_get(f"http://127.0.0.1:{v4}/").strip() == "both"
        for host, port in (("127.0.0.1", v6), ("::1", v4)):   # nothing there
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
                assert s.connect_ex((host, port)) != 0, (host, port)
        lines = sorted(daemon.docker("port", name).stdout.strip().splitlines())
        assert lines == sorted([f"80/tcp -> 0.0.0.0:{both}", f"80/tcp -> [::]:{both}", f"81/tcp -> [::1]:{v6}",
                                f"82/tcp -> 0.0.0.0:{v4}"])
        ports = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Ports"]
        assert ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(both)},
                                   {"HostIp": "::", "HostPort": str(both)}]
        assert f"[::]:{both}->80/tcp" in daemon.docker("ps", "--filter", f"name={name}").stdout
        daemon.restart()   # the relay comes back with the re-adopted container
        assert http_get(f"http://[::1]:{both}/").strip() == "both"
        daemon.docker("restart", "-t", "0", name)   # its ports go and come back on the same numbers
        assert http_get(f"http://127.0.0.1:{both}/").strip() == "both"   # waits for httpd
        # the relay accepts, then closes when the container refuses (docker-proxy does the same)
        assert http_get(f"http://[::1]:{both}/").strip() == "both"
    finally:
        daemon.docker("rm", "-f", name)
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        with socket.socket(family) as s:   # free again, both families (the relay's TIME_WAITs may stay)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, both))
            s.listen()

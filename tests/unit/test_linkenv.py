"""Legacy links' environment (network/linkenv.py) against what dockerd sets (moby's daemon/links;
the values as a dockerd showed them for `--link tgt:al` to a container with `--expose 80
--expose 8080 --expose 53/udp -e FOO=bar -e HOME=/x -e PATH=/bin -e HOSTNAME=h`)."""
from __future__ import annotations

from dockyard.network import etcfiles, linkenv
from dockyard.runtime.command import DEFAULT_PATH, merge_env


def test_ports_name_and_env_as_dockerd():
    env = linkenv.env_vars("/lnk/al", "10.0.0.2", ["FOO=bar", "HOME=/x", "PATH=/bin", "HOSTNAME=h"],
                           ["8080/tcp", "53/udp", "80/tcp"])
    assert env == [
        # the first port (tcp first, then by number: moby's withTCPPriority) is ALIAS_PORT
        "AL_PORT=tcp://10.0.0.2:80",
        "AL_PORT_80_TCP=tcp://10.0.0.2:80", "AL_PORT_80_TCP_ADDR=10.0.0.2", "AL_PORT_80_TCP_PORT=80",
        "AL_PORT_80_TCP_PROTO=tcp",
        "AL_PORT_8080_TCP=tcp://10.0.0.2:8080", "AL_PORT_8080_TCP_ADDR=10.0.0.2", "AL_PORT_8080_TCP_PORT=8080",
        "AL_PORT_8080_TCP_PROTO=tcp",
        "AL_PORT_53_UDP=udp://10.0.0.2:53", "AL_PORT_53_UDP_ADDR=10.0.0.2", "AL_PORT_53_UDP_PORT=53",
        "AL_PORT_53_UDP_PROTO=udp",
        "AL_NAME=/lnk/al",
        # HOME and PATH are left out, HOSTNAME is not
        "AL_ENV_FOO=bar", "AL_ENV_HOSTNAME=h",
    ]


def test_alias_is_upper_case_with_underscores_and_no_ports_means_no_port_vars():
    assert linkenv.env_vars("/web/my-db", "10.0.0.3", ["X", "A=b=c"], []) == [
        "MY_DB_NAME=/web/my-db", "MY_DB_ENV_A=b=c"]


def test_consecutive_ports_also_get_start_and_end():
    env = linkenv.env_vars("/p/r", "1.2.3.4", [], ["7001/tcp", "7000/tcp", "7002/tcp", "9000/tcp"])
    assert env[0] == "R_PORT=tcp://1.2.3.4:7000"
    assert [e for e in env if "START" in e or "END" in e] == [
        "R_PORT_7000_TCP_START=tcp://1.2.3.4:7000", "R_PORT_7000_TCP_PORT_START=7000",
        "R_PORT_7000_TCP_END=tcp://1.2.3.4:7002", "R_PORT_7000_TCP_PORT_END=7002"]
    # every port still has its own four
    assert sum(e.startswith("R_PORT_9000_TCP") for e in env) == 4
    # a range at the very end is closed too
    tail = linkenv.env_vars("/p/r", "1.2.3.4", [], ["80/tcp", "81/tcp"])
    assert "R_PORT_80_TCP_END=tcp://1.2.3.4:81" in tail


def test_link_env_goes_after_the_defaults_and_the_request_overrides_it():
    env = merge_env(["IMG=1"], ["AL_NAME=mine"], "h", False, ["AL_NAME=/x/al", "AL_PORT=tcp://a:1"])
    assert env == ["PATH=" + DEFAULT_PATH, "HOSTNAME=h", "AL_NAME=mine", "AL_PORT=tcp://a:1", "IMG=1"]


def test_drop_hosts_entry_removes_only_the_links_line(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n10.0.0.2\tal 65100bae1c91 tgt\n10.0.0.2\ttgt 65100bae1c91\n"
                     "10.0.0.3\tself\n")
    ino = hosts.stat().st_ino
    etcfiles.drop_hosts_entry(str(hosts), "al")
    assert hosts.read_text() == "127.0.0.1\tlocalhost\n10.0.0.2\ttgt 65100bae1c91\n10.0.0.3\tself\n"
    assert hosts.stat().st_ino == ino      # rewritten in place: the container's bind mount sees it
    etcfiles.drop_hosts_entry(str(hosts), "nothing")
    assert hosts.read_text().count("\n") == 3


def test_link_aliases_on_a_user_network_answer_only_the_linking_container(tmp_path):
    from dockyard.network.endpoint import Endpoint
    from dockyard.network.names import NameRegistry
    from dockyard.network.store import NetworkStore
    from dockyard.store.db import Database
    store = NetworkStore(Database(str(tmp_path / "db.sqlite")))
    net = "u" * 64
    store.create_network(net, "front", "br-front", "10.9.0.0/24", "10.9.0.1", {})
    store.save_endpoint(Endpoint("w" * 64, "front", net, "/ns1", ip="10.9.0.2", prefixlen=24, name="web"))
    store.save_endpoint(Endpoint("c" * 64, "front", net, "/ns2", ip="10.9.0.3", prefixlen=24, name="client",
                                 links='[["db", "web"], ["Other", "/' + "w" * 12 + '"], ["gone", "nobody"]]'))
    names = NameRegistry(store, lambda cid: None)
    mine = names.names(net, "10.9.0.3")
    assert mine["db"] == mine["other"] == ["10.9.0.2"] and "gone" not in mine
    assert "db" not in names.names(net, "10.9.0.2") and "db" not in names.names(net)


def test_an_older_database_gains_the_links_column(tmp_path):
    import sqlite3

    from dockyard.network.store import NetworkStore
    from dockyard.store.db import Database
    path = str(tmp_path / "db.sqlite")
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE attachments (container_id TEXT NOT NULL, network TEXT NOT NULL, network_id TEXT "
                "NOT NULL, netns_path TEXT NOT NULL, ip TEXT, prefixlen INTEGER, gateway TEXT, mac TEXT, host_veth "
                "TEXT, subnet TEXT, hostname TEXT, ifname TEXT NOT NULL DEFAULT 'eth0', aliases TEXT NOT NULL "
                "DEFAULT '[]', name TEXT, PRIMARY KEY (container_id, network_id))")
    old.execute("INSERT INTO attachments (container_id, network, network_id, netns_path) VALUES ('c', 'n', 'i', '/p')")
    old.commit()
    old.close()
    store = NetworkStore(Database(path))
    assert [ep.link_list for ep in store.endpoints()] == [[]]

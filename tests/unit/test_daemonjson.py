"""daemon.json's rules (dockerd's) and the -H forms."""
from __future__ import annotations

import pytest

from dockyard import daemonjson, dockyardd, listeners
from dockyard.daemonjson import ConfigError


def test_unknown_keys_are_refused_with_dockerds_words():
    with pytest.raises(ConfigError) as e:
        daemonjson.parse('{"debug": true, "no-such": 1, "also-not": 2}', "/etc/d.json")
    assert str(e.value) == ("unable to configure the Docker daemon with file /etc/d.json: the following "
                            "directives don't match any configuration option: also-not, no-such")


def test_a_syntax_error_names_line_and_column():
    with pytest.raises(ConfigError) as e:
        daemonjson.parse('{\n  "debug": true,\n  "labels": [x]\n}', "/f")
    assert "syntax error at line 3, column 14" in str(e.value)


@pytest.mark.parametrize("doc,key", [('{"debug": "yes"}', "debug"), ('{"labels": "a=b"}', "labels"),
                                     ('{"max-concurrent-downloads": true}', "max-concurrent-downloads"),
                                     ('{"log-opts": {"max-size": 10}}', "log-opts")])
def test_wrong_types_name_the_key(doc, key):
    with pytest.raises(ConfigError) as e:
        daemonjson.parse(doc, "/f")
    assert f"invalid value for '{key}'" in str(e.value)


def test_a_flag_and_a_key_both_given_are_refused():
    explicit = dockyardd.explicit_flags(["-D", "--label", "a=b"])
    with pytest.raises(ConfigError) as e:
        daemonjson.conflicts(explicit, {"debug": False, "labels": ["c=d"], "bridge": "x"}, "/f")
    assert str(e.value) == ("unable to configure the Docker daemon with file /f: the following directives are "
                            "specified both as a flag and in the configuration file: debug: (from flag: true, "
                            "from file: false), labels: (from flag: [a=b], from file: [c=d])")


def test_explicit_flags_sees_only_what_was_given():
    assert dockyardd.explicit_flags([]) == {}
    got = dockyardd.explicit_flags(["--tls=false", "-H", "unix:///a", "-H", "tcp://:1"])
    assert got == {"tls": False, "host": ["unix:///a", "tcp://:1"]}


def test_the_default_file_is_optional_a_named_one_is_not(tmp_path):
    assert daemonjson.load(str(tmp_path / "none.json"), required=False) == {}
    with pytest.raises(ConfigError, match="no such file or directory"):
        daemonjson.load(str(tmp_path / "none.json"), required=True)


def test_file_values_fill_the_flags(tmp_path):
    f = tmp_path / "d.json"
    f.write_text('{"labels": ["a=b"], "log-opts": {"max-size": "1m"}, "insecure-registries": ["r:5000"],'
                 ' "hosts": ["unix:///x.sock"], "data-root": "/tmp/dr", "debug": true}')
    args = dockyardd.parse_args(["--config-file", str(f), "--bridge", "br0"])
    assert args.label == ["a=b"] and args.log_opt == ["max-size=1m"]
    assert args.insecure_registry == ["r:5000"] and args.host == ["unix:///x.sock"]
    assert args.data_root == "/tmp/dr" and args.debug is True and args.bridge == "br0"


def test_ulimit_flag_as_docker_parses_it():
    assert daemonjson.parse_ulimit_flag("nofile=1024:2048") == ("nofile", {"Name": "nofile", "Soft": 1024,
                                                                          "Hard": 2048})
    assert daemonjson.parse_ulimit_flag("nproc=50")[1]["Hard"] == 50
    with pytest.raises(ConfigError):
        daemonjson.parse_ulimit_flag("nofile=9:1")


@pytest.mark.parametrize("text,tls,want", [
    ("tcp://", False, "tcp://127.0.0.1:2375"), ("tcp://", True, "tcp://127.0.0.1:2376"),
    ("tcp://0.0.0.0:9", False, "tcp://0.0.0.0:9"), ("tcp://[::1]:7", True, "tcp://[::1]:7"),
    ("tcp://:12", False, "tcp://127.0.0.1:12"), ("unix:///run/x.sock", False, "unix:///run/x.sock"),
    ("/run/y.sock", False, "unix:///run/y.sock"), ("fd://", False, "fd://"), ("fd://api", False, "fd://api")])
def test_hosts_parse_as_dockers(text, tls, want):
    assert str(listeners.parse_host(text, tls)) == want


@pytest.mark.parametrize("text", ["udp://x:1", "tcp://h:99999", "nohost", "unix://"])
def test_bad_hosts_are_refused(text):
    with pytest.raises(listeners.ListenError):
        listeners.parse_host(text, False)


def test_sd_notify_speaks_the_datagram_protocol(tmp_path, monkeypatch):
    import socket
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert listeners.sd_notify("READY=1")
    assert s.recv(64) == b"READY=1"
    s.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not listeners.sd_notify("READY=1")

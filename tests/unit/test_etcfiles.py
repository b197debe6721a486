"""The /etc files a container gets."""
import os

import pytest

from dockyard.errors import InvalidParameter
from dockyard.network.etcfiles import (hosts_content, read_host_resolv_conf,
                                       resolv_conf_content, write_etc_files)

DEFAULTS = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
]


def test_hosts_like_docker():
    assert hosts_content("abc123", "", "172.17.0.2").splitlines() == DEFAULTS + ["172.17.0.2\tabc123"]


def test_hosts_with_domain_and_extra_hosts():
    text = hosts_content("web", "example.com", "10.0.0.5",
                         ["db:10.0.0.9", "v6host:::1", "br:[fe80::1]", "eq=1.2.3.4"])
    assert text.splitlines()[6:] == [
        "10.0.0.9\tdb", "::1\tv6host", "fe80::1\tbr", "1.2.3.4\teq",
        "10.0.0.5\tweb.example.com web",
    ]


def test_hosts_without_network_has_no_own_record():
    assert hosts_content("abc", "", None).splitlines() == DEFAULTS


def test_bad_extra_host():
    with pytest.raises(InvalidParameter):
        hosts_content("a", "", None, ["no-address"])


def test_resolv_conf_drops_loopback_and_ipv6_keeps_search_and_options():
    host = ("# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\n"
            "nameserver fd00::1\nsearch corp.example lab.example\noptions ndots:2 edns0\n")
    assert resolv_conf_content(host) == (
        "nameserver 10.0.0.1\nsearch corp.example lab.example\noptions ndots:2 edns0\n")


def test_resolv_conf_falls_back_to_google_when_only_loopback():
    host = "nameserver 127.0.0.1\nsearch lan\n"
    assert resolv_conf_content(host) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\n"
    assert resolv_conf_content("") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_conf_overrides():
    host = "nameserver 10.0.0.1\nsearch lan\noptions ndots:2\n"
    assert resolv_conf_content(host, dns=["1.1.1.1"], dns_search=["a.example"],
                               dns_options=["timeout:1"]) == (
        "nameserver 1.1.1.1\nsearch a.example\noptions timeout:1\n")
    assert resolv_conf_content(host, dns_search=["."]) == "nameserver 10.0.0.1\noptions ndots:2\n"


def test_systemd_resolved_stub_is_replaced_by_its_upstreams(tmp_path):
    stub = tmp_path / "resolv.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    upstream = tmp_path / "upstream.conf"
    upstream.write_text("nameserver 192.0.2.53\n")
    assert read_host_resolv_conf(str(stub), str(upstream)) == "nameserver 192.0.2.53\n"
    assert read_host_resolv_conf(str(tmp_path / "missing")) == ""


def test_write_etc_files(tmp_path):
    host = tmp_path / "host-resolv.conf"
    host.write_text("nameserver 10.9.9.9\n")
    files = write_etc_files(str(tmp_path / "c1"), "c1host", "", "10.1.0.2",
                            extra_hosts=["x:10.1.0.50"], host_resolv_conf=str(host))
    assert set(files) == {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    assert open(files["/etc/hostname"]).read() == "c1host\n"
    assert open(files["/etc/hosts"]).read().splitlines()[-2:] == ["10.1.0.50\tx", "10.1.0.2\tc1host"]
    assert open(files["/etc/resolv.conf"]).read() == "nameserver 10.9.9.9\n"
    for path in files.values():
        assert os.path.dirname(path) == str(tmp_path / "c1")
        assert os.stat(path).st_mode & 0o777 == 0o644

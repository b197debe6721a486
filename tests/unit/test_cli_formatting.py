"""Human-readable output helpers, checked against docker's go-units."""
import pytest

from dockyard.cli import formatting
from dockyard.cli.logs import api_timestamp, parse_go_duration
from dockyard.cli.ps import format_ports


@pytest.mark.parametrize("seconds, expected", [
    (0, "Less than a second"), (0.9, "Less than a second"), (1, "1 second"), (2, "2 seconds"),
    (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"),
    (3599, "59 minutes"), (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"),
    (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (13 * 86400, "13 days"), (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"), (60 * 86400, "2 months"), (729 * 86400, "24 months"),
    (730 * 86400, "2 years"),
])
def test_human_duration(seconds, expected):
    assert formatting.human_duration(seconds) == expected


def test_ago():
    assert formatting.ago(100, now=105) == "5 seconds ago"
    assert formatting.ago(110, now=105) == "Less than a second ago"


@pytest.mark.parametrize("size, expected", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (4261000, "4.26MB"), (187654321, "188MB"),
    (1.5e12, "1.5TB"),
])
def test_human_size(size, expected):
    assert formatting.human_size(size) == expected


def test_bytes_size_is_binary():
    assert formatting.bytes_size(4123456789) == "3.84GiB"


def test_tabulate_pads_like_docker():
    lines = formatting.tabulate(["CONTAINER ID\tIMAGE\tNAMES", "abc\tbusybox:latest\tx"])
    assert lines == ["CONTAINER ID   IMAGE            NAMES", "abc            busybox:latest   x"]


def test_ellipsis_and_quote():
    assert formatting.ellipsis("/docker-entrypoint.sh nginx", 20) == "/docker-entrypoint.…"
    assert formatting.ellipsis("short", 20) == "short"
    assert formatting.go_quote('say "hi"\n') == '"say \\"hi\\"\\n"'


@pytest.mark.parametrize("text, expected", [
    ("1970-01-01T00:00:00Z", 0.0),
    ("2025-01-02T03:04:05Z", 1735787045.0),
    ("2025-01-02T03:04:05.5+01:00", 1735787045.5 - 3600),
    ("2025-01-02T03:04:05.123456789Z", 1735787045.123456789),
    ("0001-01-01T00:00:00Z", None),
    ("garbage", None),
])
def test_parse_rfc3339(text, expected):
    assert formatting.parse_rfc3339(text) == (pytest.approx(expected) if expected is not None else None)


def test_ports_like_docker():
    ports = [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"PrivatePort": 443, "Type": "tcp"}, {"PrivatePort": 444, "Type": "tcp"},
             {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"}]
    assert format_ports(ports) == \
        "0.0.0.0:53->53/udp, 443-444/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"


def test_log_timestamps():
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5s") == 1.5
    assert parse_go_duration("soon") is None
    assert api_timestamp("10m", now=1000.0) == "400"
    assert api_timestamp("2025-01-02T03:04:05Z") == "1735787045.000000000"
    assert api_timestamp("1700000000.5") == "1700000000.5"
    assert api_timestamp("") is None

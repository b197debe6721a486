"""The one size parser (go-units), Go duration parser and RFC 3339 parser."""
from __future__ import annotations

import pytest

from dockyard import durations, timestamps, units


@pytest.mark.parametrize("text, ram, human", [
    ("100", 100, 100),
    ("64m", 64 << 20, 64_000_000),
    ("64MiB", 64 << 20, 64_000_000),
    ("64mb", 64 << 20, 64_000_000),
    ("1.5g", 3 << 29, 1_500_000_000),
    ("512k", 512 << 10, 512_000),
    ("1kB", 1024, 1000),
    ("10 m", 10 << 20, 10_000_000),
    ("32.3", 32, 32),
    ("0.3MB", 314572, 300_000),
    ("1e3k", 1000 << 10, 1_000_000),
    ("5B", 5, 5),
    ("2P", 2 << 50, 2 * 10 ** 15),
])
def test_sizes(text, ram, human):
    assert units.ram_in_bytes(text) == ram
    assert units.from_human_size(text) == human


@pytest.mark.parametrize("text, message", [
    ("lots", "invalid size: 'lots'"),
    ("", "invalid size: ''"),
    ("-1", "invalid size: '-1'"),
    ("12x", "invalid suffix: 'x'"),
    ("12KBB", "invalid suffix: 'kbb'"),
    ("12kibb", "invalid suffix: 'kibb'"),
    ("12bb", "invalid suffix: 'bb'"),
    ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
])
def test_bad_sizes(text, message):
    with pytest.raises(units.SizeError) as e:
        units.ram_in_bytes(text)
    assert str(e.value) == message


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("0s", 0), ("1h30m", 5400 * 10 ** 9), ("1.5s", 1_500_000_000), ("-2m", -120 * 10 ** 9),
    ("+3ms", 3_000_000), (".5s", 500_000_000), ("1.s", 10 ** 9), ("2us", 2000), ("2µs", 2000),
    ("1h1.5m", 3690 * 10 ** 9), ("300ms", 300_000_000), ("7ns", 7),
])
def test_durations(text, ns):
    assert durations.parse_ns(text) == ns
    assert durations.parse_seconds(text) == pytest.approx(ns / 1e9)


@pytest.mark.parametrize("text, message", [
    ("", 'time: invalid duration ""'),
    ("-", 'time: invalid duration "-"'),
    ("10", 'time: missing unit in duration "10"'),
    ("5x", 'time: unknown unit "x" in duration "5x"'),
    (".s", 'time: invalid duration ".s"'),
    ("s", 'time: invalid duration "s"'),
    ("1h-5m", 'time: unknown unit "h-" in duration "1h-5m"'),
    ("9999999999h", 'time: invalid duration "9999999999h"'),
])
def test_bad_durations(text, message):
    with pytest.raises(ValueError) as e:
        durations.parse_ns(text)
    assert str(e.value) == message


@pytest.mark.parametrize("text, ns", [
    ("1970-01-01T00:00:00Z", 0),
    ("2025-01-02T03:04:05Z", 1735787045 * 10 ** 9),
    ("2025-01-02T03:04:05.5+01:00", (1735787045 - 3600) * 10 ** 9 + 500_000_000),
    ("2025-01-02T03:04:05.123456789Z", 1735787045123456789),
    ("2025-01-02T03:04:05.1234567891234-00:30", 1735787045123456789 + 1800 * 10 ** 9),
    ("2026-11-28T04:08:57.319585609+00:00", 1795838937319585609),
])
def test_rfc3339(text, ns):
    assert timestamps.parse_ns(text) == ns
    assert timestamps.parse(text) == pytest.approx(ns / 1e9)


@pytest.mark.parametrize("text", ["garbage", "2025-01-02", "2025-01-02T03:04:05", "2025-13-02T03:04:05Z",
                                  "2025-01-02T24:04:05Z", "2025-01-02T03:04:05+0100"])
def test_bad_rfc3339(text):
    with pytest.raises(ValueError):
        timestamps.parse_ns(text)


def test_format_and_get_timestamp():
    assert timestamps.format_ns(1735787045123456789) == "2025-01-02T03:04:05.123456789Z"
    assert timestamps.format_ns(1735787045 * 10 ** 9) == "2025-01-02T03:04:05Z"
    assert timestamps.get_timestamp_ns("1700000000.5") == 1_700_000_000_500_000_000
    assert timestamps.get_timestamp_ns("2023-11-14T22:13:20Z") == 1_700_000_000 * 10 ** 9
    assert timestamps.get_timestamp_ns("10m", now=1000.0) == 400 * 10 ** 9
    with pytest.raises(ValueError, match="failed to parse value as time or duration"):
        timestamps.get_timestamp_ns("soon")
    assert timestamps.is_zero(timestamps.ZERO_TIME)

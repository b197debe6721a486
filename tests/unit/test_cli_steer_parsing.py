"""CLI parsing for events/update and system df's summary arithmetic."""
from __future__ import annotations

import pytest

from dockyard.cli.disk import df_rows
from dockyard.cli.events import parse_duration, timestamp
from dockyard.cli.flags import UsageError
from dockyard.cli.steer import ram_in_bytes


def test_durations_and_timestamps():
    assert parse_duration("1m") == 60 and parse_duration("1h30m") == 5400 and parse_duration("0s") == 0
    assert parse_duration("1.5s") == 1.5 and parse_duration("-2m") == -120
    assert parse_duration("abc") is None and parse_duration("10") is None
    assert timestamp("1m", 1000.7) == "940" and timestamp("0s", 1000.7) == "1000"
    assert timestamp("1700000000.5", 0) == "1700000000.5"
    assert timestamp("2026-01-01T00:00:00Z", 0) == "1767225600.000000000"
    with pytest.raises(UsageError):
        timestamp("yesterday", 0)


def test_ram_in_bytes():
    assert ram_in_bytes("64m", "memory") == 64 << 20
    assert ram_in_bytes("1.5g", "memory") == 3 << 29
    assert ram_in_bytes("512KiB", "memory") == 512 << 10
    assert ram_in_bytes("100", "memory") == 100 and ram_in_bytes("-1", "memory-swap") == -1
    with pytest.raises(UsageError, match="invalid size"):
        ram_in_bytes("lots", "memory")


def test_df_rows_like_docker():
    du = {"LayersSize": 1000,
          "Images": [{"Size": 600, "SharedSize": 100, "Containers": 1}, {"Size": 500, "SharedSize": 100,
                                                                          "Containers": 0}],
          "Containers": [{"SizeRw": 10, "State": "running"}, {"SizeRw": 30, "State": "exited"}],
          "Volumes": [{"UsageData": {"Size": 50, "RefCount": 0}}, {"UsageData": {"Size": -1, "RefCount": 1}}],
          "BuildCache": []}
    rows = {r["Type"]: r for r in df_rows(du)}
    assert rows["Images"] == {"Type": "Images", "TotalCount": "2", "Active": "1", "Size": "1kB",
                              "Reclaimable": "500B (50%)"}
    assert rows["Containers"]["Reclaimable"] == "30B (75%)" and rows["Containers"]["Active"] == "1"
    assert rows["Local Volumes"]["Size"] == "50B" and rows["Local Volumes"]["Active"] == "1"
    assert rows["Build Cache"]["Size"] == "0B"

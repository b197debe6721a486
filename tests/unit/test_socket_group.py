"""dockyardd -G/--group: the socket's group as dockerd's listeners pick it."""
from __future__ import annotations

import grp
import os

import pytest

from dockyard import dockyardd


@pytest.fixture
def groups(monkeypatch):
    table = {"docker": 999, "staff": 50}

    def getgrnam(name):
        if name not in table:
            raise KeyError(name)
        return grp.struct_group((name, "x", table[name], []))
    monkeypatch.setattr(grp, "getgrnam", getgrnam)
    return table


def test_flag_defaults_to_docker():
    assert dockyardd.parse_args([]).group == "docker"
    assert dockyardd.parse_args(["-G", "staff"]).group == "staff"
    assert dockyardd.parse_args(["--group", "staff"]).group == "staff"


def test_named_or_numeric_group(groups):
    assert dockyardd.socket_gid("docker") == 999
    assert dockyardd.socket_gid("staff") == 50
    assert dockyardd.socket_gid("1234") == 1234


def test_missing_default_group_falls_back_to_the_daemons(groups):
    del groups["docker"]
    assert dockyardd.socket_gid("docker") == os.getgid()
    assert dockyardd.socket_gid("") == os.getgid()


def test_unknown_explicit_group_is_an_error(groups):
    with pytest.raises(SystemExit, match="group nosuch not found"):
        dockyardd.socket_gid("nosuch")

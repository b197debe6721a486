"""CRIU discovery and gating, checkpoint names and metadata: pure logic and
fake `criu` scripts, no real checkpoint."""
from __future__ import annotations

import asyncio
import json
import os
import stat
import types

import pytest

from dockyard.daemon import checkpoint as cp
from dockyard.errors import InvalidParameter, NotImplementedYet
from dockyard.runtime import criu


def _fake_criu(tmp_path, version: str, check_rc: int = 0, check_out: str = "Looks good.") -> str:
    path = tmp_path / "criu"
    path.write_text("#!/bin/sh\n"
                    f'if [ "$1" = --version ]; then echo "Version: {version}"; exit 0; fi\n'
                    f'if [ "$1" = check ]; then echo "{check_out}"; exit {check_rc}; fi\n'
                    "exit 2\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_parse_version():
    assert criu.parse_version("Version: 4.2.1\nGitID: v4.2.1\n") == (4, 2, 1)
    assert criu.parse_version("Version: 3.17\n") == (3, 17)
    assert criu.parse_version("criu: command not found") is None


def test_usable_only_at_4_2_with_a_passing_check(tmp_path):
    good = asyncio.run(criu.probe(_fake_criu(tmp_path, "4.2.1")))
    assert good.usable and good.version == "4.2.1" and good.reason == ""


def test_4_1_is_refused_even_when_check_passes(tmp_path):
    old = asyncio.run(criu.probe(_fake_criu(tmp_path, "4.1.1")))
    assert not old.usable and "too old" in old.reason and "4.1.1" in old.reason


def test_failing_check_is_refused_with_its_error(tmp_path):
    c = asyncio.run(criu.probe(_fake_criu(tmp_path, "4.2", 1, "Error (criu/cr-check.c:1): no vdso")))
    assert not c.usable and "criu check" in c.reason and "no vdso" in c.reason


def test_configured_path_wins_and_missing_path_says_so(tmp_path):
    assert criu.candidates("/x/criu") == ["/x/criu"]
    c = asyncio.run(criu.discover(str(tmp_path / "nope")))
    assert not c.usable and "not an executable" in c.reason


def test_requests_fail_501_with_the_reason_when_criu_is_unusable():
    class Probe:
        async def get(self):
            return criu.Criu("/usr/sbin/criu", "3.17", "criu 3.17 is too old")
    d = types.SimpleNamespace(criu=Probe())
    with pytest.raises(NotImplementedYet) as e:
        asyncio.run(cp.require_criu(d))
    assert e.value.status == 501 and "too old" in e.value.message


@pytest.mark.parametrize("name", ["cp1", "a.b-c_d", "X9"])
def test_valid_names(name):
    assert cp.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "x", "-lead", "a/b", "../up", "sp ace", None])
def test_invalid_names_are_400(name):
    with pytest.raises(InvalidParameter):
        cp.validate_name(name)


def test_root_dir_default_and_custom(tmp_path):
    from dockyard.daemon.paths import Layout
    d = types.SimpleNamespace(paths=lambda c: Layout("/data", "/run/x").container(c.id))
    c = types.SimpleNamespace(id="abc")
    assert cp.root_dir(d, c, None) == "/data/containers/abc/checkpoints"
    assert cp.root_dir(d, c, "/some//dir/") == "/some/dir"
    with pytest.raises(InvalidParameter):
        cp.root_dir(d, c, "relative/dir")


def test_meta_round_trip_and_corrupt(tmp_path):
    with pytest.raises(InvalidParameter):
        cp.read_meta(str(tmp_path))
    os.mkdir(tmp_path / cp.IMAGES)
    cp.write_meta(str(tmp_path), {"ContainerID": "abc"})
    assert cp.read_meta(str(tmp_path)) == {"ContainerID": "abc"}
    (tmp_path / cp.META).write_text("{not json")
    with pytest.raises(InvalidParameter):
        cp.read_meta(str(tmp_path))
    (tmp_path / cp.META).write_text(json.dumps([1, 2]))
    with pytest.raises(InvalidParameter):
        cp.read_meta(str(tmp_path))


def _fake_crun(tmp_path, features: str) -> str:
    path = tmp_path / "crun"
    path.write_text(f'#!/bin/sh\necho "crun version 1.8.1"\necho "{features}"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_crun_without_criu_is_refused_naming_runc(tmp_path):
    from dockyard.runtime import checkpoint as rtc
    (tmp_path / "a").mkdir()
    plain = types.SimpleNamespace(name="crun", binary=_fake_crun(tmp_path / "a", "+SYSTEMD +SECCOMP +YAJL"))
    assert "built without CRIU" in rtc.unsupported_reason(plain) and "--runtime runc" in rtc.unsupported_reason(plain)
    (tmp_path / "b").mkdir()
    with_criu = types.SimpleNamespace(name="crun", binary=_fake_crun(tmp_path / "b", "+SYSTEMD +CRIU +YAJL"))
    assert rtc.unsupported_reason(with_criu) == ""
    assert rtc.unsupported_reason(types.SimpleNamespace(name="runc", binary="/nonexistent/runc")) == ""

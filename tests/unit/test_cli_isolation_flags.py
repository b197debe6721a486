"""`run`/`create` flags for mounts, security and resources, as docker's CLI
turns them into HostConfig."""
from __future__ import annotations

import json

import pytest

from dockyard.cli.flags import Command, UsageError
from dockyard.cli.isolation_flags import (parse_cpus, parse_device, parse_mount, parse_ulimit,
                                          ram_in_bytes, security_opts)
from dockyard.cli.runconfig import RUN_FLAGS, build_create_body


def test_mount_csv():
    assert parse_mount("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave") == {
        "Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True,
        "BindOptions": {"Propagation": "rslave"}}
    assert parse_mount("src=data,dst=/d,volume-nocopy,volume-label=a=b") == {
        "Type": "volume", "Source": "data", "Target": "/d",
        "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}}}
    assert parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770") == {
        "Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}}
    assert parse_mount("target=/x,ro=false")["ReadOnly"] is False


@pytest.mark.parametrize("spec,why", [
    ("type=bind,source=/h", "target is required"),
    ("type=bind,target=/c,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
    ("type=bind,target=/c,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
    ("target=/c,source", "invalid field 'source' must be a key=value pair"),
    ("type=tmpfs,target=/t,tmpfs-size=lots", "invalid size: 'lots'"),
])
def test_mount_csv_errors(spec, why):
    with pytest.raises(UsageError) as e:
        parse_mount(spec)
    assert e.value.message == f'invalid argument "{spec}" for "--mount" flag: {why}' or why in e.value.message


def test_sizes_cpus_ulimits_devices():
    assert ram_in_bytes("32m", "-m") == 32 << 20
    assert ram_in_bytes("1k", "-m") == 1024
    assert ram_in_bytes("1.5g", "-m") == 3 << 29
    assert ram_in_bytes("64MiB", "-m") == 64 << 20
    assert ram_in_bytes("100", "-m") == 100
    assert parse_cpus("0.5") == 500_000_000 and parse_cpus("2") == 2_000_000_000
    with pytest.raises(UsageError):
        parse_cpus("abc")
    assert parse_ulimit("nofile=1024:2048") == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    assert parse_ulimit("nproc=10") == {"Name": "nproc", "Soft": 10, "Hard": 10}
    with pytest.raises(UsageError, match="soft limit must be less"):
        parse_ulimit("nofile=20:10")
    assert parse_device("/dev/fuse") == {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                                         "CgroupPermissions": "rwm"}
    assert parse_device("/dev/a:/dev/b:r") == {"PathOnHost": "/dev/a", "PathInContainer": "/dev/b",
                                               "CgroupPermissions": "r"}


def test_seccomp_file_is_sent_compacted(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW"\n}\n')
    assert security_opts([f"seccomp={p}", "no-new-privileges", "seccomp=unconfined"]) == [
        'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "no-new-privileges", "seccomp=unconfined"]
    p.write_text("{nope")
    with pytest.raises(UsageError, match="compacting json for seccomp profile"):
        security_opts([f"seccomp={p}"])
    with pytest.raises(UsageError, match="opening seccomp profile"):
        security_opts([f"seccomp={tmp_path}/missing.json"])


def test_run_flags_reach_host_config():
    cmd = Command("[OPTIONS] IMAGE [COMMAND] [ARG...]", "Run", RUN_FLAGS, min_args=1, interspersed=False)
    opts, args = cmd.parse(["-m", "32m", "--pids-limit", "20", "--ulimit", "nofile=1024:2048",
                            "--cpus", "1.5", "--mount", "type=tmpfs,target=/t", "--volumes-from", "x:ro",
                            "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "8m", "--ipc", "host",
                            "--group-add", "27", "--security-opt", "no-new-privileges",
                            "--cap-add", "NET_ADMIN", "bb", "true"], "dockyard run")
    hc = build_create_body(opts, args, environ={})["HostConfig"]
    assert hc["Memory"] == 32 << 20 and hc["PidsLimit"] == 20 and hc["NanoCpus"] == 1_500_000_000
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert hc["Mounts"] == [{"Type": "tmpfs", "Target": "/t"}] and hc["VolumesFrom"] == ["x:ro"]
    assert hc["Sysctls"] == {"net.ipv4.ip_forward": "1"} and hc["ShmSize"] == 8 << 20
    assert hc["IpcMode"] == "host" and hc["GroupAdd"] == ["27"] and hc["SecurityOpt"] == ["no-new-privileges"]
    json.dumps(hc)
    # unset flags keep docker's zero values
    opts, args = cmd.parse(["bb"], "dockyard run")
    hc = build_create_body(opts, args, environ={})["HostConfig"]
    assert (hc["Memory"], hc["PidsLimit"], hc["MemorySwappiness"]) == (0, 0, -1)
    assert "Mounts" not in hc and "Ulimits" in hc and hc["Ulimits"] == []


def test_relative_bind_sources_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = Command("[OPTIONS] IMAGE [COMMAND] [ARG...]", "Run", RUN_FLAGS, min_args=1, interspersed=False)
    opts, args = cmd.parse(["-v", "./data:/d:ro", "-v", "named:/n", "bb"], "dockyard run")
    hc = build_create_body(opts, args, environ={})["HostConfig"]
    assert hc["Binds"] == [f"{tmp_path}/data:/d:ro", "named:/n"]

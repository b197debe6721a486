import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from dockyard import errors
from dockyard.runtime.hostfacts import CAPABILITIES, HostFacts, capabilities_from_mask
from dockyard.runtime.spec import DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS, generate

# This host's bounding set: everything up to CHECKPOINT_RESTORE but SYS_RESOURCE.
NO_SYS_RESOURCE = capabilities_from_mask(0x000001FFFEFFFFFF)
FACTS = HostFacts(bounding=NO_SYS_RESOURCE, hard_rlimits={"nofile": 20000, "nproc": None},
                  cgroup_version="v1", ncpus=2)
ETC = {"/etc/resolv.conf": "/c/resolv.conf", "/etc/hostname": "/c/hostname", "/etc/hosts": "/c/hosts"}


def make(host_config=None, config=None, facts=FACTS, netns="/run/dockyard/netns/abc",
         warnings=None, image_config=None, join=None):
    return generate(container_id="abc123", config=config or {}, host_config=host_config or {},
                    image_config=image_config or {}, rootfs="/var/lib/dockyard/abc/merged",
                    hostname="abc123", args=["/bin/sh"], env=["PATH=/bin"], etc_mounts=ETC,
                    netns=netns, cgroups_path="/dockyard/abc123", facts=facts,
                    user=(1000, 1000, [1000, 10]), warnings=warnings, join=join)


def caps(spec):
    return spec["process"]["capabilities"]["bounding"]


def namespaces(spec):
    return {ns["type"]: ns.get("path") for ns in spec["linux"]["namespaces"]}


def mount(spec, destination):
    return next(m for m in spec["mounts"] if m["destination"] == destination)


# --- shape ---------------------------------------------------------------------

def test_defaults_shape():
    spec = make()
    json.dumps(spec)                                   # JSON-able
    assert spec["ociVersion"] == "1.0.2"
    process = spec["process"]
    assert process["terminal"] is False and "consoleSize" not in process
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]}
    assert process["args"] == ["/bin/sh"] and process["env"] == ["PATH=/bin"]
    assert process["cwd"] == "/"
    assert process["noNewPrivileges"] is False and process["oomScoreAdj"] == 0
    assert "rlimits" not in process
    assert "apparmorProfile" not in process and "selinuxLabel" not in process
    assert spec["root"] == {"path": "/var/lib/dockyard/abc/merged", "readonly": False}
    assert spec["hostname"] == "abc123"
    linux = spec["linux"]
    assert linux["cgroupsPath"] == "/dockyard/abc123"
    assert linux["devices"] == []
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert linux["readonlyPaths"] == list(READONLY_PATHS)
    assert set(linux["resources"]) == {"devices"}      # nothing set -> no limits


def test_default_mounts():
    spec = make()
    assert [m["destination"] for m in spec["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
        "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
    assert mount(spec, "/dev")["options"] == ["nosuid", "strictatime", "mode=755", "size=65536k"]
    assert mount(spec, "/dev/pts")["options"] == [
        "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    assert "ro" in mount(spec, "/sys")["options"]
    assert "ro" in mount(spec, "/sys/fs/cgroup")["options"]
    assert mount(spec, "/dev/shm")["options"][-1] == f"size={64 * 1024 * 1024}"
    hosts = mount(spec, "/etc/hosts")
    assert hosts == {"destination": "/etc/hosts", "type": "bind", "source": "/c/hosts",
                     "options": ["rbind", "rprivate"]}


def test_shm_size_and_ipc_modes():
    assert mount(make({"ShmSize": 1 << 20}), "/dev/shm")["options"][-1] == "size=1048576"
    none = make({"IpcMode": "none"})
    assert "/dev/shm" not in [m["destination"] for m in none["mounts"]]
    assert "ipc" in namespaces(none)
    host = make({"IpcMode": "host"})
    assert mount(host, "/dev/shm")["type"] == "bind" and "ipc" not in namespaces(host)


def test_later_mount_options_are_ignored_not_fatal():
    spec = make({"Binds": ["/a:/b"], "Mounts": [{"Type": "bind", "Source": "/a", "Target": "/b"}],
                 "Tmpfs": {"/run": ""}})
    assert "/b" not in [m["destination"] for m in spec["mounts"]]


def test_process_fields():
    spec = make({"SecurityOpt": ["no-new-privileges"], "OomScoreAdj": 500, "ReadonlyRootfs": True,
                 "ConsoleSize": [40, 120]},
                config={"Tty": True, "WorkingDir": "/srv/app/", "Domainname": "example.org"})
    process = spec["process"]
    assert process["terminal"] is True and process["consoleSize"] == {"height": 40, "width": 120}
    assert process["noNewPrivileges"] is True and process["oomScoreAdj"] == 500
    assert process["cwd"] == "/srv/app"
    assert spec["root"]["readonly"] is True
    assert spec["domainname"] == "example.org"


@pytest.mark.parametrize("opts, expected", [
    (["no-new-privileges:true"], True), (["no-new-privileges=true"], True),
    (["no-new-privileges:false"], False), (["seccomp=unconfined"], False), ([], False)])
def test_no_new_privileges(opts, expected):
    assert make({"SecurityOpt": opts})["process"]["noNewPrivileges"] is expected


def test_working_dir_from_image_and_must_be_absolute():
    assert make(image_config={"WorkingDir": "/data"})["process"]["cwd"] == "/data"
    assert make(config={"WorkingDir": "/c"}, image_config={"WorkingDir": "/i"})["process"]["cwd"] == "/c"
    with pytest.raises(errors.InvalidParameter, match="absolute path"):
        make(config={"WorkingDir": "rel"})


def test_oom_score_adj_range():
    with pytest.raises(errors.InvalidParameter):
        make({"OomScoreAdj": 1001})


def test_user_without_additional_gids():
    spec = generate(container_id="x", config={}, host_config={}, image_config=None, rootfs="/r",
                    hostname="h", args=["a"], env=[], etc_mounts={}, netns="host",
                    cgroups_path="/dockyard/x", facts=FACTS, user=(0, 0, []))
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}


# --- capabilities --------------------------------------------------------------

def test_default_capabilities():
    capabilities = make()["process"]["capabilities"]
    assert capabilities["bounding"] == list(DEFAULT_CAPABILITIES)
    assert capabilities["effective"] == capabilities["permitted"] == capabilities["bounding"]
    assert capabilities["inheritable"] == [] and capabilities["ambient"] == []


def test_cap_add_and_drop_accept_both_spellings():
    spec = make({"CapAdd": ["NET_ADMIN", "cap_sys_ptrace"], "CapDrop": ["CAP_MKNOD", "net_raw"]})
    assert "CAP_NET_ADMIN" in caps(spec) and "CAP_SYS_PTRACE" in caps(spec)
    assert "CAP_MKNOD" not in caps(spec) and "CAP_NET_RAW" not in caps(spec)
    assert caps(spec)[-2:] == ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]   # Docker's order


def test_cap_add_all_and_drop_all():
    add_all = make({"CapAdd": ["ALL"], "CapDrop": ["SYS_ADMIN"]})
    assert "CAP_SYS_ADMIN" not in caps(add_all) and "CAP_SYS_PTRACE" in caps(add_all)
    assert caps(make({"CapDrop": ["ALL"]})) == []
    assert caps(make({"CapDrop": ["all"], "CapAdd": ["CHOWN"]})) == ["CAP_CHOWN"]


def test_capabilities_never_exceed_bounding_set():
    for host_config in ({"Privileged": True}, {"CapAdd": ["ALL"]}, {"CapAdd": ["SYS_RESOURCE"]}):
        assert "CAP_SYS_RESOURCE" not in caps(make(host_config))
    privileged = make({"Privileged": True})
    assert set(caps(privileged)) == NO_SYS_RESOURCE
    assert len(caps(privileged)) == len(CAPABILITIES) - 1


def test_missing_added_capability_is_reported():
    warnings = []
    make({"CapAdd": ["SYS_RESOURCE"]}, warnings=warnings)
    assert any("CAP_SYS_RESOURCE" in w for w in warnings)


def test_unknown_capability():
    with pytest.raises(errors.InvalidParameter, match="invalid capability: NOPE"):
        make({"CapAdd": ["NOPE"]})
    with pytest.raises(errors.InvalidParameter, match="invalid capability: CAP_BOGUS"):
        make({"CapDrop": ["CAP_BOGUS"]})


def test_capability_mask_parsing():
    assert "CAP_SYS_RESOURCE" not in NO_SYS_RESOURCE
    assert {"CAP_CHOWN", "CAP_CHECKPOINT_RESTORE", "CAP_BPF"} <= NO_SYS_RESOURCE
    assert capabilities_from_mask(0b101) == {"CAP_CHOWN", "CAP_DAC_READ_SEARCH"}


# --- privileged ----------------------------------------------------------------

def test_privileged_unmasks_and_opens_devices():
    spec = make({"Privileged": True})
    assert "maskedPaths" not in spec["linux"] and "readonlyPaths" not in spec["linux"]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in mount(spec, "/sys")["options"]
    assert "ro" not in mount(spec, "/sys/fs/cgroup")["options"]


def test_default_device_rules():
    rules = make()["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    allowed = {(r.get("type"), r.get("major"), r.get("minor"), r["access"]) for r in rules if r["allow"]}
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)):
        assert ("c", major, minor, "rwm") in allowed
    assert ("c", 136, None, "rwm") in allowed
    assert ("c", None, None, "m") in allowed and ("b", None, None, "m") in allowed
    assert not any(r["allow"] and r.get("type") in (None, "a") and "r" in r["access"] for r in rules)


# --- rlimits -------------------------------------------------------------------

def test_ulimits_mapped():
    spec = make({"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096},
                             {"Name": "nproc", "Soft": 100, "Hard": -1}]})
    assert spec["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
        {"type": "RLIMIT_NPROC", "hard": 2**64 - 1, "soft": 100}]


def test_ulimits_clamped_to_host_hard_limit():
    warnings = []
    spec = make({"Ulimits": [{"Name": "nofile", "Soft": 65536, "Hard": 1048576}]}, warnings=warnings)
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
    assert len(warnings) == 1 and "nofile" in warnings[0] and "20000" in warnings[0]
    unlimited = make({"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": -1}]})
    assert unlimited["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 1024}]


def test_ulimits_without_warning_list_still_clamp():
    spec = make({"Ulimits": [{"Name": "nofile", "Soft": 30000, "Hard": 30000}]})
    assert spec["process"]["rlimits"][0]["hard"] == 20000


def test_ulimit_errors():
    with pytest.raises(errors.InvalidParameter, match="invalid ulimit type: bogus"):
        make({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]})
    with pytest.raises(errors.InvalidParameter, match="soft limit"):
        make({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]})


# --- namespaces ----------------------------------------------------------------

def test_cgroup_namespace_follows_cgroup_version():
    v1, v2 = FACTS, HostFacts(bounding=NO_SYS_RESOURCE, cgroup_version="v2", ncpus=2)
    assert "cgroup" not in namespaces(make(facts=v1))
    assert "cgroup" in namespaces(make(facts=v2))
    assert "cgroup" in namespaces(make({"CgroupnsMode": "private"}, facts=v1))
    assert "cgroup" not in namespaces(make({"CgroupnsMode": "host"}, facts=v2))
    with pytest.raises(errors.InvalidParameter):
        make({"CgroupnsMode": "weird"})


def test_network_namespace_modes():
    joined = namespaces(make(netns="/run/dockyard/netns/abc"))
    assert joined["network"] == "/run/dockyard/netns/abc"
    assert set(joined) == {"mount", "network", "uts", "pid", "ipc"}
    assert "network" not in namespaces(make(netns="host"))
    fresh = namespaces(make(netns=None))
    assert "network" in fresh and fresh["network"] is None


def test_host_pid_and_uts():
    spec = make({"PidMode": "host", "UTSMode": "host"})
    assert "pid" not in namespaces(spec) and "uts" not in namespaces(spec)
    assert "hostname" not in spec
    with pytest.raises(errors.InvalidParameter):      # the start step resolves the donor
        make({"PidMode": "container:other"})
    joined = make({"PidMode": "container:other", "IpcMode": "container:other"},
                  join={"pid": "/proc/7/ns/pid", "ipc": "/proc/7/ns/ipc", "shm": "/proc/7/root/dev/shm"})
    assert namespaces(joined)["pid"] == "/proc/7/ns/pid" and namespaces(joined)["ipc"] == "/proc/7/ns/ipc"
    assert [m["source"] for m in joined["mounts"] if m["destination"] == "/dev/shm"] == ["/proc/7/root/dev/shm"]
    with pytest.raises(errors.InvalidParameter):
        make({"IpcMode": "sideways"})


# --- masked paths --------------------------------------------------------------

def test_masked_paths_are_a_fresh_copy():
    spec = make()
    spec["linux"]["maskedPaths"].append("/x")
    assert "/x" not in make()["linux"]["maskedPaths"]


# --- resources -----------------------------------------------------------------

def test_memory_and_cpu_resources():
    resources = make({"Memory": 512 << 20, "MemoryReservation": 256 << 20, "CpuShares": 512,
                      "NanoCpus": 1_500_000_000, "CpusetCpus": "0-1", "CpusetMems": "0",
                      "PidsLimit": 100, "BlkioWeight": 300})["linux"]["resources"]
    assert resources["memory"] == {"limit": 512 << 20, "reservation": 256 << 20, "swap": 1024 << 20}
    assert resources["cpu"] == {"shares": 512, "period": 100000, "quota": 150000,
                                "cpus": "0-1", "mems": "0"}
    assert resources["pids"] == {"limit": 100}
    assert resources["blockIO"] == {"weight": 300}


def test_explicit_swap_quota_and_period():
    resources = make({"Memory": 64 << 20, "MemorySwap": -1, "CpuQuota": 50000,
                      "CpuPeriod": 200000})["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20, "swap": -1}
    assert resources["cpu"] == {"quota": 50000, "period": 200000}


def test_unset_resources_are_omitted():
    resources = make({"Memory": 0, "MemorySwap": 0, "NanoCpus": 0, "PidsLimit": -1,
                      "MemorySwappiness": -1, "BlkioWeight": 0, "CpusetCpus": ""})["linux"]["resources"]
    assert set(resources) == {"devices"}


def test_no_swap_accounting_drops_swap():
    facts = HostFacts(bounding=NO_SYS_RESOURCE, ncpus=2, swap_limit=False)
    warnings = []
    memory = make({"Memory": 64 << 20, "MemorySwap": 128 << 20}, facts=facts,
                  warnings=warnings)["linux"]["resources"]["memory"]
    assert memory == {"limit": 64 << 20} and warnings


@pytest.mark.parametrize("host_config, message", [
    ({"Memory": 5 << 20}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 1}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "memoryswap limit should be larger"),
    ({"MemorySwap": 32 << 20}, "always set the Memory limit"),
    ({"NanoCpus": 3_000_000_000}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"NanoCpus": 1_000_000}, "Range of CPUs is from 0.01 to 2.00"),
    ({"NanoCpus": -1}, "Range of CPUs"),
    ({"NanoCpus": 1_000_000_000, "CpuQuota": 1000}, "Conflicting options"),
    ({"CpuPeriod": 10}, "CPU cfs period"),
    ({"BlkioWeight": 5}, "blkio weight"),
])
def test_resource_validation(host_config, message):
    with pytest.raises(errors.InvalidParameter, match=message):
        make(host_config)


def test_nano_cpus_at_the_limit_is_fine():
    assert make({"NanoCpus": 2_000_000_000})["linux"]["resources"]["cpu"]["quota"] == 200000


# --- sysctls -------------------------------------------------------------------

def test_default_net_sysctls_only_in_private_netns():
    sysctl = make()["linux"]["sysctl"]
    assert sysctl["net.ipv4.ip_unprivileged_port_start"] == "0"
    assert sysctl["net.ipv4.ping_group_range"] == "0 2147483647"
    assert make(netns="host")["linux"]["sysctl"] == {}


def test_namespaced_sysctls():
    sysctl = make({"Sysctls": {"net.core.somaxconn": "1024", "kernel.shmmax": "68719476736",
                               "kernel.sem": "250 32000 100 128", "fs.mqueue.msg_max": "100",
                               "net.ipv4.ip_unprivileged_port_start": "1024"}})["linux"]["sysctl"]
    assert sysctl["net.core.somaxconn"] == "1024" and sysctl["kernel.shmmax"] == "68719476736"
    assert sysctl["kernel.sem"] == "250 32000 100 128" and sysctl["fs.mqueue.msg_max"] == "100"
    assert sysctl["net.ipv4.ip_unprivileged_port_start"] == "1024"   # request wins


@pytest.mark.parametrize("key", ["kernel.pid_max", "vm.swappiness", "fs.file-max", "kernel.hostname"])
def test_non_namespaced_sysctls_refused(key):
    with pytest.raises(errors.InvalidParameter, match=key):
        make({"Sysctls": {key: "1"}})


def test_net_sysctl_refused_with_host_network():
    with pytest.raises(errors.InvalidParameter, match="host network namespace"):
        make({"Sysctls": {"net.core.somaxconn": "1024"}}, netns="host")
    assert make({"Sysctls": {"kernel.shmmax": "1"}}, netns="host")["linux"]["sysctl"] == {
        "kernel.shmmax": "1"}
    with pytest.raises(errors.InvalidParameter, match="host IPC namespace"):
        make({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"})


# --- host facts ----------------------------------------------------------------

def test_detect_reads_this_host():
    facts = HostFacts.detect()
    assert facts.cgroup_version in ("v1", "v2")
    assert facts.ncpus >= 1
    assert "CAP_CHOWN" in facts.bounding or not facts.bounding
    assert "nofile" in facts.hard_rlimits


def test_detect_ramdisk(monkeypatch):
    monkeypatch.setenv("DOCKYARD_RAMDISK", "1")
    assert HostFacts.detect().ramdisk is True
    monkeypatch.delenv("DOCKYARD_RAMDISK")
    assert HostFacts.detect().ramdisk is False


def test_generation_is_fast():
    host_config = {"CapAdd": ["NET_ADMIN"], "Memory": 64 << 20, "NanoCpus": 10**9,
                   "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}],
                   "Sysctls": {"net.core.somaxconn": "1024"}}
    runs = 500
    start = time.perf_counter()
    for _ in range(runs):
        make(host_config)
    assert (time.perf_counter() - start) / runs < 0.001


# --- the real runtime ----------------------------------------------------------

def _cgroup_dirs(relative):
    root = "/sys/fs/cgroup"
    candidates = [os.path.join(root, relative)]
    for entry in os.listdir(root):
        candidates.append(os.path.join(root, entry, relative))
    return [path for path in candidates if os.path.isdir(path)]


def _remove_cgroups(parent):
    # Children first: cgroup directories are removed with rmdir, never rm -r.
    for top in _cgroup_dirs(parent):
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


RUNTIME_CASES = {
    "host-net-all-caps": ("host", {"Memory": 64 << 20, "PidsLimit": 64, "CapAdd": ["ALL"],
                                   "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1 << 30}]}),
    "new-netns-defaults": (None, {"ReadonlyRootfs": True, "NanoCpus": 500_000_000,
                                  "Sysctls": {"net.core.somaxconn": "512", "kernel.shmmax": "4096"}}),
    "privileged": (None, {"Privileged": True, "CgroupnsMode": "private"}),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(RUNTIME_CASES))
def test_runc_accepts_generated_spec(tmp_path, case):
    runc = shutil.which("runc")
    busybox = shutil.which("busybox")
    if os.geteuid() != 0 or not runc or not busybox:
        pytest.skip("needs root, runc and busybox")

    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    for sub in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (rootfs / sub).mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in ("sh", "echo", "cat"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    etc = tmp_path / "etc"
    etc.mkdir()
    etc_mounts = {}
    for name, text in (("hostname", "specsanity\n"), ("hosts", "127.0.0.1 localhost\n"),
                       ("resolv.conf", "nameserver 127.0.0.1\n")):
        (etc / name).write_text(text)
        (rootfs / "etc" / name).touch()
        etc_mounts["/etc/" + name] = str(etc / name)

    tag = uuid.uuid4().hex[:8]
    container_id = f"dockyard-spec-test-{tag}"
    cgroup_parent = f"dockyard-test-{tag}"
    facts = HostFacts.detect()
    netns, host_config = RUNTIME_CASES[case]
    warnings = []
    spec = generate(
        container_id=container_id, config={}, host_config=host_config,
        image_config={"Env": ["PATH=/bin"]}, rootfs=str(rootfs), hostname="specsanity",
        args=["/bin/sh", "-c", "echo ok; cat /etc/hostname"], env=["PATH=/bin"],
        etc_mounts=etc_mounts, netns=netns, cgroups_path=f"/{cgroup_parent}/{container_id}",
        facts=facts, user=(0, 0, []), warnings=warnings)
    (bundle / "config.json").write_text(json.dumps(spec))

    command = [runc, "--root", str(tmp_path / "runc-state"), "run"]
    if facts.ramdisk:
        command.append("--no-pivot")
    command += ["--bundle", str(bundle), container_id]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=60)
    finally:
        subprocess.run([runc, "--root", str(tmp_path / "runc-state"), "delete", "-f", container_id],
                       capture_output=True)
        _remove_cgroups(cgroup_parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "specsanity"]
    if "Ulimits" in host_config and facts.hard_rlimits.get("nofile") is not None:
        assert warnings, "the oversized nofile hard limit should have been clamped"
    assert not _cgroup_dirs(cgroup_parent)


def test_masked_and_readonly_paths_come_from_the_host_config_when_set():
    """moby's spec takes HostConfig.MaskedPaths/ReadonlyPaths when not null (create sets
    them; [] is none, as `--security-opt systempaths=unconfined` sends); null: the defaults."""
    spec = make({"MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": []})
    assert spec["linux"]["maskedPaths"] == ["/proc/kcore"] and spec["linux"]["readonlyPaths"] == []
    spec = make({"MaskedPaths": None, "ReadonlyPaths": None})
    assert spec["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert spec["linux"]["readonlyPaths"] == list(READONLY_PATHS)
    assert "maskedPaths" not in make({"Privileged": True, "MaskedPaths": ["/x"]})["linux"]


def test_masked_paths_are_mobys_with_the_hosts_thermal_throttle():
    """moby 28.2's defaultLinuxMaskedPaths in its order (with /proc/interrupts,
    GHSA-6fw5-f8r9-fgfm), then the thermal_throttle directories of the
    host's possible CPUs that exist."""
    assert MASKED_PATHS == (
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
    tt = ("/sys/devices/system/cpu/cpu0/thermal_throttle", "/sys/devices/system/cpu/cpu2/thermal_throttle")
    facts = HostFacts(bounding=NO_SYS_RESOURCE, ncpus=2, thermal_throttle=tt)
    assert make(facts=facts)["linux"]["maskedPaths"] == [*MASKED_PATHS, *tt]
    assert "maskedPaths" not in make({"Privileged": True}, facts=facts)["linux"]
    from dockyard.runtime.hostfacts import possible_cpus
    assert possible_cpus("0-3,5\n") == [0, 1, 2, 3, 5]
    assert possible_cpus("0\n") == [0]
    assert possible_cpus("x") == []


def test_cpusets_must_be_among_the_hosts_as_dockerd_checks_them():
    """moby's verifyPlatformContainerResources against the cgroup root's cpuset
    (dockyard accepted any list at create and the runtime failed at start)."""
    facts = HostFacts(bounding=NO_SYS_RESOURCE, cgroup_version="v1", ncpus=2, cpuset_cpus="0-1", cpuset_mems="0")
    assert make({"CpusetCpus": "0-1", "CpusetMems": "0"}, facts=facts)["linux"]["resources"]["cpu"] == \
        {"cpus": "0-1", "mems": "0"}
    with pytest.raises(errors.InvalidParameter, match=r"^Requested CPUs are not available - requested 99-100, "
                                                      r"available: 0-1$"):
        make({"CpusetCpus": "99-100"}, facts=facts)
    with pytest.raises(errors.InvalidParameter, match="^Requested memory nodes are not available - requested 1, "
                                                      "available: 0$"):
        make({"CpusetMems": "1"}, facts=facts)
    with pytest.raises(errors.InvalidParameter, match="^Invalid value 1-x for cpuset cpus: invalid format: 1-x$"):
        make({"CpusetCpus": "1-x"}, facts=facts)
    with pytest.raises(errors.InvalidParameter, match="maximum is 8192"):
        make({"CpusetCpus": "0-9223372036854775807"}, facts=facts)
    assert make({"CpusetCpus": "5"})["linux"]["resources"]["cpu"] == {"cpus": "5"}   # host's set unknown: no check

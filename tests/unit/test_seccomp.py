"""Docker-format seccomp profiles → OCI, and where the spec carries them."""
from __future__ import annotations

import json
import os

import pytest

from dockyard.errors import InvalidParameter
from dockyard.runtime import seccomp, spec
from dockyard.runtime.hostfacts import HostFacts

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "includes": {}, "excludes": {}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["newthing"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.20"}},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
    ],
}


def _names(oci):
    return [(tuple(s["names"]), s["action"]) for s in oci["syscalls"]]


def test_default_caps_on_amd64():
    oci = seccomp.to_oci(PROFILE, spec.DEFAULT_CAPABILITIES, machine="x86_64", kernel="6.18.0-1")
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 38
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert _names(oci) == [(("read", "write"), "SCMP_ACT_ALLOW"), (("arch_prctl",), "SCMP_ACT_ALLOW"),
                           (("bpf",), "SCMP_ACT_ERRNO"), (("personality",), "SCMP_ACT_ALLOW")]
    assert oci["syscalls"][2]["errnoRet"] == 1
    assert oci["syscalls"][3]["args"] == [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]


def test_caps_arch_and_kernel_select_rules():
    oci = seccomp.to_oci(PROFILE, list(spec.DEFAULT_CAPABILITIES) + ["CAP_SYS_ADMIN"],
                         machine="aarch64", kernel="6.20.1")
    assert oci["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert (("bpf",), "SCMP_ACT_ALLOW") in _names(oci) and (("bpf",), "SCMP_ACT_ERRNO") not in _names(oci)
    assert (("cacheflush",), "SCMP_ACT_ALLOW") in _names(oci)
    assert (("newthing",), "SCMP_ACT_ALLOW") in _names(oci)
    assert (("arch_prctl",), "SCMP_ACT_ALLOW") not in _names(oci)


def test_choice_and_profile_for():
    assert seccomp.choice(["no-new-privileges", "seccomp=unconfined"]) == "unconfined"
    assert seccomp.choice(["seccomp:unconfined"]) == "unconfined"
    assert seccomp.profile_for(["seccomp=unconfined"], False) is None
    assert seccomp.profile_for([], True) is None          # privileged: never filtered
    assert seccomp.profile_for(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'], False) == \
        {"defaultAction": "SCMP_ACT_ALLOW"}
    with pytest.raises(InvalidParameter, match="Decoding seccomp profile failed"):
        seccomp.profile_for(["seccomp={nope"], False)


EPERM, ENOSYS = 1, 38


def _errno(section, name, arg0=0):
    """What `name(arg0, 0, ...)` gets from an OCI seccomp section: 0 when
    allowed, else the errno (the rule's, or the default's)."""
    for rule in section["syscalls"]:
        if name not in rule["names"]:
            continue
        ops = {"SCMP_CMP_EQ": lambda a: arg0 == a["value"], "SCMP_CMP_NE": lambda a: arg0 != a["value"],
               "SCMP_CMP_MASKED_EQ": lambda a: arg0 & a["value"] == a["valueTwo"]}
        if all(a["index"] != 0 or ops[a["op"]](a) for a in rule.get("args") or ()):
            return 0 if rule["action"] == "SCMP_ACT_ALLOW" else rule.get("errnoRet", EPERM)
    return section.get("defaultErrnoRet", EPERM)


# Docker's blocked list for its default capabilities: all EPERM, as in moby's profile
BLOCKED = ("mount", "umount2", "unshare", "setns", "pivot_root", "keyctl", "add_key", "request_key",
           "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
           "open_by_handle_at", "init_module", "finit_module", "delete_module", "bpf", "perf_event_open",
           "userfaultfd", "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime",
           "syslog", "quotactl", "lookup_dcookie", "fanotify_init", "fsopen", "open_tree", "move_mount",
           "nfsservctl", "uselib", "iopl", "ioperm", "vhangup", "mbind", "lsm_list_modules", "vm86",
           "no_such_call")


def test_default_profile_is_mobys():
    profile = seccomp.default_profile()
    assert profile is seccomp.default_profile()            # built once
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == EPERM
    assert seccomp.exists()                                 # /info: name=seccomp,profile=builtin
    oci = seccomp.to_oci(profile, spec.DEFAULT_CAPABILITIES, machine="x86_64", kernel="6.1.0")
    assert oci["defaultErrnoRet"] == EPERM
    assert {n: _errno(oci, n) for n in BLOCKED} == {n: EPERM for n in BLOCKED}
    assert _errno(oci, "clone3") == ENOSYS                 # glibc falls back to clone
    for name in ("read", "execve", "arch_prctl", "ptrace", "chroot", "name_to_handle_at", "statx"):
        assert _errno(oci, name) == 0, name
    assert _errno(oci, "socket", 2) == 0 and _errno(oci, "socket", 40) == EPERM     # no AF_VSOCK
    assert _errno(oci, "personality", 8) == 0 and _errno(oci, "personality", 0x10) == EPERM
    assert _errno(oci, "clone", 0x11) == 0 and _errno(oci, "clone", 0x10000000) == EPERM  # CLONE_NEWUSER
    old = seccomp.to_oci(profile, spec.DEFAULT_CAPABILITIES, machine="x86_64", kernel="4.4.0")
    assert _errno(old, "ptrace") == EPERM                  # ptrace only from kernel 4.8


@pytest.mark.parametrize("cap,names", [
    ("CAP_SYS_ADMIN", ("mount", "umount2", "unshare", "setns", "clone3", "bpf", "perf_event_open", "syslog",
                       "fsopen", "quotactl", "sethostname", "lsm_list_modules")),
    ("CAP_SYS_BOOT", ("reboot",)), ("CAP_SYS_MODULE", ("init_module", "finit_module", "delete_module")),
    ("CAP_SYS_PACCT", ("acct",)), ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_TIME", ("settimeofday", "clock_settime")), ("CAP_SYS_TTY_CONFIG", ("vhangup",)),
    ("CAP_SYS_NICE", ("mbind", "set_mempolicy")), ("CAP_SYSLOG", ("syslog",)), ("CAP_BPF", ("bpf",)),
    ("CAP_PERFMON", ("perf_event_open",)), ("CAP_DAC_READ_SEARCH", ("open_by_handle_at",)),
    ("CAP_SYS_PTRACE", ("kcmp", "pidfd_getfd", "process_madvise"))])
def test_capability_opens_what_moby_ties_to_it(cap, names):
    oci = seccomp.to_oci(seccomp.default_profile(), list(spec.DEFAULT_CAPABILITIES) + [cap], machine="x86_64")
    assert {n: _errno(oci, n) for n in names} == {n: 0 for n in names}
    # never the keyring or io_uring, whatever the capabilities
    for name in ("keyctl", "add_key", "request_key", "io_uring_setup", "kexec_load", "userfaultfd"):
        assert _errno(oci, name) == EPERM
    if cap == "CAP_SYS_ADMIN":
        assert _errno(oci, "clone", 0x10000000) == 0


def test_architectures_pick_their_rules():
    profile = seccomp.default_profile()
    arm = seccomp.to_oci(profile, spec.DEFAULT_CAPABILITIES, machine="aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert _errno(arm, "cacheflush") == 0 and _errno(arm, "arch_prctl") == EPERM
    s390 = seccomp.to_oci(profile, spec.DEFAULT_CAPABILITIES, machine="s390x")
    clone = [r for r in s390["syscalls"] if r["names"] == ["clone"]]
    assert [a["index"] for r in clone for a in r["args"]] == [1]   # s390 swaps clone's first two args
    riscv = seccomp.to_oci(profile, spec.DEFAULT_CAPABILITIES, machine="riscv64")
    assert riscv["architectures"] == ["SCMP_ARCH_RISCV64"] and _errno(riscv, "riscv_flush_icache") == 0


# Debian's copy of moby's profile (golang-github-docker-docker-dev: 20.10 in
# Debian 12, 26.1 in Debian 13), where installed: ours is moby's of a later
# Docker, so it allows all that one does, less what moby has taken back since.
DEBIAN_MOBY_PROFILE = "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"
TAKEN_BACK = {"io_uring_setup", "io_uring_enter", "io_uring_register",   # Docker 25
              "socket"}                                                  # AF_VSOCK refused: Docker 23


def test_against_debians_copy_of_mobys_profile():
    path = os.environ.get("DOCKYARD_MOBY_SECCOMP_JSON", DEBIAN_MOBY_PROFILE)
    if not os.path.exists(path):
        pytest.skip(f"{path} not installed (golang-github-docker-docker-dev)")
    with open(path) as f:
        theirs = json.load(f)
    ours = seccomp.default_profile()
    assert theirs.get("defaultErrnoRet", EPERM) == ours["defaultErrnoRet"] == EPERM
    assert theirs["defaultAction"] == ours["defaultAction"]

    names = {n for p in (ours, theirs) for r in p["syscalls"] for n in r["names"]}
    caps = {c for p in (ours, theirs) for r in p["syscalls"] for c in (r.get("includes") or {}).get("caps", ())}
    for added in [None, *sorted(caps)]:
        held = list(spec.DEFAULT_CAPABILITIES) + ([added] if added else [])
        o, t = (seccomp.to_oci(p, held, machine="x86_64", kernel="6.1.0") for p in (ours, theirs))
        for name in names:
            mine, docker = _errno(o, name), _errno(t, name)
            if docker == 0:          # what that Docker allows, this one does too (or took back)
                assert mine == 0 or name in TAKEN_BACK, (added, name)
            elif mine:               # refused by both: with the same errno
                assert mine == docker, (added, name)


def test_shipped_default_profile_maps():
    oci = seccomp.to_oci(seccomp.default_profile(), spec.DEFAULT_CAPABILITIES, machine="x86_64")
    allowed = {n for s in oci["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and not s.get("args")
               for n in s["names"]}
    assert {"read", "execve", "arch_prctl", "ptrace"} <= allowed
    # Docker's rules, not Podman's looser ones: no mounts, namespaces or keyrings
    # without CAP_SYS_ADMIN, clone only without namespace flags, clone3 ENOSYS
    assert not {"kexec_load", "init_module", "bpf", "mount", "unshare", "setns", "fsopen", "keyctl",
                "add_key", "clone", "clone3", "reboot", "syslog"} & allowed
    clone = [s for s in oci["syscalls"] if s["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in oci["syscalls"]
    admin = seccomp.to_oci(seccomp.default_profile(), list(spec.DEFAULT_CAPABILITIES) + ["CAP_SYS_ADMIN"],
                           machine="x86_64")
    allowed = {n for s in admin["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and not s.get("args")
               for n in s["names"]}
    assert {"mount", "unshare", "setns", "clone", "clone3", "bpf", "syslog"} <= allowed
    assert "keyctl" not in allowed
    # a custom profile is taken as given
    custom = seccomp.to_oci({"defaultAction": "SCMP_ACT_ERRNO",
                             "syscalls": [{"names": ["keyctl", "mount"], "action": "SCMP_ACT_ALLOW"}]},
                            spec.DEFAULT_CAPABILITIES)
    assert custom["syscalls"] == [{"names": ["keyctl", "mount"], "action": "SCMP_ACT_ALLOW"}]


def _generate(host_config, **kw):
    return spec.generate(container_id="c" * 64, config={}, host_config=host_config, image_config={},
                         rootfs="/r", hostname="h", args=["sh"], env=[], etc_mounts={"/etc/hosts": "/x/hosts"},
                         netns=None, cgroups_path="/dockyard/c", facts=HostFacts(), **kw)


def test_spec_carries_seccomp_and_user_mounts():
    s = _generate({}, seccomp_profile=PROFILE)
    assert s["linux"]["seccomp"]["defaultErrnoRet"] == 38
    assert "seccomp" not in _generate({})["linux"]
    mounts = [{"destination": "/etc/hosts", "type": "bind", "source": "/mine", "options": ["rbind", "rprivate"]},
              {"destination": "/data", "type": "bind", "source": "/v", "options": ["rbind", "rprivate", "ro"]}]
    s = _generate({}, extra_mounts=mounts)
    hosts = [m for m in s["mounts"] if m["destination"] == "/etc/hosts"]
    assert hosts == [mounts[0]]
    assert s["mounts"][-1] == mounts[1]


def test_systempaths_unconfined_drops_masks():
    assert "maskedPaths" in _generate({})["linux"]
    s = _generate({"SecurityOpt": ["systempaths=unconfined"]})
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]


def test_validate_raises_at_create():
    facts = HostFacts(ncpus=2)
    assert spec.validate({"Memory": 32 << 20}, facts) == []
    for hc, msg in (({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
                    ({"CapAdd": ["BOGUS"]}, "invalid capability: BOGUS"),
                    ({"NanoCpus": 3_000_000_000}, "Range of CPUs"),
                    ({"Sysctls": {"kernel.panic": "1"}}, "not allowed"),
                    ({"SecurityOpt": ["seccomp=[1"]}, "Decoding seccomp profile failed")):
        with pytest.raises(InvalidParameter, match=msg):
            spec.validate(hc, facts)


def test_security_opt_keys():
    facts = HostFacts()
    for ok in (["no-new-privileges"], ["no-new-privileges=true"], ["no-new-privileges:false"],
               ["apparmor=unconfined"], ["label=disable"], ["systempaths=unconfined"], ["seccomp=unconfined"]):
        spec.validate({"SecurityOpt": ok}, facts)
    for bad in (["bogus=1"], ["nonsense"], ["systempaths=confined"], ["no-new-privileges=maybe"]):
        with pytest.raises(InvalidParameter, match="invalid --security-opt"):
            spec.validate({"SecurityOpt": bad}, facts)


def test_blkio_weight_dropped_without_support():
    notes = spec.validate({"BlkioWeight": 300}, HostFacts(blkio_weight=False))
    assert notes == ["Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."]
    assert spec.validate({"BlkioWeight": 300}, HostFacts(blkio_weight=True)) == []
    with pytest.raises(InvalidParameter, match="Range of blkio weight"):
        spec.validate({"BlkioWeight": 5}, HostFacts())


def test_apparmor_choice():
    from dockyard.runtime import apparmor
    assert apparmor.choose([], False, enabled=False) is None          # host without AppArmor: nothing
    assert apparmor.choose(["apparmor=custom"], False, enabled=False) is None
    assert apparmor.choose([], False, enabled=True) == "docker-default"
    assert apparmor.choose([], True, enabled=True) == "unconfined"
    assert apparmor.choose(["apparmor=custom"], True, enabled=True) == "custom"
    assert "profile docker-default flags=(attach_disconnected,mediate_deleted)" in apparmor.TEMPLATE
    assert _generate({}, apparmor_profile="docker-default")["process"]["apparmorProfile"] == "docker-default"
    assert "apparmorProfile" not in _generate({})["process"]


def test_oom_kill_disable_per_cgroup_version():
    v1, v2 = HostFacts(cgroup_version="v1"), HostFacts(cgroup_version="v2")
    assert spec.validate({"OomKillDisable": True, "Memory": 64 << 20}, v1) == []
    assert spec.validate({"OomKillDisable": True, "Memory": 64 << 20}, v2) == [
        "Your kernel does not support OomKillDisable. OomKillDisable discarded."]
    assert "no memory limit is set" in spec.validate({"OomKillDisable": True}, v1)[0]


def test_userns_mode_values():
    spec.validate({"UsernsMode": "host"}, HostFacts())
    with pytest.raises(InvalidParameter, match="invalid USER mode: private"):
        spec.validate({"UsernsMode": "private"}, HostFacts())


def test_memory_knobs_per_cgroup_version():
    """What differs on cgroup v2 (not testable on this v1-hybrid host):
    swappiness has no v2 knob and is dropped, the limits are the same OCI
    values (the runtime writes memory.max/memory.low/memory.swap.max)."""
    hc = {"Memory": 64 << 20, "MemoryReservation": 32 << 20, "MemorySwap": 96 << 20, "MemorySwappiness": 10}
    v1 = HostFacts(cgroup_version="v1", swap_limit=True)
    v2 = HostFacts(cgroup_version="v2", swap_limit=True)
    m1, m2 = spec._memory(hc, v1, []), spec._memory(hc, v2, [])
    assert m1 == {**m2, "swappiness": 10}
    assert (m2["limit"], m2["reservation"], m2["swap"]) == (64 << 20, 32 << 20, 96 << 20)
    assert "swappiness" not in m2

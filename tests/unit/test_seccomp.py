"""Docker-format seccomp profiles → OCI, and where the spec carries them."""
from __future__ import annotations


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


def test_bundled_profile_when_the_host_has_none(monkeypatch, tmp_path):
    # Without Debian's containers-common a container must still be filtered
    monkeypatch.setattr(seccomp, "DEFAULT_PROFILE_PATH", str(tmp_path / "absent.json"))
    monkeypatch.setattr(seccomp, "_default_cache", None)
    profile = seccomp.default_profile()
    assert profile and profile[seccomp.DOCKER_COMPAT]
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp.exists()                 # /info still lists seccomp
    monkeypatch.setattr(seccomp, "BUNDLED_PROFILE_PATH", str(tmp_path / "absent-too.json"))
    monkeypatch.setattr(seccomp, "_default_cache", None)
    assert seccomp.default_profile() is None
    assert not seccomp.exists()             # and says so when there is none


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

"""What dockerd writes into a new container's HostConfig at create (so
inspect shows it), as daemon/create.py's fill_daemon_defaults does it."""
from dockyard.daemon.create import CONFIG_ZERO, HOST_CONFIG_ZERO, fill_daemon_defaults
from dockyard.runtime.hostfacts import HostFacts
from dockyard.runtime.spec import MASKED_PATHS, READONLY_PATHS

V1 = HostFacts(cgroup_version="v1")
V2 = HostFacts(cgroup_version="v2", thermal_throttle=("/sys/devices/system/cpu/cpu0/thermal_throttle",))


def filled(hc: dict, facts: HostFacts = V1) -> dict:
    fill_daemon_defaults(hc, facts)
    return hc


def test_the_docker_clis_create_body_gets_dockerds_values():
    """The docker CLI sends PidsLimit 0, MemorySwappiness -1, ShmSize 0, empty
    modes and null paths; dockerd shows null, null, 64 MB, private, host (cgroup
    v1) and its default masked and read-only paths."""
    sent = {"PidsLimit": 0, "MemorySwappiness": -1, "ShmSize": 0, "IpcMode": "", "CgroupnsMode": "",
            "MaskedPaths": None, "ReadonlyPaths": None, "Privileged": False}
    hc = filled(dict(sent))
    assert {k: hc[k] for k in sent} == {
        "PidsLimit": None, "MemorySwappiness": None, "ShmSize": 67108864, "IpcMode": "private",
        "CgroupnsMode": "host", "MaskedPaths": list(MASKED_PATHS), "ReadonlyPaths": list(READONLY_PATHS),
        "Privileged": False}
    assert filled({}, V2)["CgroupnsMode"] == "private"
    assert filled({}, V2)["MaskedPaths"] == [*MASKED_PATHS, "/sys/devices/system/cpu/cpu0/thermal_throttle"]
    assert filled({"PidsLimit": -1})["PidsLimit"] is None


def test_what_the_client_chose_is_kept():
    hc = filled({"PidsLimit": 50, "MemorySwappiness": 0, "ShmSize": 1 << 20, "IpcMode": "shareable",
                 "CgroupnsMode": "private", "MaskedPaths": [], "ReadonlyPaths": ["/proc/sys"]})
    assert (hc["PidsLimit"], hc["MemorySwappiness"], hc["ShmSize"], hc["IpcMode"], hc["CgroupnsMode"],
            hc["MaskedPaths"], hc["ReadonlyPaths"]) == (50, 0, 1 << 20, "shareable", "private", [], ["/proc/sys"])


def test_a_privileged_container_has_no_paths_masked():
    hc = filled({"Privileged": True})
    assert hc["MaskedPaths"] is None and hc["ReadonlyPaths"] is None      # null, as Go marshals nil
    assert hc["IpcMode"] == "private" and hc["CgroupnsMode"] == "host"


def test_a_body_without_host_config_fields_gets_gos_zero_values():
    """moby's HostConfig marshals every field but the omitempty ones (Runtime,
    Annotations, StorageOpt, Tmpfs, Sysctls, Mounts, Init, KernelMemory*)."""
    hc = filled({})
    assert set(hc) == set(HOST_CONFIG_ZERO) and len(hc) == 59
    assert (hc["Binds"], hc["ConsoleSize"], hc["OomKillDisable"], hc["Memory"], hc["CpusetCpus"]) == \
        (None, [0, 0], False, 0, "")
    hc["ConsoleSize"][0] = 5
    assert HOST_CONFIG_ZERO["ConsoleSize"] == (0, 0)                # each container its own list
    assert filled({"OomKillDisable": None})["OomKillDisable"] is False
    assert filled({"OomKillDisable": True, "Memory": 8 << 20})["OomKillDisable"] is True
    assert not set(CONFIG_ZERO) & {"Hostname", "Env", "Cmd", "Entrypoint", "Image", "Labels"}


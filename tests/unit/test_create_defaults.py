"""What dockerd writes into a new container's HostConfig at create (so
inspect shows it), as daemon/create.py's fill_daemon_defaults does it."""
from dockyard.daemon.create import fill_daemon_defaults
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
    hc = filled({"PidsLimit": 0, "MemorySwappiness": -1, "ShmSize": 0, "IpcMode": "", "CgroupnsMode": "",
                 "MaskedPaths": None, "ReadonlyPaths": None, "Privileged": False})
    assert hc == {"PidsLimit": None, "MemorySwappiness": None, "ShmSize": 67108864, "IpcMode": "private",
                  "CgroupnsMode": "host", "MaskedPaths": list(MASKED_PATHS),
                  "ReadonlyPaths": list(READONLY_PATHS), "Privileged": False}
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
    assert "MaskedPaths" not in hc and "ReadonlyPaths" not in hc
    assert hc["IpcMode"] == "private" and hc["CgroupnsMode"] == "host"

"""Mount specs as Docker reads them: -v (Binds), --mount (Mounts), --tmpfs,
anonymous volumes; and their OCI mounts."""
from __future__ import annotations

import pytest

from dockyard.errors import InvalidParameter, SystemError_
from dockyard.volumes import mountspec as ms


def test_bind_and_named_volume():
    p = ms.parse_bind("/host/dir:/ctr:ro")
    assert (p["Type"], p["Source"], p["Destination"], p["RW"], p["Mode"], p["Propagation"]) == \
        ("bind", "/host/dir", "/ctr", False, "ro", "rprivate")
    assert p["CreateSource"] is True
    p = ms.parse_bind("/h:/c:rw,rshared")
    assert p["RW"] and p["Propagation"] == "rshared"
    v = ms.parse_bind("data:/data")
    assert (v["Type"], v["Name"], v["Mode"], v["RW"], v["CopyData"], v["Anonymous"]) == \
        ("volume", "data", "z", True, True, False)
    assert ms.parse_bind("data:/data:nocopy")["CopyData"] is False
    assert ms.parse_bind("/h/./x/:/c/../d")["Destination"] == "/d"


@pytest.mark.parametrize("spec,message", [
    ("/only", "invalid volume specification: '/only'"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/h:rel", "invalid mount path: 'rel' mount path must be absolute"),
    ("/h:/", "destination can't be '/'"),
    ("/h:/c:bogus", "invalid mode: bogus"),
    ("/h:/c:ro,rw", "invalid mode: ro,rw"),
    ("bad$name:/c", "includes invalid characters for a local volume name"),
    ("data:/c:rshared", "propagation is only allowed on bind mounts"),
])
def test_bad_binds(spec, message):
    with pytest.raises(InvalidParameter) as e:
        ms.parse_bind(spec)
    assert message in e.value.message


def test_mount_objects():
    exists = lambda p: p == "/there"
    p = ms.from_mount({"Type": "bind", "Source": "/there", "Target": "/t", "ReadOnly": True,
                       "BindOptions": {"Propagation": "rslave", "NonRecursive": True}}, exists)
    assert (p["RW"], p["Propagation"], p["NonRecursive"], p["CreateSource"]) == (False, "rslave", True, False)
    assert ms.oci_mount(p, "/there") == {"destination": "/t", "type": "bind", "source": "/there",
                                         "options": ["bind", "rslave", "ro"]}
    v = ms.from_mount({"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": True}}, exists)
    assert v["Anonymous"] and len(v["Name"]) == 64 and v["CopyData"] is False and v["Mode"] == "z"
    v = ms.from_mount({"Type": "volume", "Source": "named", "Target": "/v", "VolumeOptions": {
        "Labels": {"a": "b"}, "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}},
        exists)
    assert v["VolumeLabels"] == {"a": "b"} and v["VolumeOptions"] == {"type": "tmpfs", "device": "tmpfs"}
    t = ms.from_mount({"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777}},
                      exists)
    assert t["Tmpfs"] == ["noexec", "nosuid", "nodev", "size=1048576", "mode=1777"]


@pytest.mark.parametrize("mount,message", [
    ({"Type": "bind", "Source": "/missing", "Target": "/t"},
     'invalid mount config for type "bind": bind source path does not exist: /missing'),
    ({"Type": "bind", "Target": "/t"}, 'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "bind", "Source": "/there"}, 'invalid mount config for type "bind": field Target must not be empty'),
    ({"Type": "tmpfs", "Source": "x", "Target": "/t"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "volume", "Source": "v", "Target": "t"}, "mount path must be absolute"),
    ({"Type": "npipe", "Target": "/t"}, "mount type unknown"),
    ({"Type": "volume", "Target": "/t", "BindOptions": {"Propagation": "shared"}},
     "field BindOptions must not be specified"),
])
def test_bad_mount_objects(mount, message):
    with pytest.raises(InvalidParameter) as e:
        ms.from_mount(mount, lambda p: p == "/there")
    assert message in e.value.message


def test_tmpfs_options():
    assert ms.tmpfs_options("") == ["noexec", "nosuid", "nodev"]
    assert ms.tmpfs_options("exec,size=64m,mode=755") == ["nosuid", "nodev", "size=64m", "mode=755"]
    assert ms.tmpfs_options("size=1m,size=2m,ro") == ["noexec", "nosuid", "nodev", "size=2m", "ro"]


def test_plan_precedence_and_anonymous():
    hc = {"Binds": ["/h:/a"], "Tmpfs": {"/run": "size=1m"}}
    cfg = {"Volumes": {"/a": {}, "/b": {}}}
    img = {"Volumes": {"/b": {}, "/c": {}}}
    points = ms.plan(hc, cfg, img, lambda p: True)
    assert [(p["Destination"], p["Type"], p["Anonymous"]) for p in points] == [
        ("/a", "bind", False), ("/run", "tmpfs", False), ("/b", "volume", True), ("/c", "volume", True)]
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /a"):
        ms.plan({"Binds": ["/h:/a", "vol:/a"]}, {}, {}, lambda p: True)


def test_volumes_from_modes():
    theirs = [ms.parse_bind("vol:/data"), ms.from_tmpfs({"/t": ""})[0],
              dict(ms.parse_bind("wv:/w"), Anonymous=True)]
    points = ms.plan({}, {}, {}, lambda p: True, [(theirs, "ro")])
    assert [(p["Destination"], p["RW"], p["Anonymous"]) for p in points] == [("/data", False, False),
                                                                             ("/w", False, False)]
    assert ms.parse_volumes_from("abc:rw") == ("abc", "rw")
    with pytest.raises(InvalidParameter):
        ms.parse_volumes_from("abc:zz")


def test_depth_sorted_and_public():
    pts = [ms.parse_bind("/h:/a/b/c"), ms.parse_bind("/h:/a")]
    assert [p["Destination"] for p in ms.depth_sorted(pts)] == ["/a", "/a/b/c"]
    assert set(ms.public(pts[0])) == {"Type", "Source", "Destination", "Mode", "RW", "Propagation"}
    assert set(ms.public(ms.parse_bind("vol:/v"))) == {"Type", "Name", "Source", "Destination", "Driver",
                                                        "Mode", "RW", "Propagation"}


def test_copy_up_source_stays_inside_rootfs(tmp_path):
    from dockyard.volumes.service import _inside, copy_up
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f").write_text("x")
    (root / "abs").symlink_to("/real")              # absolute link: resolved in the rootfs
    (root / "up").symlink_to("../../../../..")      # climbing out stops at the rootfs
    assert _inside(str(root), "/abs") == str(root / "real")
    assert _inside(str(root), "/up/real") == str(root / "real")
    assert _inside(str(root), "/up/etc") == str(root / "etc")
    vol = tmp_path / "vol"
    vol.mkdir()
    copy_up(_inside(str(root), "/abs"), str(vol))
    assert (vol / "f").read_text() == "x"
    copy_up(_inside(str(root), "/up/etc"), str(vol / "nothing-here"))   # missing source: no-op


def test_volume_subpath():
    p = ms.from_mount({"Type": "volume", "Source": "vol", "Target": "/v",
                       "VolumeOptions": {"Subpath": "a/./b"}}, lambda p: True)
    assert p["Subpath"] == "a/b" and p["CopyData"] is False
    for bad in ("/abs", "../up", "a/../../b"):
        with pytest.raises(InvalidParameter, match="subpath must be a relative path"):
            ms.from_mount({"Type": "volume", "Source": "vol", "Target": "/v",
                           "VolumeOptions": {"Subpath": bad}}, lambda p: True)


def test_only_the_local_volume_driver():
    from dockyard.errors import NotFound
    with pytest.raises(NotFound, match='plugin "flocker" not found'):
        ms.plan({"VolumeDriver": "flocker", "Binds": ["v1:/v"]}, {}, {}, lambda p: True)
    with pytest.raises(NotFound, match='plugin "nfs" not found'):
        ms.from_mount({"Type": "volume", "Source": "vol", "Target": "/v",
                       "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}}, lambda p: True)
    assert ms.plan({"VolumeDriver": "local", "Binds": ["vol:/v"]}, {}, {}, lambda p: True)[0]["Name"] == "vol"


def test_bind_propagation_needs_a_shared_or_slave_source():
    from dockyard.volumes import propagation
    info = ("27 1 254:0 / / rw - ext4 /dev/vda rw\n"
            "50 27 0:40 / /srv/shared rw shared:7 - tmpfs t rw\n"
            "51 27 0:41 / /srv/slave rw master:7 - tmpfs t rw\n"
            "52 27 0:42 / /srv/with\\040space rw shared:9 - tmpfs t rw\n")
    bind = lambda src, prop: {"type": "bind", "source": src, "options": ["rbind", prop]}
    assert propagation.source_mount("/srv/shared/a/b", info) == ("/srv/shared", ["shared:7"])
    assert propagation.source_mount("/srv/sharedx", info) == ("/", [])
    assert propagation.source_mount("/srv/with space/x", info) == ("/srv/with space", ["shared:9"])
    assert propagation.rootfs_propagation([bind("/srv/x", "rprivate")], info) is None
    assert propagation.rootfs_propagation([{"type": "tmpfs", "options": ["rshared"]}], info) is None
    assert propagation.rootfs_propagation([bind("/srv/slave/d", "rslave")], info) == "rslave"
    assert propagation.rootfs_propagation([bind("/srv/shared", "rslave"), bind("/srv/shared", "rshared")],
                                          info) == "rshared"
    with pytest.raises(InvalidParameter, match="path /srv/slave is mounted on /srv/slave but it is not a shared mount"):
        propagation.rootfs_propagation([bind("/srv/slave", "shared")], info)
    with pytest.raises(InvalidParameter, match="path /srv/p is mounted on / but it is not a shared or slave mount"):
        propagation.rootfs_propagation([bind("/srv/p", "rslave")], info)


def _ro_bind(**bind_options):
    return ms.from_mount({"Type": "bind", "Source": "/there", "Target": "/t", "ReadOnly": True,
                          "BindOptions": bind_options}, lambda p: True)


def test_read_only_binds_are_recursively_read_only_where_supported():
    # Docker 25+: `ro` is `rro` (every submount read-only too) when the kernel and runtime can
    assert ms.oci_mount(ms.parse_bind("/:/host:ro"), "/", None)["options"] == ["rbind", "rprivate", "rro"]
    assert ms.oci_mount(_ro_bind(), "/there", None)["options"] == ["rbind", "rprivate", "rro"]
    vol = ms.parse_bind("data:/d:ro")
    assert ms.oci_mount(vol, "/v", None)["options"] == ["rbind", "rprivate", "rro"]
    # ReadOnlyNonRecursive: the top mount only (submounts stay writable)
    assert ms.oci_mount(_ro_bind(ReadOnlyNonRecursive=True), "/there", None)["options"] == \
        ["rbind", "rprivate", "ro"]
    # unsupported: `ro`, quietly ...
    why = 'rro is not supported by runtime "crun": OCI features struct is not available'
    assert ms.oci_mount(_ro_bind(), "/there", why)["options"] == ["rbind", "rprivate", "ro"]
    assert ms.oci_mount(_ro_bind(), "/there")["options"] == ["rbind", "rprivate", "ro"]    # nobody asked
    # ... unless ReadOnlyForceRecursive: then moby's error
    assert ms.oci_mount(_ro_bind(ReadOnlyForceRecursive=True), "/there", None)["options"] == \
        ["rbind", "rprivate", "rro"]
    with pytest.raises(SystemError_) as e:
        ms.oci_mount(_ro_bind(ReadOnlyForceRecursive=True), "/there", why)
    assert e.value.status == 500 and e.value.message == why
    # writable mounts are untouched
    assert ms.oci_mount(ms.parse_bind("/h:/c"), "/h", None)["options"] == ["rbind", "rprivate"]
    assert ms.wants_rro([ms.parse_bind("/h:/c:ro")]) and not ms.wants_rro([ms.parse_bind("/h:/c")])
    assert not ms.wants_rro([_ro_bind(ReadOnlyNonRecursive=True)])
    assert "ReadOnlyNonRecursive" not in ms.public(_ro_bind(ReadOnlyNonRecursive=True))


@pytest.mark.parametrize("read_only,options,message", [
    (False, {"ReadOnlyNonRecursive": True}, "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive"),
    (False, {"ReadOnlyForceRecursive": True},
     "mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive"),
    (True, {"ReadOnlyNonRecursive": True, "ReadOnlyForceRecursive": True},
     "mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"),
])
def test_read_only_option_conflicts_fail_the_start_as_moby(read_only, options, message):
    p = ms.from_mount({"Type": "bind", "Source": "/there", "Target": "/t", "ReadOnly": read_only,
                       "BindOptions": options}, lambda p: True)     # accepted at create, as by moby
    with pytest.raises(SystemError_, match=message.replace("!", ".").replace("&", ".")):
        ms.oci_mount(p, "/there", None)


def test_clients_before_api_1_44_keep_non_recursive_read_only_binds():
    hc = {"Binds": ["/h:/a:ro", "/h:/b", "vol:/c:ro"],
          "Mounts": [{"Type": "bind", "Source": "/h", "Target": "/d", "ReadOnly": True}]}
    old = {p["Destination"]: p for p in ms.plan(hc, {}, {}, lambda p: True, api_before_1_44=True)}
    assert old["/a"]["ReadOnlyNonRecursive"] and old["/d"]["ReadOnlyNonRecursive"]
    assert not old["/b"]["ReadOnlyNonRecursive"]
    assert not old["/c"]["ReadOnlyNonRecursive"]        # volumes: recursive whatever the version (as moby)
    assert ms.oci_mount(old["/a"], "/h", None)["options"][-1] == "ro"
    new = {p["Destination"]: p for p in ms.plan(hc, {}, {}, lambda p: True)}
    assert not new["/a"]["ReadOnlyNonRecursive"] and not new["/d"]["ReadOnlyNonRecursive"]
    force = {"Mounts": [{"Type": "bind", "Source": "/h", "Target": "/d", "ReadOnly": True,
                         "BindOptions": {"ReadOnlyForceRecursive": True}}]}
    with pytest.raises(InvalidParameter, match="BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"):
        ms.plan(force, {}, {}, lambda p: True, api_before_1_44=True)
    assert ms.plan(force, {}, {}, lambda p: True)[0]["ReadOnlyForceRecursive"]


def test_volume_driver_only_matters_to_the_volumes_it_makes():
    """dockerd accepts an unknown HostConfig.VolumeDriver when no volume of
    the container uses it (binds, tmpfs, --mount volumes have their own
    driver); a -v or Volumes volume fails its create with the plugin lookup
    (404), on the bare lookup error for a volume that exists already."""
    from dockyard.errors import NotFound
    hc = {"VolumeDriver": "nope", "Binds": ["/tmp:/h"], "Tmpfs": {"/t": ""},
          "Mounts": [{"Type": "volume", "Source": "mv", "Target": "/m"}, {"Type": "volume", "Target": "/a"}]}
    assert [p["Destination"] for p in ms.plan(hc, {}, {}, lambda p: True)] == ["/h", "/m", "/a", "/t"]
    # an image VOLUME a bind covers makes no volume either
    assert len(ms.plan(hc, {}, {"Volumes": {"/h": {}}}, lambda p: True)) == 4
    with pytest.raises(NotFound, match=r'^create [0-9a-f]{64}: error looking up volume plugin nope: '
                                       r'plugin "nope" not found$'):
        ms.plan(hc, {}, {"Volumes": {"/data": {}}}, lambda p: True)
    with pytest.raises(NotFound, match=r'^create v1: error looking up volume plugin nope'):
        ms.plan({"VolumeDriver": "nope", "Binds": ["v1:/v"]}, {"Volumes": {"/x": {}}}, {}, lambda p: True)
    with pytest.raises(NotFound, match=r'^error looking up volume plugin nope: plugin "nope" not found$'):
        ms.plan({"VolumeDriver": "nope", "Binds": ["v1:/v"]}, {}, {}, lambda p: True, volume_exists=lambda n: True)

"""tests/refcontainerd.py's containerd config: valid TOML whose CRI plugin is on,
with everything it writes under the run's base (never the host's containerd's
paths), the mirrors given, and restrict_oom_score_adj for hosts without
CAP_SYS_RESOURCE; and its CNI conflist."""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import refcontainerd  # noqa: E402


def test_config_is_private_and_cri_enabled(tmp_path):
    c = refcontainerd.RefContainerd(tmp_path, mirrors={"registry.k8s.io": "http://127.0.0.1:5000"},
                                    sandbox_image="registry.k8s.io/pause:3.9")
    cfg = tomllib.loads(c.config())
    base = str(c.base)
    assert "io.containerd.grpc.v1.cri" not in cfg["disabled_plugins"]
    assert cfg["grpc"]["address"] == c.sock and c.sock.startswith(base + "/")
    for path in (cfg["root"], cfg["state"], cfg["plugins"]["io.containerd.internal.v1.opt"]["path"]):
        assert path.startswith(base + "/")
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True and cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.9"
    assert cri["cni"]["conf_dir"] == str(c.cni_conf_dir) and cri["cni"]["bin_dir"] == refcontainerd.CNI_BIN
    assert cri["registry"]["mirrors"]["registry.k8s.io"]["endpoint"] == ["http://127.0.0.1:5000"]
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["Root"].startswith(base + "/") and runc["options"]["SystemdCgroup"] is False
    assert c.state == Path(cfg["state"])


def test_bridge_conflist(tmp_path):
    refcontainerd.write_bridge_conflist(tmp_path / "net.d", "pods-x", "rdx", "10.250.1.0/24", tmp_path / "ipam")
    conf = json.loads((tmp_path / "net.d" / "10-pods.conflist").read_text())
    bridge, portmap = conf["plugins"]
    assert conf["name"] == "pods-x" and bridge["bridge"] == "rdx"
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.250.1.0/24"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")
    assert portmap["capabilities"] == {"portMappings": True}

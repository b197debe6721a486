"""Every on-disk and exec-root path of a container, in one place.

    <data-root>/containers/<id>/          hostname, hosts, resolv.conf, ctr.log, checkpoints/
    <data-root>/overlay/<id>/             upper, work (rootfs.RootFS)
    <data-root>/rootfs/<id>               its mounted rootfs (rootfs.RootFS.merged)
    <exec-root>/c/<id>/                   the OCI bundle (0700): config.json, pidfiles, conmon's ctl
    <exec-root>/exits/<id>                the exit code conmon writes
    <exec-root>/s/<id[:12]>/attach        conmon's attach socket (short: sun_path is 108 bytes)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..runtime.conmon import Paths
from .rootfs import RootFS


@dataclass
class ContainerPaths(Paths):
    """conmon's `Paths` (bundle, exit dir, socket dir, log) and the daemon's own."""
    dir: str = ""           # <data-root>/containers/<id>
    data_root: str = ""
    cid: str = ""

    @property
    def rootfs(self) -> RootFS:
        return RootFS(self.data_root, self.cid)

    @property
    def checkpoints(self) -> str:
        return os.path.join(self.dir, "checkpoints")

    @property
    def attach_dir(self) -> str:
        return os.path.join(self.socket_dir, self.cid[:12])


@dataclass(frozen=True)
class Layout:
    data_root: str
    exec_root: str

    @property
    def containers_dir(self) -> str:
        return os.path.join(self.data_root, "containers")

    def container(self, cid: str) -> ContainerPaths:
        cdir = os.path.join(self.data_root, "containers", cid)
        return ContainerPaths(bundle=os.path.join(self.exec_root, "c", cid),
                              exit_dir=os.path.join(self.exec_root, "exits"),
                              socket_dir=os.path.join(self.exec_root, "s"),
                              log_path=os.path.join(cdir, "ctr.log"),
                              dir=cdir, data_root=self.data_root, cid=cid)

"""The daemon: wires the services together and nothing else.

Its configuration is complete before anything starts (`DaemonConfig`, built
by the composition root from dockerd's flags). The container verbs live in
lifecycle.py (they take the container lock), exits and the restart policy in
exits.py, paths in paths.py, taking things down in teardown.py.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field

from ..images.service import ImageService
from ..network.manager import NetworkManager
from ..runtime.criu import CriuProbe
from ..runtime.hostfacts import HostFacts
from ..runtime.runtimes import Runtimes
from ..store.db import Database
from ..volumes.service import VolumeService
from .attach import AttachManager
from .container import Container
from .events import Events
from .health import HealthMonitor
from .lifecycle import Lifecycle
from . import rootfs
from .lookup import ContainerStore
from .monitor import ExitMonitor
from .paths import ContainerPaths, Layout
from .teardown import Teardown

log = logging.getLogger("dockyard.daemon")

FLUSH_INTERVAL = 3.0     # seconds between retries of saves a full disk refused


@dataclass(frozen=True)
class DaemonConfig:
    data_root: str = "/var/lib/dockyard"
    exec_root: str = "/run/dockyard"
    host: str = "unix:///run/dockyard/dockyard.sock"
    pidfile: str = ""
    default_runtime: str = "crun"
    runtime_paths: dict = field(default_factory=dict)   # daemon.json runtimes.<name>.path, when absolute
    bridge: str = "dockyard0"
    bip: str | None = None
    ipv6: bool = False               # --ipv6: IPv6 on the default bridge too
    fixed_cidr_v6: str = ""          # --fixed-cidr-v6: its subnet (else a ULA /64, kept across restarts)
    default_address_pools: tuple = ()   # --default-address-pool: network.subnets.Pool, checked
    debug: bool = False
    log_level: str = "info"
    cgroup_parent: str = "dockyard"  # --cgroup-parent: containers live at /<parent>/<id>
    criu_path: str | None = None     # --criu-path; else criu on PATH, else scripts/install-criu.sh's
    userns_remap: str = ""           # --userns-remap: default | user[:group] (runtime/userns.py)
    insecure_registries: tuple[str, ...] = ()   # --insecure-registry: plain HTTP allowed (pull, push, login)
    log_driver: str = "json-file"    # --log-driver: containers' default
    log_opts: dict = field(default_factory=dict)   # --log-opt k=v: the default driver's options
    hosts: tuple[str, ...] = ()      # every -H (host is the first)
    registry_mirrors: tuple[str, ...] = ()      # --registry-mirror: tried first for Docker Hub images
    labels: tuple[str, ...] = ()     # --label k=v: the daemon's own labels (docker info)
    default_ulimits: dict = field(default_factory=dict)   # --default-ulimit: {name: {Name, Soft, Hard}}
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    live_restore: bool = True        # accepted; containers always outlive the daemon
    features: dict = field(default_factory=dict)
    config_file: str = ""            # the daemon.json read (it may not exist)
    listen_warnings: tuple[str, ...] = ()       # plain-TCP listeners, as dockerd warns in /info
    cni_bin_dirs: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")   # --cni-bin-dir: the CRI pods' CNI plugins
    cni_conf_dir: str = "/etc/cni/net.d"        # --cni-conf-dir: their network config
    cri_registry_mirrors: dict = field(default_factory=dict)   # {registry host or "*": (mirror URL, ...)}


class Daemon:
    def __init__(self, config: DaemonConfig):
        self.config = config
        self.started_at = time.time()
        self.layout = Layout(config.data_root, config.exec_root)
        for d in (config.data_root, config.exec_root):   # dockerd's 0710 root:root; an older 0711 tightened
            os.makedirs(d, mode=0o710, exist_ok=True)
            os.chown(d, 0, 0)
            os.chmod(d, 0o710)
        os.makedirs(self.layout.containers_dir, mode=0o700, exist_ok=True)
        rootfs.prepare(config.data_root)
        self.db = Database(os.path.join(config.data_root, "dockyard.db"))
        self.facts = HostFacts.detect()
        self.runtimes = Runtimes(config.exec_root, config.default_runtime, paths=config.runtime_paths,
                                 data_root=config.data_root)
        self.containers = ContainerStore(self.db)
        self.events = Events(path=os.path.join(config.data_root, "events.jsonl"))   # kept across restarts
        self.images = ImageService(self.db, os.path.join(config.data_root, "image"), in_use=self._image_users,
                                   emit=self.events.emit)
        self.volumes = VolumeService(self.db, config.data_root)
        self.remap = None
        if config.userns_remap:
            from ..runtime.userns import Remap
            self.remap = Remap(config.userns_remap, config.data_root)
            self.volumes.owner = self.remap.owner
            # the remapped root must reach its /etc/hosts & co under containers/<id>:
            # through the data root by its group (dockerd's root:<remapped gid> 0710)
            os.chown(config.data_root, 0, self.remap.owner[1])
            os.chmod(self.layout.containers_dir, 0o711)
        self.networks = NetworkManager(self.db, config.exec_root, bridge=config.bridge, bip=config.bip,
                                       ipv6=config.ipv6 or bool(config.fixed_cidr_v6),
                                       fixed_cidr_v6=config.fixed_cidr_v6 or None,
                                       address_pools=config.default_address_pools,
                                       container_name=self._container_name, emit=self.events.emit)
        self.attach = AttachManager()
        self.criu = CriuProbe(config.criu_path, config.exec_root)
        self.teardown = Teardown(self.layout, self.runtime_for, self.networks, self.volumes,
                                 config.cgroup_parent)
        from .logrotate import LogRotator
        self.logrotate = LogRotator(self.containers, self.layout)
        self.health = HealthMonitor(self.containers, self.layout, self.runtime_for, self.save, self.event)
        self.lifecycle = Lifecycle(self)
        from .exec import ExecManager
        self.execs = ExecManager(self.db, self.containers, self.layout, self.runtime_for, self.facts.bounding,
                                 self.event, self.lifecycle.spawn)
        self.monitor = ExitMonitor(self.lifecycle.on_conmon_exit)
        from .build.service import BuildService
        self.builder = BuildService(self)
        from .pods import PodService
        from ..network.cni import CNI
        from .pods import CniPodNetwork
        cni = CNI(config.cni_bin_dirs, config.cni_conf_dir, os.path.join(config.data_root, "cri", "cni"), timeout=120)
        self.pods = PodService(self.db, config.data_root, config.exec_root,   # the CRI's pod sandboxes
                               CniPodNetwork(cni), emit=self.events.emit)
        from .podcontainers import PodContainers
        self.pod_containers = PodContainers(self)                            # and their containers
        self._flusher: asyncio.Task | None = None

    # ------------------------------------------------------------ set-up
    async def setup(self) -> None:
        """Set up the host side and re-adopt the containers. If that fails, what
        it began is let finish or undone before the error goes on: the CRIU
        lookup (asyncio.run would cancel it mid-spawn, and Python 3.11's
        subprocess transport can then wait forever) and the mounts of our own."""
        self.criu.start()     # `criu check` runs beside the network set-up
        try:
            await self._setup_host()
        except BaseException:
            await self.criu.settle()
            self._release_mounts()
            raise

    async def _setup_host(self) -> None:
        from ..network.proxy import PortProxy
        from ..network.resolver import DnsService
        # the containers' embedded DNS (it needs the manager, so it comes at set-up), the IPv6 port relays
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.networks.setup, DnsService(loop, self.networks), PortProxy(loop))
        self.teardown.trash.sweep()     # what a previous daemon had not deleted yet
        from .recover import recover
        await recover(self)
        self.logrotate.start()
        self.health.resume()
        self._flusher = asyncio.ensure_future(self._flush_dirty())

    async def _flush_dirty(self) -> None:
        """Saves a full disk refused (lookup.py), and exit cleanups it cut
        short (exits.py), are done once space returns."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                if self.containers.dirty:
                    self.containers.flush()
                await self.lifecycle.exits.retry_cleanup()
            except Exception:
                log.exception("retrying what a full disk refused")

    async def shutdown(self) -> None:
        """Leave containers running (conmon keeps them); just stop watching."""
        self.lifecycle.close()
        self.teardown.close()
        self.monitor.close()
        self.execs.close()
        if self.remap is not None:
            self.remap.release()     # running overlays keep their layers; new starts remount them
        self.logrotate.close()
        if self.networks.dns is not None:
            self.networks.dns.close_all()
        self.networks.close_proxy()
        self.health.close()
        if self._flusher is not None:
            self._flusher.cancel()
        if self.containers.flush():
            log.error("%d containers' last state could not be saved (disk full)", self.containers.dirty)
        self.events.close()
        self.db.close()
        self._release_mounts()

    def _release_mounts(self) -> None:
        """The rootfs/ and netns/ mounts of their own (linux.mount_dir), once
        nothing is mounted under them: at shutdown, and after a failed set-up."""
        rootfs.release(self.config.data_root)
        self.networks.release_mounts()

    # ------------------------------------------------------------ what services ask of each other
    def _image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in self.containers.all() if c.image == image_id]

    def _container_name(self, cid: str) -> str | None:
        c = self.containers.find(cid)
        return c.name if c is not None else None

    def runtime_for(self, c: Container):
        """The container's OCI runtime (the default one if its own is gone)."""
        return self.runtimes.for_name(c.runtime)

    def save(self, c: Container) -> None:
        self.containers.save(c)

    def event(self, c: Container, action: str, **extra) -> None:
        """A container event with Docker's attributes: labels, image, name, extras.
        A CRI container's (its namespace's) are not Docker's events: only its
        namespace's listeners hear them, with its pod's id (the CRI's GetContainerEvents)."""
        if c.namespace:
            self.events.emit("container", action, c.id, {"sandbox": c.cri.get("pod", ""), **extra},
                             namespace=c.namespace)
            return
        attrs = dict(c.config.get("Labels") or {})
        attrs.update(image=c.image_ref, name=c.name, **extra)
        self.events.emit("container", action, c.id, attrs)

    def paths(self, c: Container) -> ContainerPaths:
        return self.layout.container(c.id)

"""System routes: /_ping, /version, /info."""
from __future__ import annotations

import asyncio
import os
import platform
import socket
import time
from typing import TYPE_CHECKING

from .. import API_VERSION, MIN_API_VERSION, __version__
from ..errors import InvalidParameter
from . import server
from .server import Request, Response, route

if TYPE_CHECKING:
    from ..daemon.daemon import Daemon

GIT_COMMIT = "dockyard"


@route("GET", "/_ping")
async def ping(req: Request):
    await _checkpoint_ok(req)   # sets the Docker-Experimental header (server.experimental)
    return Response(200, b"OK", content_type="text/plain; charset=utf-8",
                    headers=[("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache"),
                             ("Builder-Version", "")])


async def _checkpoint_ok(req: Request) -> bool:
    """Checkpoint/restore (Docker's only experimental feature we serve) works here."""
    ok = (await req.daemon.criu.get()).usable
    server.experimental = ok
    return ok


@route("GET", "/version")
async def version(req: Request):
    uname = platform.uname()
    rts = req.daemon.runtimes.available
    comps = [{"Name": "Engine", "Version": __version__,
              "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": GIT_COMMIT,
                          "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": "amd64",
                          "KernelVersion": uname.release, "Experimental": str(await _checkpoint_ok(req)).lower(),
                          "BuildTime": ""}}]
    # as moby's fillPlatformVersion: the default runtime and the init, each
    # with its version and commit as their --version tells
    from ..runtime import initbin
    from ..runtime.runtimes import binary_version
    default = rts.get(req.daemon.runtimes.default)
    try:
        init = initbin.binary()
    except InvalidParameter:      # no init on this host: not listed, as moby when it finds none
        init = ""
    for name, binary in ((req.daemon.runtimes.default, default.binary if default else ""), ("docker-init", init)):
        if binary:
            ver, commit = await asyncio.to_thread(binary_version, binary)
            comps.append({"Name": name, "Version": ver, "Details": {"GitCommit": commit}})
    return {"Platform": {"Name": "dockyard"}, "Components": comps, "Version": __version__,
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": GIT_COMMIT,
            "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": _arch(),
            "KernelVersion": uname.release, "BuildTime": ""}


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


@route("GET", "/info")
async def info(req: Request):
    d = req.daemon
    cs = list(d.containers)
    running = sum(1 for c in cs if c.state.status == "running")
    paused = sum(1 for c in cs if c.state.status == "paused")
    facts = d.facts
    rts = {name: {"path": rt.binary} for name, rt in d.runtimes.available.items()}
    return {
        "ID": "", "Containers": len(cs),
        "ContainersRunning": running, "ContainersPaused": paused, "ContainersStopped": len(cs) - running - paused,
        "Images": len(d.images.list(all=True)), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": None,
                    "Log": ["json-file", "k8s-file", "local"]},
        "MemoryLimit": True, "SwapLimit": bool(getattr(facts, "swap_limit", True)), "KernelMemory": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True,
        "IPv4Forwarding": True, "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": d.config.debug,
        "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": facts.cgroup_version == "v1",
        "NGoroutines": 0, "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "LoggingDriver": d.config.log_driver, "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if facts.cgroup_version == "v2" else "1",
        "NEventsListener": d.events.subscribers, "KernelVersion": platform.release(), "OperatingSystem": _os_name(),
        "OSVersion": "", "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/", "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": _index_configs(d),
            "Mirrors": list(d.config.registry_mirrors)},
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None,
        "DockerRootDir": d.config.data_root, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": socket.gethostname(), "Labels": list(d.config.labels), "ExperimentalBuild": await _checkpoint_ok(req), "ServerVersion": __version__,
        "Runtimes": rts, "DefaultRuntime": d.runtimes.default, "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
            "RemoteManagers": None},
        "LiveRestoreEnabled": d.config.live_restore, "Isolation": "", "InitBinary": "", "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""}, "SecurityOptions": _security_options(d), "CDISpecDirs": [], "Warnings": list(d.runtimes.notes) + list(d.config.listen_warnings),
        "DockyardExecRoot": d.config.exec_root,
        # dockerd's omitempty: only when configured (docker info's "Default Address Pools:")
        **({"DefaultAddressPools": [{"Base": str(p.base), "Size": p.size} for p in d.config.default_address_pools]}
           if d.config.default_address_pools else {}),
    }


def _index_configs(d: Daemon) -> dict:
    """As dockerd: docker.io with its mirrors, and each insecure registry."""
    out = {"docker.io": {"Name": "docker.io", "Mirrors": list(d.config.registry_mirrors), "Secure": True,
                         "Official": True}}
    for r in d.config.insecure_registries:
        if "/" not in r:          # CIDRs are listed in InsecureRegistryCIDRs' way, names here
            out[r] = {"Name": r, "Mirrors": [], "Secure": False, "Official": False}
    return out


def _security_options(d: Daemon) -> list[str]:
    """As `docker info` lists them: seccomp (moby's default profile, built by
    runtime/seccomp_moby.py, is the builtin one, as in dockerd), cgroupns on
    v2. AppArmor is not listed: dockyard loads no AppArmor
    profile (see README)."""
    from ..runtime import seccomp
    opts = ["name=seccomp,profile=builtin"] if seccomp.exists() else []
    if d.remap is not None:
        opts.append("name=userns")
    if d.facts.cgroup_version == "v2":
        opts.append("name=cgroupns")
    return opts

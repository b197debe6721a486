"""Step 4: the OCI runtime spec (Docker's defaults; see runtime/spec.py),
after checking that the command exists in the rootfs."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from ...errors import Conflict, InvalidParameter
from ...runtime import apparmor, devices, initbin, lookpath, seccomp, seccomp_bpf, userns
from ...runtime.command import merge_env, resolve_command
from ...runtime.spec import generate
from ...volumes import propagation, shm
from .. import podcontainers, users
from .context import StartContext

if TYPE_CHECKING:
    from ..daemon import DaemonConfig
    from ..lookup import ContainerStore

NAME = "spec"


class _Daemon(Protocol):
    config: DaemonConfig
    containers: ContainerStore


class CommandNotRunnable(InvalidParameter):
    """Docker's 'executable file not found' start failure (exit code 127/126)."""

    def __init__(self, code: int, message: str):
        super().__init__("failed to create task for container: OCI runtime create failed: "
                         f"unable to start container process: {message}: unknown")
        self.exit_code = code


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    cfg, img = c.config, ctx.image_config
    args = resolve_command(cfg, img)
    hostname = c.network.get("Hostname") or cfg.get("Hostname") or c.id[:12]
    env = merge_env(img.get("Env") or [], cfg.get("Env") or [], hostname, bool(cfg.get("Tty")), ctx.link_env)
    bad = lookpath.check(ctx.rootfs, args[0], env, [m["destination"] for m in ctx.mounts])
    if bad:
        raise CommandNotRunnable(*bad)
    user = users.process_user(cfg.get("User") or img.get("User") or "", c.host_config.get("GroupAdd"), ctx.rootfs)
    if not cfg.get("WorkingDir") and img.get("WorkingDir"):
        pass  # generate() falls back to the image's WorkingDir
    mounts = ctx.mounts
    if c.host_config.get("Init"):
        args, mounts = initbin.wrap(args, mounts)
    remap = userns.for_container(d.remap, c.host_config)
    if remap is not None and c.host_config.get("Privileged"):
        raise InvalidParameter("privileged mode is incompatible with user namespaces.  You must run the "
                               "container in the host namespace when running privileged mode")
    devs, dev_rules = devices.requested(c.host_config.get("Devices"))
    if c.host_config.get("Privileged"):
        devs = devices.host_devices()
    ctx.spec = generate(container_id=c.id, config=cfg, image_config=img,
                        host_config=with_default_ulimits(c.host_config, d.config.default_ulimits),
                        rootfs=ctx.rootfs, hostname=hostname, args=args, env=env,
                        etc_mounts=ctx.etc_files, netns=ctx.netns,
                        cgroups_path=podcontainers.cgroups_path(c, d.config.cgroup_parent), facts=d.facts, user=user,
                        seccomp_profile=seccomp.profile_for(c.host_config.get("SecurityOpt"),
                                                            bool(c.host_config.get("Privileged"))),
                        extra_mounts=mounts, devices=devs, device_rules=dev_rules, ipv6_off=ctx.ipv6_off,
                        join=_donor_namespaces(d, c), id_mappings=remap.idmap.spec() if remap else None,
                        apparmor_profile=apparmor.profile_for(
                            c.host_config.get("SecurityOpt"), bool(c.host_config.get("Privileged")),
                            os.path.join(d.config.exec_root, "apparmor")))
    if c.cri:      # a Kubernetes pod's container: its pod's IPC and UTS namespaces
        podcontainers.join_pod_namespaces(ctx.spec, c)
    root_propagation = propagation.rootfs_propagation(ctx.spec.get("mounts") or ())
    if root_propagation:
        ctx.spec["linux"]["rootfsPropagation"] = root_propagation
    if getattr(ctx.runtime, "name", None) == "crun":
        _precompiled_seccomp(ctx.spec, getattr(ctx.runtime, "libseccomp", seccomp_bpf.DEFAULT_LIBRARY))


def with_default_ulimits(host_config: dict, defaults: dict) -> dict:
    """--default-ulimit / daemon.json's default-ulimits, for each name the
    container did not set (moby's mergeUlimits: at spec time, so a SIGHUP
    reaches containers started afterwards, and inspect shows only the
    container's own)."""
    if not defaults:
        return host_config
    own = host_config.get("Ulimits") or []
    names = {u.get("Name") for u in own}
    extra = [dict(u) for name, u in sorted(defaults.items()) if name not in names]
    return {**host_config, "Ulimits": list(own) + extra} if extra else host_config


def _precompiled_seccomp(spec: dict, library: str = seccomp_bpf.DEFAULT_LIBRARY) -> None:
    """crun takes the filter ready-made (compiled once per profile, with
    the libseccomp crun links) instead of compiling linux.seccomp with
    libseccomp on every create."""
    notes = spec.get("annotations") or {}
    if seccomp_bpf.ANNOTATION in notes or notes.get("run.oci.seccomp_fail_unknown_syscall", "0") != "0":
        return      # the user's own filter, or crun's strict name check: leave them to crun
    bpf = seccomp_bpf.annotation_for(spec.get("linux", {}).get("seccomp"), library)
    if bpf:
        spec.setdefault("annotations", {})[seccomp_bpf.ANNOTATION] = bpf


def _donor_namespaces(d: _Daemon, c) -> dict:
    """--ipc/--pid container:X: the namespace files of X (running)."""
    join = {}
    for kind, key in (("ipc", "IpcMode"), ("pid", "PidMode")):
        mode = c.host_config.get(key) or ""
        if not mode.startswith("container:"):
            continue
        donor = d.containers.get(mode.split(":", 1)[1])
        if not donor.state.running or not donor.state.pid:
            raise Conflict(f"cannot join {kind.upper()} of a non running container: {donor.id}")
        if kind == "ipc" and (donor.host_config.get("IpcMode") or "") not in ("shareable", "host"):
            raise InvalidParameter(f"cannot join IPC of container {donor.id}: non-shareable IPC "
                                   "(hint: use IpcMode:shareable for the donor container)")
        join[kind] = f"/proc/{donor.state.pid}/ns/{kind}"
        if kind == "ipc" and (donor.host_config.get("IpcMode") or "") == "shareable":
            join["shm"] = shm.path(d.config.exec_root, donor.id)    # its /dev/shm, kept on the host
    return join


async def undo(ctx: StartContext) -> None:
    pass

"""Step 3: networking. bridge/none get a namespace made by the engine (so
the runtime joins it by path, and checkpoint/restore can keep it); host
shares the host's; container:<x> joins x's namespace and its /etc files.
User networks, their DNS server and published ports: daemon/networking.py. Then /etc/hostname, /etc/hosts and /etc/resolv.conf are written."""
from __future__ import annotations

import asyncio
import socket
import time

from ...network.etcfiles import write_etc_files
from .. import networking, podcontainers
from .context import StartContext

NAME = "network"


def container_dir(ctx: StartContext) -> str:
    return ctx.daemon.layout.container(ctx.container.id).dir


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    mode = c.network_mode
    cfg = c.config
    hostname = cfg.get("Hostname") or c.id[:12]
    if c.cri:      # a Kubernetes pod's container: the pod's namespace and /etc files
        ctx.netns, ctx.etc_files, c.network = podcontainers.pod_network(c)
        return
    if mode.startswith("container:"):
        target = d.containers.get(mode.split(":", 1)[1])
        ctx.netns = target.network.get("SandboxKey") or f"/proc/{target.state.pid}/ns/net"
        ctx.etc_files = dict(target.network.get("EtcFiles") or {})
        c.network = {"Mode": mode, "SandboxKey": ctx.netns, "EtcFiles": ctx.etc_files,
                     "Hostname": target.network.get("Hostname", target.id[:12])}
        return
    if mode == "host":
        ctx.netns = "host"
        hostname = cfg.get("Hostname") or socket.gethostname()
        ctx.etc_files = write_etc_files(container_dir(ctx), hostname, cfg.get("Domainname", ""), None,
                                        extra_hosts=networking.extra_hosts(d, c, []),
                                        dns=c.host_config.get("Dns") or [],
                                        dns_search=c.host_config.get("DnsSearch") or [],
                                        dns_options=c.host_config.get("DnsOptions") or [],
                                        )
        c.network = {"Mode": "host", "EtcFiles": ctx.etc_files, "Hostname": hostname}
        return
    # a restore asks for the address it was checkpointed with (its sockets may be bound to it)
    ip = getattr(ctx.restore, "ip", None) if ctx.restore else None
    # one worker-thread hop for namespace, endpoints and ports; it undoes its own part if it fails
    parts: dict = {}
    t0 = time.perf_counter()
    eps, rows = await asyncio.to_thread(networking.attach, d, c, hostname, ip, ctx.image_config, parts)
    t1 = time.perf_counter()
    # the hop: waiting for a worker thread (and the GIL), then for the loop to resume this step
    parts["to worker ms"] = round((parts.pop("entered") - t0) * 1000, 3)
    parts["back ms"] = round((t1 - parts.pop("left")) * 1000, 3)
    ep = eps[0]
    ctx.endpoint = ep
    ctx.netns = ep.netns_path
    c.network = {"Mode": "none" if ep.network == "none" else "bridge", "SandboxKey": ep.netns_path}
    try:   # a failing step is not undone by the runner: this one rolls itself back
        _finish(ctx, eps, rows, hostname)
    except BaseException:
        await undo(ctx)
        raise
    parts["etc files ms"] = round((time.perf_counter() - t1) * 1000, 3)
    ctx.trace.detail(NAME, parts)


def _finish(ctx: StartContext, eps: list, rows: list, hostname: str) -> None:
    d, c, cfg, ep = ctx.daemon, ctx.container, ctx.container.config, eps[0]
    user_net = any(e.network not in networking.BRIDGE_MODES for e in eps)
    # user networks: the embedded DNS server in the container's namespace, as Docker's; it forwards
    # what is not a container's name to --dns (or the host's resolvers)
    dns = [networking.EMBEDDED_DNS] if user_net else c.host_config.get("Dns") or []
    dns_options = networking.dns_options(c, user_net)
    ctx.etc_files = write_etc_files(container_dir(ctx), hostname, cfg.get("Domainname", ""), ep.ip,
                                    extra_hosts=networking.extra_hosts(d, c, eps), dns=dns,
                                    dns_search=c.host_config.get("DnsSearch") or [],
                                    dns_options=dns_options, ip6=ep.ip6)
    c.network = {**c.network, "EtcFiles": ctx.etc_files, "Hostname": hostname,
                 **networking.record(c, eps, rows)}
    ctx.link_env = networking.link_env(d, c, eps)
    ctx.ipv6_off = networking.ipv6_off(d, c, eps)


async def undo(ctx: StartContext) -> None:
    c = ctx.container
    if c.network.get("Mode") in ("bridge", "none") or ctx.endpoint is not None:
        await ctx.daemon.teardown.network(c)

"""Step 3: networking. bridge/none get a namespace made by the engine (so
the runtime joins it by path, and checkpoint/restore can keep it); host
shares the host's; container:<x> joins x's namespace and its /etc files.
Then /etc/hostname, /etc/hosts and /etc/resolv.conf are written."""
from __future__ import annotations

import asyncio
import os
import socket

from ...network.etcfiles import write_etc_files
from .context import StartContext

NAME = "network"


def container_dir(ctx: StartContext) -> str:
    return os.path.join(ctx.daemon.config.data_root, "containers", ctx.container.id)


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    mode = c.network_mode
    cfg = c.config
    hostname = cfg.get("Hostname") or c.id[:12]
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
                                        extra_hosts=c.host_config.get("ExtraHosts") or [],
                                        dns=c.host_config.get("Dns") or [],
                                        dns_search=c.host_config.get("DnsSearch") or [],
                                        dns_options=c.host_config.get("DnsOptions") or [],
                                        )
        c.network = {"Mode": "host", "EtcFiles": ctx.etc_files, "Hostname": hostname}
        return
    netmode = "none" if mode == "none" else "bridge"
    # a restore asks for the address it was checkpointed with (its sockets may be bound to it)
    ip = ctx.restore.ip if ctx.restore and netmode == "bridge" else None
    ep = await asyncio.to_thread(d.networks.connect, c.id, netmode, hostname=hostname, ip=ip)
    ctx.endpoint = ep
    ctx.netns = ep.netns_path
    ctx.etc_files = write_etc_files(container_dir(ctx), hostname, cfg.get("Domainname", ""),
                                    ep.ip if netmode == "bridge" else None,
                                    extra_hosts=c.host_config.get("ExtraHosts") or [],
                                    dns=c.host_config.get("Dns") or [],
                                    dns_search=c.host_config.get("DnsSearch") or [],
                                    dns_options=c.host_config.get("DnsOptions") or [])
    c.network = {"Mode": netmode, "SandboxKey": ep.netns_path, "EtcFiles": ctx.etc_files, "Hostname": hostname,
                 "Endpoint": _endpoint_dict(ep)}


def _endpoint_dict(ep) -> dict:
    if not getattr(ep, "ip", None):
        return {}
    return {"IPAddress": ep.ip, "IPPrefixLen": ep.prefixlen, "Gateway": ep.gateway, "MacAddress": ep.mac,
            "NetworkID": ep.network_id, "EndpointID": getattr(ep, "host_veth", ""), "Network": ep.network}


async def undo(ctx: StartContext) -> None:
    c = ctx.container
    if c.network.get("Mode") in ("bridge", "none"):
        await asyncio.to_thread(ctx.daemon.networks.disconnect, c.id)

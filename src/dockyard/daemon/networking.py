"""A container's networks, between the container model and network/:
which networks it asks for, connecting them at start (and live, for
`docker network connect`), the ports it publishes, and how that reads in
inspect."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from ..errors import Forbidden, InvalidParameter, NotFound
from ..network import ports as portmap

if TYPE_CHECKING:
    from ..network.manager import NetworkManager
    from ..network.record import NetworkRecord
    from .container import Container
    from .events import Events
    from .lookup import ContainerStore

BRIDGE_MODES = ("bridge", "none")


class _Daemon(Protocol):
    containers: ContainerStore
    networks: NetworkManager
    events: Events
    def save(self, c: Container) -> None: ...


def primary_network(c) -> str:
    """The network the container's eth0 is on: "bridge", "none" or a user network's name/id."""
    mode = c.network_mode
    return "bridge" if mode == "default" else mode


def endpoints_config(c) -> dict:
    return (c.networking_config or {}).get("EndpointsConfig") or {}


def _ep_cfg(c, d: _Daemon, name: str) -> dict:
    cfgs = endpoints_config(c)
    if name in cfgs:
        return cfgs[name] or {}
    try:
        rec = d.networks.find(name)
    except NotFound:
        return {}
    # the docker CLI keys the default network's settings (e.g. --mac-address) as "default"
    for key in (rec.name, rec.id, *(("default",) if rec.name == "bridge" else ())):
        if key in cfgs:
            return cfgs[key] or {}
    return {}


def wanted_networks(d: _Daemon, c) -> list[str]:
    """The primary network, then every other one in EndpointsConfig, each once (by id)."""
    out, seen = [], set()
    for name in [primary_network(c), *endpoints_config(c)]:
        try:
            rec = d.networks.find(name)
        except NotFound:
            raise NotFound(f"network {name} not found") from None
        if rec.id not in seen:
            seen.add(rec.id)
            out.append(rec.name)
    return out


def validate(d: _Daemon, hc: dict, nc: dict, cfg: dict) -> None:
    """Create-time checks with Docker's wording; nothing is made here."""
    mode = hc.get("NetworkMode") or "bridge"
    eps = (nc or {}).get("EndpointsConfig") or {}
    if not isinstance(eps, dict):
        raise InvalidParameter("invalid NetworkingConfig: EndpointsConfig must be an object")
    for name in [mode, *eps]:
        if name in ("host", "none") or name.startswith("container:"):
            continue
        try:
            rec = d.networks.find(name)
        except NotFound:
            # Docker finds a missing network at start ("network X not found"); a 404 from create
            # would make the docker CLI think the image is missing and try to pull it.
            continue
        ep = eps.get(name) or {}
        ipam = ep.get("IPAMConfig") or {}
        if (ipam.get("IPv4Address") or ep.get("Aliases")) and rec.name == "bridge":
            if ipam.get("IPv4Address"):
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            raise InvalidParameter("network-scoped alias is supported only for containers in user defined "
                                   "networks")
    publishing = any((hc.get("PortBindings") or {}).values()) or hc.get("PublishAllPorts")
    # as dockerd: an error only when sharing another container's namespace; host and none ignore them
    if publishing and mode.startswith("container:"):
        raise InvalidParameter("conflicting options: port publishing and the container type network mode")
    exposed = dict(cfg.get("ExposedPorts") or {})
    portmap.parse(hc.get("PortBindings"), exposed, bool(hc.get("PublishAllPorts")))   # raises on bad specs


def _endpoint_dict(ep) -> dict:
    return {"IPAddress": ep.ip or "", "IPPrefixLen": ep.prefixlen or 0, "Gateway": ep.gateway or "",
            "MacAddress": ep.mac or "", "NetworkID": ep.network_id, "EndpointID": ep.host_veth or "",
            "Network": ep.network, "Aliases": ep.alias_list, "Interface": ep.ifname}


def connect_one(d: _Daemon, c, name: str, hostname: str, cfg: dict | None = None, ip: str | None = None,
                primary: bool = False):
    """Blocking (run in a thread): attach c to one network, honouring its EndpointSettings."""
    cfg = cfg if cfg is not None else _ep_cfg(c, d, name)
    ipam = cfg.get("IPAMConfig") or {}
    # Config.MacAddress: where API < 1.44 clients put the primary network's MAC
    mac = cfg.get("MacAddress") or (c.config.get("MacAddress") if primary else None)
    return d.networks.connect(c.id, name, hostname=hostname, ip=ip or ipam.get("IPv4Address") or None,
                              aliases=list(cfg.get("Aliases") or []), mac=mac or None, name=c.name)


def connect_all(d: _Daemon, c, hostname: str, primary_ip: str | None = None) -> list:
    """Blocking: every wanted network, primary first; undoes the lot if one fails.

    primary_ip: the address a checkpoint was taken with (its sockets may be bound to it)."""
    eps = []
    try:
        for i, name in enumerate(wanted_networks(d, c)):
            eps.append(connect_one(d, c, name, hostname, ip=primary_ip if i == 0 else None, primary=i == 0))
    except BaseException:
        if eps:
            d.networks.disconnect(c.id)
        raise
    return eps


def attach(d: _Daemon, c, hostname: str, primary_ip: str | None, image_config: dict) -> tuple[list, list[tuple]]:
    """Blocking: connect_all, then publish; all undone if any part fails."""
    eps = connect_all(d, c, hostname, primary_ip)
    try:
        return eps, publish(d, c, eps[0], image_config)
    except BaseException:
        d.networks.disconnect(c.id)
        raise


def exposed_ports(c, image_config: dict) -> dict:
    out = dict((image_config or {}).get("ExposedPorts") or {})
    out.update(c.config.get("ExposedPorts") or {})
    return out


def publish(d: _Daemon, c, ep, image_config: dict) -> list[tuple]:
    """Blocking: publish the container's ports to ep's address; [] when it asks for none."""
    hc = c.host_config
    bindings = portmap.parse(hc.get("PortBindings"), exposed_ports(c, image_config),
                             bool(hc.get("PublishAllPorts")))
    if not bindings or not ep.ip:   # network none: nothing to publish to
        return []
    return d.networks.publish(c.id, ep.ip, bindings)


def record(c, eps: list, rows: list[tuple]) -> dict:
    """What c.network keeps about the endpoints (inspect reads it without touching the host)."""
    return {"Endpoint": _endpoint_dict(eps[0]) if eps and eps[0].ip else {},
            "Networks": {ep.network: _endpoint_dict(ep) for ep in eps},
            "Ports": [list(r) for r in rows]}


def host_gateway(d: _Daemon) -> str:
    return d.networks.default_network_info()["Gateway"]


def extra_hosts(d: _Daemon, c, eps: list) -> list[str]:
    """--add-host (host-gateway resolved) and legacy --link entries for /etc/hosts."""
    out = []
    for e in c.host_config.get("ExtraHosts") or []:
        sep = "=" if "=" in e else ":"
        name, _, ip = e.partition(sep)
        out.append(f"{name}:{host_gateway(d)}" if ip == "host-gateway" else e)
    if eps and eps[0].network == "bridge":
        for link in c.host_config.get("Links") or []:
            target, _, alias = link.partition(":")
            target = target.strip("/")
            alias = alias.rsplit("/", 1)[-1] or target
            try:
                other = d.containers.get(target)
            except NotFound:
                raise InvalidParameter(f"could not get container for {target}") from None
            ip = ((other.network or {}).get("Endpoint") or {}).get("IPAddress")
            if not other.state.running or not ip:
                raise InvalidParameter(f"cannot link to a non running container: /{other.name} AS "
                                       f"/{c.name}/{alias}")
            names = " ".join(dict.fromkeys([alias, other.id[:12], other.name]))
            out.append(f"{names}:{ip}")
    return out


# -- live connect/disconnect (docker network connect/disconnect) ------------

async def connect_container(d: _Daemon, c, network: str, cfg: dict) -> None:
    rec = d.networks.find(network)
    if rec.name == "host" or c.network_mode == "host":
        raise Forbidden("container cannot be disconnected from host network or connected to host network")
    if c.network_mode.startswith("container:"):
        raise Forbidden("container sharing network namespace with another container cannot be connected "
                        "to any other network")
    if rec.name == "bridge" and (cfg or {}).get("Aliases"):
        raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
    if rec.name == "bridge" and ((cfg or {}).get("IPAMConfig") or {}).get("IPv4Address"):
        raise InvalidParameter("user specified IP address is supported on user defined networks only")
    async with c.lock:
        eps = dict(endpoints_config(c))
        known = [k for k in eps if k in (rec.name, rec.id)]
        if known or primary_network(c) in (rec.name, rec.id):
            if not c.state.running:
                raise Forbidden(f"endpoint with name {c.name} already exists in network {rec.name}")
        if c.state.running:
            hostname = (c.network or {}).get("Hostname") or c.config.get("Hostname") or c.id[:12]
            ep = await asyncio.to_thread(connect_one, d, c, rec.name, hostname, cfg or {})
            net = dict(c.network)
            net.setdefault("Networks", {})[ep.network] = _endpoint_dict(ep)
            c.network = net
        eps[rec.name] = cfg or {}
        c.networking_config = {**(c.networking_config or {}), "EndpointsConfig": eps}
        d.save(c)
    _emit(d, "connect", rec, container=c.id)


async def disconnect_container(d: _Daemon, c, network: str, force: bool) -> None:
    rec = d.networks.find(network)
    async with c.lock:
        eps = dict(endpoints_config(c))
        names = (rec.name, rec.id)
        configured = primary_network(c) in names or any(k in names for k in eps)
        if c.state.running and d.networks.endpoint(c.id, rec.id) is not None:
            await asyncio.to_thread(d.networks.disconnect, c.id, rec.id)
            net = dict(c.network)
            net["Networks"] = {k: v for k, v in (net.get("Networks") or {}).items() if k != rec.name}
            if (net.get("Endpoint") or {}).get("NetworkID") == rec.id:
                net["Endpoint"] = {}
            c.network = net
        elif not configured and not force:
            raise Forbidden(f"container {c.id} is not connected to network {rec.name}")
        for k in names:
            eps.pop(k, None)
        c.networking_config = {**(c.networking_config or {}), "EndpointsConfig": eps}
        if primary_network(c) in names:
            # its next start puts eth0 on a network it still has, or on none
            rest = [k for k in eps if k != "default"]
            c.host_config = {**c.host_config, "NetworkMode": rest[0] if rest else "none"}
        d.save(c)
    _emit(d, "disconnect", rec, container=c.id)


# -- inspect -----------------------------------------------------------------

def _empty_entry() -> dict:
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
            "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": None}


def networks_view(d: _Daemon, c, find=None) -> dict:
    """NetworkSettings.Networks: every configured network, with addresses while running.
    find: a network lookup by name or id (a listing's memoized one; default d.networks.find)."""
    find = find or d.networks.find
    net = c.network or {}
    live = net.get("Networks") or {}
    if not live and net.get("Endpoint") and net.get("Mode") == "bridge":
        live = {"bridge": net["Endpoint"]}   # recorded before user networks existed
    names = [primary_network(c)] + [k for k in endpoints_config(c) if k != primary_network(c)]
    out = {}
    for name in names:
        entry = _empty_entry()
        cfg = endpoints_config(c).get(name) or {}
        try:
            rec = find(name)
            key, entry["NetworkID"] = rec.name, rec.id
        except NotFound:
            key = name
        if key in out:   # the same network under another key (e.g. the CLI's "default")
            continue
        if cfg.get("IPAMConfig"):
            entry["IPAMConfig"] = cfg["IPAMConfig"]
        if cfg.get("Aliases"):
            entry["Aliases"] = list(cfg["Aliases"])
        ep = live.get(key) if c.state.running else None
        if ep:
            entry.update({"MacAddress": ep.get("MacAddress", ""), "EndpointID": ep.get("EndpointID", ""),
                          "Gateway": ep.get("Gateway", ""), "IPAddress": ep.get("IPAddress", ""),
                          "IPPrefixLen": ep.get("IPPrefixLen", 0)})
            if key not in BRIDGE_MODES:
                entry["DNSNames"] = [c.name, c.id[:12], *(ep.get("Aliases") or [])]
        out[key] = entry
    return out


def ports_view(c, image_config: dict) -> dict:
    """NetworkSettings.Ports: {"80/tcp": [{"HostIp", "HostPort"}] or None for exposed only}."""
    if not c.state.running:
        return {}
    out: dict = {k: None for k in exposed_ports(c, image_config)}
    for proto, host_ip, hport, _cip, cport in (c.network or {}).get("Ports") or []:
        out.setdefault(f"{cport}/{proto}", None)
        out[f"{cport}/{proto}"] = (out[f"{cport}/{proto}"] or []) + [
            {"HostIp": host_ip or "0.0.0.0", "HostPort": str(hport)}]
    return out


def ports_summary(c) -> list[dict]:
    """`docker ps`'s Ports list."""
    if not c.state.running:
        return []
    return [{"IP": host_ip or "0.0.0.0", "PrivatePort": cport, "PublicPort": hport, "Type": proto}
            for proto, host_ip, hport, _cip, cport in (c.network or {}).get("Ports") or []]


# -- `ps` filters ---------------------------------------------------------------

def on_network(d: _Daemon, c, wanted: list[str], find=None) -> bool:
    """`--filter network=X`: X (name or id) is one of the container's networks."""
    find = find or d.networks.find
    ids = set()
    for name in [primary_network(c), *endpoints_config(c)]:
        try:
            rec = find(name)
        except NotFound:
            continue
        ids |= {rec.name, rec.id}
    return any(w in ids or any(i.startswith(w) for i in ids if len(i) == 64) for w in wanted)


def has_port(c, image_config: dict, wanted: list[str], published: bool) -> bool:
    """`--filter publish=80[/tcp]` (a published container port) / `expose=80[/tcp]`."""
    if published:
        have = {f"{r[4]}/{r[0]}" for r in (c.network or {}).get("Ports") or []} if c.state.running else set()
    else:
        have = set(exposed_ports(c, image_config))
    return any((w if "/" in w else f"{w}/tcp") in have for w in wanted)


# -- connect/disconnect events (create, destroy and prune: network/manager.py) --------

def _emit(d: _Daemon, action: str, rec: NetworkRecord, **extra) -> None:
    d.events.emit("network", action, rec.id, {"name": rec.name, "type": rec.driver, **extra})

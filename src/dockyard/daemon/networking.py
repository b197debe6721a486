"""A container's networks, between the container model and network/:
which networks it asks for, connecting them at start (and live, for
`docker network connect`), the ports it publishes, and how that reads in
inspect."""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import os
import time
from typing import TYPE_CHECKING, Protocol

from ..errors import Forbidden, InvalidParameter, NoSuchContainer, NotFound, SystemError_
from ..network import etcfiles, linkenv, plumbing, resolver, usernets
from ..network import ports as portmap
from ..runtime.command import container_config_env

if TYPE_CHECKING:
    from ..images.service import ImageService
    from ..network.manager import NetworkManager
    from ..network.record import NetworkRecord
    from .container import Container
    from .events import Events
    from .lookup import ContainerStore

BRIDGE_MODES = ("bridge", "none")
EMBEDDED_DNS = resolver.ADDRESS   # the nameserver of containers on user networks


class _Daemon(Protocol):
    containers: ContainerStore
    images: ImageService
    networks: NetworkManager
    events: Events
    def save(self, c: Container) -> None: ...


def primary_network(c) -> str:
    """The network the container's eth0 is on: "bridge", "none" or a user network's name/id."""
    mode = c.network_mode
    return "bridge" if mode == "default" else mode


def user_defined(mode: str) -> bool:
    """A network mode naming a user network (moby's NetworkMode.IsUserDefined)."""
    return not (mode in ("default", "bridge", "none", "host") or mode.startswith("container:"))


def endpoints_config(c) -> dict:
    return (c.networking_config or {}).get("EndpointsConfig") or {}


# networking_config key that only dockyard writes (create keeps EndpointsConfig alone): the network
# mode's network was disconnected. As in dockerd, NetworkMode itself never changes: the container
# is on the networks it is connected to, which may be none at all (its next start gives it only lo).
DETACHED = "ModeNetworkDisconnected"


def configured_networks(c) -> list[str]:
    """The names the container is on (dockerd's NetworkSettings.Networks keys, unresolved): the
    network mode's first unless it was disconnected, then EndpointsConfig's."""
    head = [] if (c.networking_config or {}).get(DETACHED) else [primary_network(c)]
    return head + [k for k in endpoints_config(c) if k not in head]


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
    """The primary network, then every other one in EndpointsConfig, each once (by id); "none"
    (a namespace with only lo) when every network was disconnected."""
    out, seen = [], set()
    for name in configured_networks(c) or ["none"]:
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
    for name, ep in eps.items():   # moby's validateNetworkingConfig, for every entry
        if isinstance(ep, dict):
            bad = link_local_error(ep)
            if bad:
                raise InvalidParameter(f"invalid config for network {name}: {bad}")
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
        if (ipam.get("IPv4Address") or ipam.get("IPv6Address") or ep.get("Aliases")) and rec.name == "bridge":
            if ipam.get("IPv4Address") or ipam.get("IPv6Address"):
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            raise InvalidParameter("network-scoped alias is supported only for containers in user defined "
                                   "networks")
    if not user_defined(mode):
        for link in hc.get("Links") or []:      # moby's registerLinks
            target = parse_link(link)[0]
            if d.containers.find(target) is None:
                raise InvalidParameter(f"could not get container for {target}: No such container: {target}")
    publishing = any((hc.get("PortBindings") or {}).values()) or hc.get("PublishAllPorts")
    # as dockerd: an error only when sharing another container's namespace; host and none ignore them
    if publishing and mode.startswith("container:"):
        raise InvalidParameter("conflicting options: port publishing and the container type network mode")
    exposed = dict(cfg.get("ExposedPorts") or {})
    portmap.parse(hc.get("PortBindings"), exposed, bool(hc.get("PublishAllPorts")))   # raises on bad specs


def link_local_error(cfg: dict) -> str | None:
    """moby's EndpointIPAMConfig.Validate of LinkLocalIPs: any address (Go's net.ParseIP: no zone)
    but an unspecified one."""
    for addr in (cfg.get("IPAMConfig") or {}).get("LinkLocalIPs") or []:
        try:
            if "%" not in str(addr) and not ipaddress.ip_address(str(addr)).is_unspecified:
                continue
        except ValueError:
            pass
        return f"invalid link-local IP address: {addr}"
    return None


def _endpoint_dict(ep) -> dict:
    return {"IPAddress": ep.ip or "", "IPPrefixLen": ep.prefixlen or 0, "Gateway": ep.gateway or "",
            "MacAddress": ep.mac or "", "NetworkID": ep.network_id, "EndpointID": ep.host_veth or "",
            "Network": ep.network, "Aliases": ep.alias_list, "Interface": ep.ifname,
            "GlobalIPv6Address": ep.ip6 or "", "GlobalIPv6PrefixLen": ep.ip6_prefixlen or 0,
            "IPv6Gateway": ep.gateway6 or ""}


def connect_one(d: _Daemon, c, name: str, hostname: str, cfg: dict | None = None, ip: str | None = None,
                primary: bool = False, live: bool = False):
    """Blocking (run in a thread): attach c to one network, honouring its EndpointSettings;
    live: c is running (`network connect`), not being started."""
    cfg = cfg if cfg is not None else _ep_cfg(c, d, name)
    ipam = cfg.get("IPAMConfig") or {}
    # Config.MacAddress: where API < 1.44 clients put the primary network's MAC
    mac = cfg.get("MacAddress") or (c.config.get("MacAddress") if primary else None)
    links = [(alias, target) for target, alias in map(parse_link, cfg.get("Links") or [])]
    return d.networks.connect(c.id, name, hostname=hostname, ip=ip or ipam.get("IPv4Address") or None,
                              aliases=list(cfg.get("Aliases") or []), mac=mac or None, name=c.name,
                              links=links, ip6=ipam.get("IPv6Address") or None,
                              link_local=list(ipam.get("LinkLocalIPs") or []), live=live)


@functools.cache
def _kernel_ipv6() -> bool:
    return os.path.isdir("/proc/sys/net/ipv6")


def ipv6_off(d: _Daemon, c, eps: list) -> list[str]:
    """The container's interfaces that have no IPv6 (a network without it,
    and no IPv6 --link-local-ip): the runtime sets their disable_ipv6, as
    dockerd does (network/plumbing.py no_link_local6). Empty on a kernel
    without IPv6."""
    if not _kernel_ipv6():
        return []
    return [ep.ifname for ep in eps if ep.host_veth and plumbing.has_no_ipv6(
        ep.ip6, (_ep_cfg(c, d, ep.network).get("IPAMConfig") or {}).get("LinkLocalIPs") or [])]


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


def start_resolver(d: _Daemon, c) -> bool:
    """Blocking: the embedded DNS server (127.0.0.11) in c's namespace when c is on a user network,
    forwarding to its --dns servers; True if it has one."""
    return d.networks.start_resolver(c.id, list(c.host_config.get("Dns") or []))


def dns_options(c, user_net: bool) -> list[str]:
    """--dns-option, else Docker's ndots:0 for the embedded resolver on user networks."""
    return list(c.host_config.get("DnsOptions") or (["ndots:0"] if user_net else []))


def resolv_at_resolver(c) -> None:
    """A running container joined its first user network: its resolv.conf names the embedded resolver."""
    path = ((c.network or {}).get("EtcFiles") or {}).get("/etc/resolv.conf")
    if path and os.path.exists(path):
        etcfiles.rewrite_resolv_conf(path, [EMBEDDED_DNS], c.host_config.get("DnsSearch") or [],
                                     dns_options(c, True))


def attach(d: _Daemon, c, hostname: str, primary_ip: str | None, image_config: dict,
           parts: dict | None = None) -> tuple[list, list[tuple]]:
    """Blocking: connect_all, the resolver, then publish; all undone if any part fails.
    parts: filled with each part's milliseconds (the start trace's network Parts)."""
    t0 = time.perf_counter()
    eps = connect_all(d, c, hostname, primary_ip)
    t1 = time.perf_counter()
    try:
        start_resolver(d, c)
        t2 = time.perf_counter()
        rows = publish(d, c, eps[0], image_config)
    except BaseException:
        d.networks.disconnect(c.id)
        raise
    if parts is not None:
        t3 = time.perf_counter()
        parts.update({"connect ms": _ms(t1 - t0), "dns ms": _ms(t2 - t1), "ports ms": _ms(t3 - t2),
                      "entered": t0, "left": t3})   # perf_counter times, for the caller's thread hop
    return eps, rows


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def exposed_ports(c, image_config: dict) -> dict:
    out = dict((image_config or {}).get("ExposedPorts") or {})
    out.update(c.config.get("ExposedPorts") or {})
    return out


def publish(d: _Daemon, c, ep, image_config: dict) -> list[tuple]:
    """Blocking: publish the container's ports to ep's address; [] when it asks for none."""
    hc = c.host_config
    bindings = portmap.parse(hc.get("PortBindings"), exposed_ports(c, image_config),
                             bool(hc.get("PublishAllPorts")))
    if not bindings or not (ep.ip or ep.ip6):   # network none: nothing to publish to
        return []
    # the network's com.docker.network.bridge.host_binding_ipv4: where -p binds when it names no address
    default_ip = usernets.host_binding_ipv4(d.networks.find(ep.network_id).config)
    if default_ip:
        bindings = [b if b.host_ip else dataclasses.replace(b, host_ip=default_ip) for b in bindings]
    return d.networks.publish(c.id, ep.ip, bindings, ep.ip6)


def record(c, eps: list, rows: list[tuple]) -> dict:
    """What c.network keeps about the endpoints (inspect reads it without touching the host)."""
    return {"Endpoint": _endpoint_dict(eps[0]) if eps and (eps[0].ip or eps[0].ip6) else {},
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
    for alias, other, ip in _linked(d, c, eps):
        out.append(f"{_link_host_names(alias, other)}:{ip}")
    return out


# -- legacy links (HostConfig.Links, default bridge only) ---------------------------

def parse_link(link: str) -> tuple[str, str]:
    """A link as (target, alias): "target[:alias]" as clients send it, or dockerd's
    "/target:/linking/alias"."""
    target, _, alias = link.partition(":")
    target = target.strip("/")
    return target, alias.rsplit("/", 1)[-1] or target


def links(c) -> list[tuple[str, str]]:
    """HostConfig.Links as (target, alias); none for a container whose network mode is a user
    network (dockerd registers no legacy link for it: its links live in EndpointsConfig)."""
    if user_defined(c.network_mode):
        return []
    return [parse_link(link) for link in c.host_config.get("Links") or []]


def _bridge_ip(other) -> str:
    net = other.network or {}
    return (((net.get("Networks") or {}).get("bridge") or {}).get("IPAddress")
            or (net.get("Endpoint") or {}).get("IPAddress") or "")


def _linked(d: _Daemon, c, eps: list) -> list[tuple[str, object, str]]:
    """(alias, linked container, its bridge address) of each link, when c is on the default bridge."""
    if not any(ep.network == "bridge" for ep in eps):
        return []
    out = []
    for target, alias in links(c):
        try:
            other = d.containers.get(target)
        except NotFound:
            raise InvalidParameter(f"could not get container for {target}: No such container: {target}") from None
        ip = _bridge_ip(other)
        if not other.state.running or not ip:   # moby's setupLinkedContainers: a plain error, 500
            raise SystemError_(f"Cannot link to a non running container: /{other.name} AS /{c.name}/{alias}")
        out.append((alias, other, ip))
    return out


def _link_host_names(alias: str, other) -> str:
    return " ".join(dict.fromkeys([alias, other.id[:12], other.name]))


def link_env(d: _Daemon, c, eps: list) -> list[str]:
    """The linked containers' ALIAS_NAME, ALIAS_PORT_*, ALIAS_ENV_* variables, as dockerd sets them."""
    out = []
    for alias, other, ip in _linked(d, c, eps):
        image_config = d.images.config(other.image) or {}
        out += linkenv.env_vars(f"/{c.name}/{alias}", ip,
                                container_config_env(image_config.get("Env"), other.config.get("Env")),
                                exposed_ports(other, image_config))
    return out


def links_view(d: _Daemon, c) -> list[str] | None:
    """HostConfig.Links as dockerd's inspect shows them: "/target:/linking/alias", target's name now."""
    out = []
    for target, alias in links(c):
        other = d.containers.find(target)
        out.append(f"/{other.name if other is not None else target}:/{c.name}/{alias}")
    return out or None


def link_target(d: _Daemon, c, alias: str):
    """The container c's link `alias` names (dockerd resolves "/linking/alias" like a name)."""
    for target, a in links(c):
        if a == alias and (other := d.containers.find(target)) is not None:
            return other
    raise NoSuchContainer(f"{c.name}/{alias}")


async def remove_link(d: _Daemon, c, alias: str) -> None:
    """`DELETE /containers/linking/alias?link=1`: the link goes from HostConfig.Links and, while
    c runs, from its /etc/hosts (its environment stays, as with dockerd)."""
    async with c.lock:
        given = c.host_config.get("Links") or []
        kept = [link for link in given if parse_link(link)[1] != alias]
        if not any(a == alias for _t, a in links(c)):
            raise NoSuchContainer(f"{c.name}/{alias}")
        c.host_config = {**c.host_config, "Links": kept or None}
        hosts = ((c.network or {}).get("EtcFiles") or {}).get("/etc/hosts")
        if c.state.running and hosts:
            await asyncio.to_thread(etcfiles.drop_hosts_entry, hosts, alias)
        d.save(c)


# -- live connect/disconnect (docker network connect/disconnect) ------------

async def connect_container(d: _Daemon, c, network: str, cfg: dict) -> None:
    rec = d.networks.find(network)
    # dockerd 20.10's answers (statuses and words) for the host network and shared namespaces
    if rec.name == "host" and c.network_mode == "host":
        raise Forbidden(f"endpoint with name {c.name} already exists in network host")
    if rec.name == "host":
        raise InvalidParameter("container cannot be disconnected from host network or connected to host network")
    if c.network_mode == "host" or c.network_mode.startswith("container:"):
        raise InvalidParameter("container sharing network namespace with another container or host cannot be "
                               "connected to any other network")
    if rec.name == "bridge" and (cfg or {}).get("Aliases"):
        raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
    if rec.name == "bridge" and ((cfg or {}).get("IPAMConfig") or {}).get("IPv4Address"):
        raise InvalidParameter("user specified IP address is supported on user defined networks only")
    if bad := link_local_error(cfg or {}):   # moby's updateNetworkConfig: the bare message, 400
        raise InvalidParameter(bad)
    async with c.lock:
        _none_conflict(d, c, rec)
        eps = dict(endpoints_config(c))
        if c.state.running:
            hostname = (c.network or {}).get("Hostname") or c.config.get("Hostname") or c.id[:12]
            ep = await asyncio.to_thread(connect_one, d, c, rec.name, hostname, cfg or {}, live=True)
            if not d.networks.dns_listening(c.id) and await asyncio.to_thread(start_resolver, d, c):
                resolv_at_resolver(c)   # its first user network: names through 127.0.0.11 from now on
            net = dict(c.network)
            net.setdefault("Networks", {})[ep.network] = _endpoint_dict(ep)
            c.network = net
        elif _on(d, c, rec):
            return   # as dockerd: a stopped container already on the network keeps its settings
        if _is_mode_network(d, c, rec):
            c.networking_config = {k: v for k, v in (c.networking_config or {}).items() if k != DETACHED}
        eps[rec.name] = cfg or {}
        c.networking_config = {**(c.networking_config or {}), "EndpointsConfig": eps}
        d.save(c)
    _emit(d, "connect", rec, container=c.id)


async def disconnect_container(d: _Daemon, c, network: str, force: bool) -> None:
    rec = d.networks.find(network)
    if rec.name == "host" and c.network_mode == "host":
        raise InvalidParameter("container cannot be disconnected from host network or connected to host network")
    async with c.lock:
        if c.state.running:
            if d.networks.endpoint(c.id, rec.id) is None:
                raise SystemError_(f"container {c.id} is not connected to network {rec.name}")
            await asyncio.to_thread(d.networks.disconnect, c.id, rec.id)
            net = dict(c.network)
            net["Networks"] = {k: v for k, v in (net.get("Networks") or {}).items() if k != rec.name}
            if (net.get("Endpoint") or {}).get("NetworkID") == rec.id:
                net["Endpoint"] = {}
            c.network = net
        elif not _on(d, c, rec):
            # dockerd's wording for a container that is not running ("the network")
            raise SystemError_(f"container {c.id} is not connected to the network {rec.name}")
        eps = {k: v for k, v in endpoints_config(c).items() if not _names(d, k, rec)}
        nc = {**(c.networking_config or {}), "EndpointsConfig": eps}
        if _is_mode_network(d, c, rec):
            nc[DETACHED] = True   # NetworkMode stays; the next start leaves this network out
        c.networking_config = nc
        d.save(c)
    _emit(d, "disconnect", rec, container=c.id)


def _names(d: _Daemon, key: str, rec: NetworkRecord) -> bool:
    """An EndpointsConfig key or network mode names rec (by name, id, id prefix or "default")."""
    if key in (rec.name, rec.id):
        return True
    try:
        return d.networks.find(key).id == rec.id
    except NotFound:
        return False


def _none_conflict(d: _Daemon, c, rec: NetworkRecord) -> None:
    """moby's updateNetworkSettings: "none" does not go with another network, at connect already."""
    for key in configured_networks(c):
        try:
            other = d.networks.find(key)
        except NotFound:
            continue
        if other.id != rec.id and "none" in (other.name, rec.name):
            raise InvalidParameter("container cannot be connected to multiple networks with one of the networks "
                                   "in private (none) mode")


def _is_mode_network(d: _Daemon, c, rec: NetworkRecord) -> bool:
    return _names(d, primary_network(c), rec)


def _on(d: _Daemon, c, rec: NetworkRecord) -> bool:
    return any(_names(d, k, rec) for k in configured_networks(c))


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
    out = {}
    for name in configured_networks(c):
        entry = _empty_entry()
        cfg = endpoints_config(c).get(name) or {}
        try:
            rec = find(name)
            key, entry["NetworkID"] = rec.name, rec.id
        except NotFound:
            key = name
        if key in out:   # the same network under another key (e.g. the CLI's "default")
            continue
        for given in ("IPAMConfig", "Links", "Aliases", "DriverOpts"):   # as given: [] and {} stay, absent is null
            if cfg.get(given) is not None:
                entry[given] = cfg[given]
        entry["MacAddress"] = cfg.get("MacAddress") or ""   # the one asked for, until a start assigns one
        ep = live.get(key) if c.state.running else None
        if ep:
            entry.update({"MacAddress": ep.get("MacAddress", ""), "EndpointID": ep.get("EndpointID", ""),
                          "Gateway": ep.get("Gateway", ""), "IPAddress": ep.get("IPAddress", ""),
                          "IPPrefixLen": ep.get("IPPrefixLen", 0),
                          "GlobalIPv6Address": ep.get("GlobalIPv6Address", ""),
                          "GlobalIPv6PrefixLen": ep.get("GlobalIPv6PrefixLen", 0),
                          "IPv6Gateway": ep.get("IPv6Gateway", "")})
            if key not in BRIDGE_MODES:
                # moby's buildEndpointDNSNames: name, aliases, short id, hostname, each once
                entry["DNSNames"] = list(dict.fromkeys(n for n in (c.name, *(ep.get("Aliases") or []), c.id[:12],
                                                                   c.config.get("Hostname")) if n))
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
    for name in configured_networks(c):
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

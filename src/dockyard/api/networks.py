"""Network routes (`/networks...`): translate HTTP to the network manager and back
(the manager tells `docker events` of create, destroy and prune)."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .. import filters
from ..daemon import networking
from ..errors import Forbidden, InvalidParameter
from ..network import filters as network_filters
from ..network import usernets
from .server import Request, Response, json_response, route

if TYPE_CHECKING:
    from ..daemon.daemon import Daemon

_PREDEFINED_DRIVERS = network_filters.PREDEFINED_DRIVERS


def _networks(req: Request):
    return req.daemon.networks


def _view(d: Daemon, net, containers: bool = True) -> dict:
    """A network (a NetworkRecord) in Docker's JSON shape, with its endpoints when `containers`."""
    cfg = net.config
    name = net.name
    driver = _PREDEFINED_DRIVERS.get(name, net.driver)
    if name == "bridge":
        options = {"com.docker.network.bridge.default_bridge": "true",
                   "com.docker.network.bridge.enable_icc": "true",
                   "com.docker.network.bridge.enable_ip_masquerade": "true",
                   "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                   "com.docker.network.bridge.name": net.bridge or "",
                   "com.docker.network.driver.mtu": "1500"}
        ipam = {"Driver": "default", "Options": None,
                "Config": ([{"Subnet": net.subnet, "Gateway": net.gateway}] if net.subnet else [])
                + list((cfg.get("IPAM") or {}).get("Config") or [])}   # its IPv6 with dockerd's --ipv6
    elif name in ("host", "none"):
        options, ipam = {}, {"Driver": "default", "Options": None, "Config": []}
    else:
        options, ipam = cfg.get("Options") or {}, cfg.get("IPAM") or {"Driver": "default", "Config": []}
    out = {"Name": name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": driver,
           "EnableIPv4": driver == "bridge" and usernets.ipv4_enabled(cfg), "EnableIPv6": bool(cfg.get("EnableIPv6")), "IPAM": ipam,
           "Internal": bool(cfg.get("Internal")), "Attachable": bool(cfg.get("Attachable")), "Ingress": False,
           "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {}, "Options": options,
           "Labels": cfg.get("Labels") or {}}
    if containers:
        for ep in d.networks.network_endpoints(net.id):
            c = d.containers.find(ep.container_id)
            out["Containers"][ep.container_id] = {
                "Name": c.name if c is not None else (ep.name or ""), "EndpointID": ep.host_veth or "",
                "MacAddress": ep.mac or "", "IPv4Address": f"{ep.ip}/{ep.prefixlen}" if ep.ip else "",
                "IPv6Address": f"{ep.ip6}/{ep.ip6_prefixlen}" if ep.ip6 else ""}
    return out


@route("GET", "/networks")
async def list_networks(req: Request):
    d = req.daemon
    keep = network_filters.list_keep(d.networks, filters.parse(req.param("filters"), network_filters.LIST_FILTERS))
    # Containers stays empty in lists since API 1.28, as in dockerd
    return [_view(d, net, containers=not req.api_at_least("1.28")) for net in d.networks.networks() if keep(net)]


@route("GET", "/networks/{id}")
async def inspect(req: Request):
    return _view(req.daemon, req.daemon.networks.find(req.match["id"]))


@route("POST", "/networks/create")
async def create(req: Request):
    body = await req.json(default=None)
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    name = body.get("Name")
    if not name or not isinstance(name, str):
        raise InvalidParameter("network name must not be empty")
    if name in _PREDEFINED_DRIVERS or name == "default":   # moby's createNetwork, before any name conflict
        raise Forbidden(f"operation is not permitted on predefined {name} network ")
    driver = body.get("Driver") or "bridge"
    if driver != "bridge":
        raise InvalidParameter(f"could not find plugin {driver} in v1 plugin registry: plugin not found"
                               if driver not in ("host", "null") else
                               f"only one instance of \"{driver}\" network is allowed")
    if body.get("Scope") not in (None, "", "local"):
        raise InvalidParameter(f"invalid scope {body['Scope']}: only local networks are supported")
    for key in ("Options", "Labels", "IPAM"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise InvalidParameter(f"invalid {key}: must be an object")
    nid = await asyncio.to_thread(
        _networks(req).create_network, name, internal=bool(body.get("Internal")),
        attachable=bool(body.get("Attachable")), labels=body.get("Labels"), options=body.get("Options"),
        ipam=body.get("IPAM"), enable_ipv6=bool(body.get("EnableIPv6")),
        # EnableIPv4 (false: an IPv6-only network) came with API 1.48; moby ignores it before
        enable_ipv4=bool(body["EnableIPv4"]) if body.get("EnableIPv4") is not None and req.api_at_least("1.48")
        else None)
    return json_response({"Id": nid, "Warning": ""}, 201)


@route("DELETE", "/networks/{id}")
async def remove(req: Request):
    await asyncio.to_thread(_networks(req).remove_network, req.match["id"])
    return Response(204)


@route("POST", "/networks/prune")
async def prune(req: Request):
    keep = network_filters.prune_keep(filters.parse(req.param("filters"), network_filters.PRUNE_FILTERS))
    deleted = await asyncio.to_thread(_networks(req).prune, keep)
    return {"NetworksDeleted": deleted or None}


async def _container_body(req: Request) -> tuple[dict, object]:
    body = await req.json(default=None)
    if not isinstance(body, dict) or not body.get("Container"):
        raise InvalidParameter("container is required")
    return body, req.daemon.containers.get(body["Container"])


@route("POST", "/networks/{id}/connect")
async def connect(req: Request):
    body, c = await _container_body(req)
    cfg = body.get("EndpointConfig") or {}
    if not isinstance(cfg, dict):
        raise InvalidParameter("invalid EndpointConfig: must be an object")
    await networking.connect_container(req.daemon, c, req.match["id"], cfg)
    return Response(200)


@route("POST", "/networks/{id}/disconnect")
async def disconnect(req: Request):
    body, c = await _container_body(req)
    await networking.disconnect_container(req.daemon, c, req.match["id"], bool(body.get("Force")))
    return Response(200)

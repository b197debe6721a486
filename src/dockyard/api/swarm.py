"""Swarm routes answered as a Docker engine that is not part of a swarm, so
SDKs and the CLI that probe swarm get the replies they expect."""
from __future__ import annotations

from ..errors import Unavailable
from .server import Request, route

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
               "to connect this node to swarm and try again.")
NOT_IN_SWARM = "This node is not part of a swarm"
NO_SWARM_MODE = "dockyard does not run swarm mode: this node cannot create or join a swarm"


async def _not_manager(req: Request):
    raise Unavailable(NOT_MANAGER)


async def _not_in_swarm(req: Request):
    raise Unavailable(NOT_IN_SWARM)


async def _no_swarm_mode(req: Request):
    raise Unavailable(NO_SWARM_MODE)


for method, path in [("GET", "/swarm"), ("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"),
                     ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("DELETE", "/nodes/{id}"),
                     ("POST", "/nodes/{id}/update"),
                     ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{id}"),
                     ("DELETE", "/services/{id}"), ("POST", "/services/{id}/update"),
                     ("GET", "/services/{id}/logs"), ("GET", "/tasks"), ("GET", "/tasks/{id}"),
                     ("GET", "/tasks/{id}/logs"), ("GET", "/secrets"), ("POST", "/secrets/create"),
                     ("GET", "/secrets/{id}"), ("DELETE", "/secrets/{id}"), ("POST", "/secrets/{id}/update"),
                     ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{id}"),
                     ("DELETE", "/configs/{id}"), ("POST", "/configs/{id}/update")]:
    route(method, path)(_not_manager)
route("POST", "/swarm/leave")(_not_in_swarm)
route("POST", "/swarm/unlock")(_not_in_swarm)
route("POST", "/swarm/init")(_no_swarm_mode)
route("POST", "/swarm/join")(_no_swarm_mode)

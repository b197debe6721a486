"""POST /auth: translate HTTP <-> images/login.py."""
from __future__ import annotations

import asyncio

from ..images.login import login
from ..images.registry import AuthConfig
from .server import Request, route


@route("POST", "/auth")
async def auth(req: Request):
    body = await req.json(default={})
    cfg = AuthConfig.from_dict(body if isinstance(body, dict) else {})
    insecure = req.daemon.config.insecure_registries
    return await asyncio.to_thread(login, cfg, insecure)

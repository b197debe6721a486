"""`POST /auth` (docker login): check credentials against a registry.

Like dockerd: ping `/v2/`, and if the registry challenges, authenticate
(Basic: a request with the credentials; Bearer: fetch a token with them).
Nothing is stored daemon-side; the client keeps the credentials and sends
them with each pull/push (X-Registry-Auth).
"""
from __future__ import annotations

from ..errors import InvalidParameter
from .registry import INDEX_SERVER, AuthConfig, Registry


def server_host(address: str) -> str:
    """"https://127.0.0.1:5000/v2/" -> "127.0.0.1:5000"; Docker Hub's index -> its registry."""
    a = (address or INDEX_SERVER).strip()
    for prefix in ("https://", "http://"):
        if a.startswith(prefix):
            a = a[len(prefix):]
    a = a.split("/", 1)[0]
    if a in ("index.docker.io", "docker.io", "registry-1.docker.io", ""):
        return "registry-1.docker.io"
    return a


def login(auth: AuthConfig, insecure: tuple[str, ...] = ()) -> dict:
    if not auth.username and not auth.identitytoken:
        raise InvalidParameter("username is empty")
    reg = Registry(server_host(auth.serveraddress), auth, tuple(insecure))
    reg.ping()
    reg.verify_login()
    return {"Status": "Login Succeeded", "IdentityToken": ""}

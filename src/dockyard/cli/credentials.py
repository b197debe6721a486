"""Registry credentials for the CLI, in docker's config.json format
({"auths": {"host": {"auth": base64(user:password)}}}) under
$DOCKYARD_CONFIG (default ~/.dockyard)."""
from __future__ import annotations

import base64
import json
import os

INDEX_SERVER = "https://index.docker.io/v1/"


def config_path() -> str:
    base = os.environ.get("DOCKYARD_CONFIG") or os.path.join(os.path.expanduser("~"), ".dockyard")
    return os.path.join(base, "config.json")


def _load() -> dict:
    try:
        with open(config_path()) as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(doc: dict) -> None:
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent="\t")
    os.replace(tmp, path)


def server_key(registry: str | None) -> str:
    if not registry or registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return INDEX_SERVER
    return registry.split("://", 1)[-1].rstrip("/")


def store(registry: str, username: str, password: str) -> None:
    doc = _load()
    doc.setdefault("auths", {})[server_key(registry)] = {
        "auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    _save(doc)


def remove(registry: str) -> bool:
    doc = _load()
    if doc.get("auths", {}).pop(server_key(registry), None) is None:
        return False
    _save(doc)
    return True


def header_for(registry: str) -> str:
    """X-Registry-Auth for a registry host: base64url JSON, empty object if none."""
    entry = _load().get("auths", {}).get(server_key(registry)) or {}
    doc: dict = {}
    if entry.get("auth"):
        user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
        doc = {"username": user, "password": pw, "serveraddress": server_key(registry)}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def all_auth_configs() -> dict:
    """Every stored login as {server: AuthConfig}: the build's X-Registry-Config
    (the docker CLI sends them all, since FROM may name any registry)."""
    out = {}
    for server, entry in (_load().get("auths") or {}).items():
        if isinstance(entry, dict) and entry.get("auth"):
            user, _, pw = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
            out[server] = {"username": user, "password": pw, "serveraddress": server}
    return out

"""`docker search` (GET /images/search) and `docker manifest`-style
distribution inspect (GET /distribution/{name}/json), as moby's registry
service does them.

search: the term names its index (`myreg:5000/word` searches myreg:5000,
anything else Docker Hub's index.docker.io) and the index's v1 search API
answers; limit and filters are checked first, with moby's words.
distribution inspect: the manifest's descriptor as the registry serves it,
and the platforms it covers (an index's entries, else the config's).
"""
from __future__ import annotations

import json
import urllib.parse

from ..errors import InvalidParameter
from .archive import INDEX_TYPES
from .reference import Reference
from .registry import MANIFEST_ACCEPT, AuthConfig, Registry, RegistryError, is_insecure, is_loopback, \
    registry_host, repo_scope

HUB_INDEX = "index.docker.io"
_MAX = 4 << 20


def split_term(term: str) -> tuple[str, str]:
    """(index host, remote term), as moby's splitReposSearchTerm."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if first in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            return HUB_INDEX, rest
        return first, rest
    return HUB_INDEX, term


def check_filters(filters: dict) -> tuple[bool | None, bool | None, int]:
    """(is-automated, is-official, minimum stars) from the `filters` query."""
    def one_bool(name: str) -> bool | None:
        vals = filters.get(name) or []
        if not vals:
            return None
        v = vals[-1] if isinstance(vals, list) else vals
        if v not in ("true", "false", "1", "0"):
            raise InvalidParameter(f"invalid filter '{name}={v}'")
        return v in ("true", "1")
    automated, official = one_bool("is-automated"), one_bool("is-official")
    stars = 0
    for v in filters.get("stars") or []:
        try:
            stars = max(stars, int(v))
        except ValueError:
            raise InvalidParameter(f"invalid filter 'stars={v}'") from None
    return automated, official, stars


def search(term: str, limit: int | None, filters: dict, auth: AuthConfig,
           insecure: tuple[str, ...] = ()) -> list[dict]:
    if limit is None:
        limit = 25
    if not 1 <= limit <= 100:
        raise InvalidParameter(f"limit {limit} is outside the range of [1, 100]")
    automated, official, stars = check_filters(filters)
    host, remote = split_term(term)
    if not remote:
        raise InvalidParameter("invalid search term: empty")
    query = urllib.parse.urlencode({"q": remote, "n": str(limit)})
    reg = Registry(host, auth, insecure)
    schemes = ["http", "https"] if is_loopback(host) else (
        ["https", "http"] if is_insecure(host, insecure) else ["https"])
    last: Exception | None = None
    for scheme in schemes:
        try:
            r = reg.unauthenticated("GET", f"{scheme}://{host}/v1/search?{query}",
                                    {"Authorization": _basic(auth)} if auth.has_basic else None)
        except RegistryError as e:
            last = e
            continue
        try:
            body = r.read(_MAX)
        finally:
            r.close()
        if r.status != 200:
            raise RegistryError(f"Unexpected status code {r.status}", 500)
        try:
            results = json.loads(body).get("results") or []
        except (ValueError, AttributeError):
            raise RegistryError(f"invalid search reply from {host}", 500) from None
        out = []
        for res in results:
            if not isinstance(res, dict):
                continue
            if automated is not None and bool(res.get("is_automated")) != automated:
                continue
            if official is not None and bool(res.get("is_official")) != official:
                continue
            if int(res.get("star_count") or 0) < stars:
                continue
            out.append({"star_count": int(res.get("star_count") or 0),
                        "is_official": bool(res.get("is_official")), "name": str(res.get("name") or ""),
                        "is_automated": bool(res.get("is_automated")),
                        "description": str(res.get("description") or "")})
        return out[:limit]
    raise last if last else RegistryError(f"cannot reach index {host}", 500)


def _basic(auth: AuthConfig) -> str:
    import base64
    return "Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()


def distribution_inspect(ref: Reference, auth: AuthConfig, insecure: tuple[str, ...] = ()) -> dict:
    reg = Registry(registry_host(ref.domain), auth, insecure)
    scope = repo_scope(ref.path, "pull")
    reg.ping(scope)
    want = ref.digest or ref.tag or "latest"
    r = reg.request("GET", f"/v2/{ref.path}/manifests/{want}", {"Accept": MANIFEST_ACCEPT}, scope=scope)
    try:
        body = r.read(_MAX + 1)
        media = r.header("Content-Type").split(";")[0].strip()
    finally:
        r.close()
    if len(body) > _MAX:
        raise InvalidParameter("manifest too large")
    import hashlib
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError(f"invalid manifest for {ref.familiar()}", 500) from None
    media = media or doc.get("mediaType") or ""
    platforms = []
    if media in INDEX_TYPES or "manifests" in doc:
        for m in doc.get("manifests") or []:
            p = m.get("platform") or {}
            if p:
                platforms.append({k: v for k, v in p.items() if v not in (None, "", [])})
    elif isinstance(doc.get("config"), dict):
        c = reg.request("GET", f"/v2/{ref.path}/blobs/{doc['config']['digest']}", scope=scope)
        try:
            cfg = json.loads(c.read(8 << 20) or b"{}")
        except ValueError:
            cfg = {}
        finally:
            c.close()
        p = {"architecture": cfg.get("architecture", ""), "os": cfg.get("os", "")}
        if cfg.get("variant"):
            p["variant"] = cfg["variant"]
        platforms.append(p)
    return {"Descriptor": {"mediaType": media, "digest": digest, "size": len(body)}, "Platforms": platforms}

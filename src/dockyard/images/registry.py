"""A client for the Distribution API v2 (what `docker pull/push` talk to).

stdlib http.client only. One `Registry` per (host, credentials) and
operation; it is shared by the transfer threads, so it opens one
connection per request (loopback and LAN registries make that cheap, and
http.client connections are not thread-safe).

Auth follows Docker's order: ping `GET /v2/`, read the `WWW-Authenticate`
challenge, then either send Basic credentials with every request or fetch
a bearer token from the challenge's realm (with Basic credentials if we
have them, anonymously if not) for the repository scope. A 401 later (a
token for another scope, an expired one) fetches a new token and retries
once.

Plain HTTP only for loopback hosts and `--insecure-registry` ones (tried
with TLS first, like Docker); TLS with the system CAs otherwise.
"""
from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ..errors import DockyardError, InvalidParameter, NotFound

DEFAULT_REGISTRY_HOST = "registry-1.docker.io"
INDEX_SERVER = "https://index.docker.io/v1/"
TIMEOUT = 60.0

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


class Unauthorized(DockyardError):      # errdefs.Unauthorized
    status = 401


class RegistryError(DockyardError):
    """An error answer from a registry, worded as Docker words it."""

    def __init__(self, message: str, status: int = 500, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


# ---------------------------------------------------------------- credentials

@dataclass
class AuthConfig:
    username: str = ""
    password: str = ""
    identitytoken: str = ""
    registrytoken: str = ""
    serveraddress: str = ""

    @classmethod
    def from_dict(cls, d: dict | None) -> "AuthConfig":
        d = d or {}
        user, pw = d.get("username") or "", d.get("password") or ""
        if not user and d.get("auth"):      # "auth": base64("user:pass")
            try:
                user, _, pw = base64.b64decode(d["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                pass
        return cls(user, pw, d.get("identitytoken") or d.get("identityToken") or "",
                   d.get("registrytoken") or "", d.get("serveraddress") or "")

    @classmethod
    def from_header(cls, value: str | None) -> "AuthConfig":
        """X-Registry-Auth: base64url JSON (padding optional); garbage is no credentials,
        as in Docker (it only logs)."""
        if not value:
            return cls()
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            d = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return cls()
        return cls.from_dict(d if isinstance(d, dict) else {})

    @property
    def has_basic(self) -> bool:
        return bool(self.username or self.password)


_CHALLENGE_ITEM = re.compile(
    r'[\s,]*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?')


def parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """WWW-Authenticate -> [(scheme lowercased, params)], e.g.
    'Bearer realm="https://a/token",service="reg",scope="repository:x:pull"'.
    A bare token starts a challenge, `key=value` adds to it; quoted values
    may hold commas and escaped quotes."""
    out: list[tuple[str, dict[str, str]]] = []
    for m in _CHALLENGE_ITEM.finditer(header or ""):
        key, value = m.group(1), m.group(2)
        if value is None:
            out.append((key.lower(), {}))
        elif out:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            out[-1][1][key.lower()] = value
    return out


# ---------------------------------------------------------------- hosts

def registry_host(domain: str) -> str:
    """The host to talk to for a reference's domain (docker.io's API lives elsewhere)."""
    return DEFAULT_REGISTRY_HOST if domain in ("docker.io", "index.docker.io") else domain


def is_loopback(host: str) -> bool:
    name = host
    if name.startswith("["):
        name = name[1:name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_insecure(host: str, insecure: list[str] | tuple[str, ...] = ()) -> bool:
    """Plain HTTP allowed? Loopback always; else the host:port, host or a CIDR given
    with --insecure-registry."""
    if is_loopback(host):
        return True
    name = host.rsplit(":", 1)[0].strip("[]") if not host.endswith("]") else host.strip("[]")
    for entry in insecure:
        if entry in (host, name):
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


# ---------------------------------------------------------------- client

@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    conn: http.client.HTTPConnection
    raw: http.client.HTTPResponse

    def read(self, n: int = -1) -> bytes:
        return self.raw.read(n) if n >= 0 else self.raw.read()

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            self.conn.close()

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@dataclass
class Registry:
    host: str                                  # "127.0.0.1:5000", "registry-1.docker.io"
    auth: AuthConfig = field(default_factory=AuthConfig)
    insecure: tuple[str, ...] = ()
    scheme: str = ""                           # found by ping
    _authz: str = ""                           # Authorization header value
    _challenge: tuple[str, dict] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- connections
    def _connect(self, scheme: str) -> http.client.HTTPConnection:
        if scheme == "https":
            ctx = ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, timeout=TIMEOUT, context=ctx)
        return http.client.HTTPConnection(self.host, timeout=TIMEOUT)

    def base_url(self) -> str:
        return f"{self.scheme or 'https'}://{self.host}"

    def verify_login(self) -> None:
        """After `ping`, for docker login: Unauthorized unless /v2/ accepts
        our credentials (an open registry accepts anything)."""
        if not self._challenge:
            return
        r = self._raw("GET", "/v2/", {"Authorization": self._authz} if self._authz else {})
        try:
            r.read()
        finally:
            r.close()
        if r.status == 401:
            raise Unauthorized(f"login attempt to {self.base_url()}/v2/ failed with status: "
                               f"{r.status} {r.raw.reason}")

    def unauthenticated(self, method: str, url: str, headers: dict[str, str] | None = None) -> Response:
        """A request without the registry's credentials: where a blob
        request was redirected to (a storage backend)."""
        return self._raw(method, url, headers)

    def _raw(self, method: str, url_or_path: str, headers: dict[str, str] | None = None,
             body: Any = None, scheme: str | None = None, chunked: bool = False) -> Response:
        scheme = scheme or self.scheme or "https"
        if url_or_path.startswith(("http://", "https://")):
            u = urllib.parse.urlsplit(url_or_path)
            conn = (http.client.HTTPSConnection(u.netloc, timeout=TIMEOUT, context=ssl.create_default_context())
                    if u.scheme == "https" else http.client.HTTPConnection(u.netloc, timeout=TIMEOUT))
            path = urllib.parse.urlunsplit(("", "", u.path or "/", u.query, ""))
        else:
            conn, path = self._connect(scheme), url_or_path
        h = {"User-Agent": "dockyard", **(headers or {})}
        try:
            conn.request(method, path, body=body, headers=h, encode_chunked=chunked)
            raw = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _network_error(method, f"{scheme}://{self.host}{path}", e) from None
        return Response(raw.status, raw.headers, conn, raw)

    # -- ping and auth
    def ping(self, scope: str = "") -> None:
        """GET /v2/: pick the scheme, read the challenge, get credentials ready for `scope`."""
        schemes = ["https", "http"] if is_insecure(self.host, self.insecure) else ["https"]
        if is_loopback(self.host):
            schemes = ["http", "https"]     # a loopback registry is almost always plain HTTP
        last: Exception | None = None
        for scheme in schemes:
            try:
                r = self._raw("GET", "/v2/", scheme=scheme)
            except RegistryError as e:
                last = e
                continue
            try:
                r.read()
            finally:
                r.close()
            if r.status == 400 and scheme == "http" and "https" in schemes[1:]:
                continue            # an HTTPS server answering plain HTTP
            self.scheme = scheme
            if r.status == 401:
                ch = parse_challenges(r.header("WWW-Authenticate"))
                self._challenge = ch[0] if ch else ("basic", {})
            elif r.status >= 500:
                raise RegistryError(f"received unexpected HTTP status: {r.status} {r.raw.reason}", 500)
            self.authorize(scope)
            return
        raise last if last else RegistryError(f"cannot reach registry {self.host}")

    def authorize(self, scope: str) -> None:
        if not self._challenge:
            return
        kind, params = self._challenge
        if kind == "basic":
            if not self.auth.has_basic:
                return           # requests will fail with the registry's 401 message
            cred = base64.b64encode(f"{self.auth.username}:{self.auth.password}".encode()).decode()
            self._authz = "Basic " + cred
        elif kind == "bearer":
            self._authz = "Bearer " + self._token(params, scope)

    def _token(self, params: dict, scope: str) -> str:
        if self.auth.registrytoken:
            return self.auth.registrytoken
        realm = params.get("realm")
        if not realm:
            raise RegistryError("bearer challenge without realm", 500)
        q = {"service": params.get("service", "")} if params.get("service") else {}
        if scope:
            q["scope"] = scope
        headers = {}
        if self.auth.has_basic:
            cred = base64.b64encode(f"{self.auth.username}:{self.auth.password}".encode()).decode()
            headers["Authorization"] = "Basic " + cred
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(q)
        r = self._raw("GET", url, headers)
        try:
            body = r.read()
        finally:
            r.close()
        if r.status != 200:
            raise Unauthorized(_error_text(body, r.status, r.raw.reason, url, "GET"))
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(f"invalid token reply from {realm}") from None
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise RegistryError(f"no token in the reply from {realm}")
        return token

    # -- requests
    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: Any = None, scope: str = "", ok: tuple[int, ...] = (200,),
                chunked: bool = False) -> Response:
        """A request with auth; a 401 re-authorizes once when the body can be replayed.
        Statuses not in `ok` (and not 404/401) raise RegistryError."""
        if not self.scheme:
            self.ping(scope)
        for attempt in (0, 1):
            h = dict(headers or {})
            if self._authz:
                h["Authorization"] = self._authz
            r = self._raw(method, path, h, body, chunked=chunked)
            if r.status == 401 and attempt == 0 and (body is None or isinstance(body, bytes)):
                ch = parse_challenges(r.header("WWW-Authenticate"))
                r.read()
                r.close()
                if ch:
                    self._challenge = ch[0]
                    sc = ch[0][1].get("scope") or scope
                    self.authorize(sc)
                    continue
            if r.status in ok:
                return r
            try:
                data = r.read(1 << 20)
            finally:
                r.close()
            raise self.error(r.status, r.raw.reason, data, method, path)
        raise AssertionError("unreachable")

    def error(self, status: int, reason: str, body: bytes, method: str, path: str) -> DockyardError:
        url = f"{self.base_url()}{path}"
        if status == 401:
            if not self.auth.has_basic and not self.auth.registrytoken and \
                    self._challenge and self._challenge[0] == "basic":
                return Unauthorized(f'{method.capitalize()} "{url}": no basic auth credentials')
            return Unauthorized(_error_text(body, status, reason, url, method))
        text = _error_text(body, status, reason, url, method)
        if status == 404:
            return NotFound(text)
        if status == 403:
            return RegistryError(text, 403)
        if status == 400:
            return InvalidParameter(text)
        return RegistryError(text, 500)


def _error_text(body: bytes, status: int, reason: str, url: str, method: str) -> str:
    """The registry's own words: "code: message" like distribution's errcode.Errors."""
    try:
        doc = json.loads(body)
        errs = doc.get("errors") or []
        parts = []
        for e in errs:
            code = (e.get("code") or "").lower().replace("_", " ")
            msg = e.get("message") or ""
            parts.append(f"{code}: {msg}" if code and msg else code or msg)
        if parts:
            return "; ".join(parts) if len(parts) > 1 else parts[0]
        if doc.get("details"):
            return str(doc["details"])
    except (ValueError, AttributeError, TypeError):
        pass
    return f"{method.capitalize()} \"{url}\": {status} {reason}".rstrip()


def _network_error(method: str, url: str, e: Exception) -> RegistryError:
    if isinstance(e, ssl.SSLError):
        return RegistryError(f'{method.capitalize()} "{url}": {e}', 500)
    return RegistryError(f'{method.capitalize()} "{url}": {e}', 500)


def repo_scope(path: str, actions: str) -> str:
    return f"repository:{path}:{actions}"

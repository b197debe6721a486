"""POST /build's query and X-Registry-Config header -> BuildOptions, with
the 400s moby's `newImageBuildOptions` gives (daemon/server/router/build).

Values are read as moby reads them: booleans by httputils.BoolValue, the
resource integers by Int64ValueOrZero (a bad number is 0, not an error),
the JSON parameters by Go's encoding/json, whose error words are kept
(`error reading build args: json: cannot unmarshal array into Go value of
type map[string]*string`)."""
from __future__ import annotations

import base64
import json
import platform as host_platform
import re
from typing import Any

from ..daemon.build.options import BuildOptions
from ..errors import InvalidParameter, NotImplementedYet
from ..images.reference import parse_normalized

_FALSE = ("", "0", "no", "false", "none")
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _bool(v: str | None) -> bool:
    return (v or "").strip().lower() not in _FALSE


def _int64_or_zero(v: str | None) -> int:
    try:
        n = int((v or "").strip(), 10)
    except ValueError:
        return 0
    return n if _INT64[0] <= n <= _INT64[1] else 0


# ---------------------------------------------------------------- Go's encoding/json, as far as these parameters go

def _quote_char(c: str) -> str:
    return "'\\''" if c == "'" else "'\"'" if c == '"' else repr(c) if c.isprintable() else f"'\\x{ord(c):02x}'"


def _syntax_error(doc: str, e: json.JSONDecodeError) -> str:
    if e.pos >= len(doc.rstrip()):
        return "unexpected end of JSON input"
    c = _quote_char(doc[e.pos])
    if e.msg.startswith("Expecting property name"):
        return f"invalid character {c} looking for beginning of object key string"
    if e.msg.startswith("Expecting ':'"):
        return f"invalid character {c} after object key"
    if e.msg.startswith("Expecting ','"):
        depth = [ch for ch in re.sub(r'"(?:[^"\\]|\\.)*"', "", doc[:e.pos]) if ch in "[]{}"]
        opened: list[str] = []
        for ch in depth:
            if ch in "[{":
                opened.append(ch)
            elif opened:
                opened.pop()
        inner = opened[-1] if opened else "{"
        return f"invalid character {c} after {'object key:value pair' if inner == '{' else 'array element'}"
    if e.msg.startswith("Extra data"):
        return f"invalid character {c} after top-level value"
    if e.msg.startswith(("Invalid control character", "Unterminated string")):
        return f"invalid character {c} in string literal"
    return f"invalid character {c} looking for beginning of value"


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(v), "object")


class _TypeError(Exception):
    pass


def _go_json(raw: str, check) -> Any:
    """Decode `raw` as Go decodes it; `check(value)` raises _TypeError with
    Go's message for a value that does not fit the Go type."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise _TypeError(_syntax_error(raw, e)) from None
    check(value)
    return value


def _unmarshal_error(kind: str, into: str) -> _TypeError:
    return _TypeError(f"json: cannot unmarshal {kind} into {into}")


def _check_map(value: Any, go_type: str, nullable_values: bool) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _unmarshal_error(_kind(value), f"Go value of type {go_type}")
    for v in value.values():
        if v is None and nullable_values:
            continue
        if v is not None and not isinstance(v, str):
            raise _unmarshal_error(_kind(v), "Go value of type string")


def _check_string(value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _unmarshal_error(_kind(value), "Go value of type string")


def _check_list(value: Any, go_type: str, check_item) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise _unmarshal_error(_kind(value), f"Go value of type {go_type}")
    for item in value:
        check_item(item)


def _check_struct(value: Any, struct: str, fields: dict[str, str]) -> None:
    """A JSON object into a Go struct: field names match case-insensitively,
    as Go's decoder matches them; unknown fields are ignored."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise _unmarshal_error(_kind(value), f"Go value of type {struct}")
    lower = {k.lower(): (k, t) for k, t in fields.items()}
    for k, v in value.items():
        if k.lower() not in lower or v is None:
            continue
        name, t = lower[k.lower()]
        where = f"Go struct field {struct}.{name} of type {t}"
        if t == "string" and not isinstance(v, str):
            raise _unmarshal_error(_kind(v), where)
        if t == "int64" and (isinstance(v, bool) or not isinstance(v, int) or not _INT64[0] <= v <= _INT64[1]):
            raise _unmarshal_error(_kind(v) if not isinstance(v, (int, float)) or isinstance(v, bool)
                                   else f"number {json.dumps(v)}", where)
        if t == "map[string]string":
            _check_map(v, t, nullable_values=False)


def _fold(value: dict, fields: tuple[str, ...]) -> dict:
    """A decoded struct with Go's case-insensitive field names made canonical."""
    canon = {f.lower(): f for f in fields}
    return {canon[k.lower()]: v for k, v in value.items() if k.lower() in canon}


def _json_param(raw: str, what: str, check) -> Any:
    try:
        return _go_json(raw, check)
    except _TypeError as e:
        raise InvalidParameter(f"{what}: {e}") from None


# ---------------------------------------------------------------- platform

_OS = {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix",
       "android", "ios", "js", "plan9", "dragonfly", "wasip1"}
_ARCH = {"amd64": ("amd64", ""), "x86_64": ("amd64", ""), "x86-64": ("amd64", ""),
         "aarch64": ("arm64", ""), "arm64": ("arm64", ""), "armhf": ("arm", "v7"), "armel": ("arm", "v6"),
         "arm": ("arm", ""), "i386": ("386", ""), "386": ("386", ""), "ppc64le": ("ppc64le", ""),
         "s390x": ("s390x", ""), "riscv64": ("riscv64", ""), "mips64le": ("mips64le", ""),
         "loong64": ("loong64", "")}
_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def host_platform_string() -> str:
    arch, _ = _ARCH.get(host_platform.machine().lower(), (host_platform.machine().lower(), ""))
    return f"linux/{arch}"


def parse_platform(spec: str) -> str:
    """containerd's platforms.Parse (its words for a bad specifier), then
    this host's platform only: a build's RUN steps run here, natively."""
    parts = spec.split("/")
    bad = InvalidParameter(f"{json.dumps(spec)}: unknown operating system or architecture: invalid argument")
    if len(parts) > 3 or not all(_COMPONENT.match(p) for p in parts):
        raise InvalidParameter(f"{json.dumps(spec)}: must match specifier pattern: invalid argument")
    first = parts[0].lower()
    if len(parts) == 1:
        if first in _OS:
            os_name, arch = first, host_platform_string().split("/")[1]
        elif first in _ARCH:
            os_name, arch = "linux", _ARCH[first][0]
        else:
            raise bad
    else:
        if first not in _OS or parts[1].lower() not in _ARCH:
            raise bad
        os_name, arch = first, _ARCH[parts[1].lower()][0]
    if os_name != "linux":
        raise InvalidParameter("operating system is not supported")
    wanted, host = f"{os_name}/{arch}", host_platform_string()
    if wanted != host:
        raise InvalidParameter(f'platform "{spec}" is not supported: this daemon builds for its own '
                               f"platform ({host}) only, with no emulation for RUN steps")
    return host


# ---------------------------------------------------------------- the request

def _tags(names: list[str]) -> list[str]:
    """moby's sanitizeRepoAndTags: each a valid name, no digest, no repeats."""
    seen, out = set(), []
    for name in names:
        if not name:
            continue
        ref = parse_normalized(name)
        if ref.digest is not None:
            raise InvalidParameter("build tag cannot contain a digest")
        full = str(ref.with_default_tag())
        if full not in seen:
            seen.add(full)
            out.append(ref.with_default_tag().familiar())
    return out


def _outputs(raw: str) -> list[dict]:
    """The classic builder makes one image in the image store: that is
    BuildKit's `moby` exporter; any other exporter cannot work here, and is
    refused in the words dockerd's BuildKit worker uses for one it lacks."""
    outputs = _json_param(raw, "invalid outputs specified",
                          lambda v: _check_list(v, "[]build.BuildOutput", lambda o: _check_struct(
                              o, "BuildOutput", {"Type": "string", "Attrs": "map[string]string"})))
    outputs = [_fold(o, ("Type", "Attrs")) for o in outputs or [] if o is not None]
    if len(outputs) > 1:
        raise InvalidParameter("multiple outputs not supported")
    for o in outputs:
        if o.get("Type") not in ("moby", "image"):
            raise InvalidParameter(f"exporter {json.dumps(o.get('Type') or '')} could not be found")
    return outputs


def auth_configs(header: str | None) -> dict[str, dict]:
    """X-Registry-Config: base64url JSON {registry: AuthConfig}; garbage is
    no credentials, as moby ignores decode errors."""
    if not header:
        return {}
    try:
        d = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(d, dict):
        return {}
    return {k: v for k, v in d.items() if isinstance(v, dict)}


def parse(query: dict[str, list[str]], version_at_least, registry_config: str | None) -> BuildOptions:
    """`query` as parsed from the URL (name -> values); `version_at_least(v)`
    tells the request's API version; the 400s come before the upload is read."""
    def value(name: str) -> str:
        v = query.get(name)
        return v[-1] if v else ""

    if "securityopt" in query:
        raise InvalidParameter("security options are not supported on linux")
    opts = BuildOptions(
        dockerfile=value("dockerfile") or "Dockerfile",
        tags=_tags(query.get("t", [])),
        extra_hosts=list(query.get("extrahosts", [])),
        quiet=_bool(value("q")),
        nocache=_bool(value("nocache")),
        pull=_bool(value("pull")),
        forcerm=_bool(value("forcerm")),
        memory=_int64_or_zero(value("memory")),
        memswap=_int64_or_zero(value("memswap")),
        cpushares=_int64_or_zero(value("cpushares")),
        cpusetcpus=value("cpusetcpus"),
        cpuperiod=_int64_or_zero(value("cpuperiod")),
        cpuquota=_int64_or_zero(value("cpuquota")),
        networkmode=value("networkmode"),
        target=value("target"),
        squash=_bool(value("squash")),
        auth_configs=auth_configs(registry_config),
    )
    # rm defaults to true; forcerm implies it
    opts.rm = True if opts.forcerm or value("rm") == "" else _bool(value("rm"))
    if value("remote"):
        raise NotImplementedYet(
            f"building from a remote context ({value('remote')}) is not supported: "
            "send the context as the request body (the docker CLI clones or downloads it for you)")
    if opts.squash:
        raise InvalidParameter("squash is only supported with experimental mode")
    if version_at_least("1.32") and value("platform"):
        opts.platform = parse_platform(value("platform"))
    if version_at_least("1.40") and value("outputs"):
        _outputs(value("outputs"))
    shm = value("shmsize")
    if shm:
        try:
            opts.shmsize = int(shm, 10)
        except ValueError:
            raise InvalidParameter(f'strconv.ParseInt: parsing {json.dumps(shm)}: invalid syntax') from None
        if not _INT64[0] <= opts.shmsize <= _INT64[1]:
            raise InvalidParameter(f'strconv.ParseInt: parsing {json.dumps(shm)}: value out of range')
    isolation = value("isolation")
    if isolation and isolation.lower() != "default":
        raise InvalidParameter(f"unsupported isolation: {json.dumps(isolation)}")
    if value("ulimits"):
        fields = {"Name": "string", "Hard": "int64", "Soft": "int64"}
        ulimits = _json_param(value("ulimits"), "error reading ulimit settings",
                              lambda v: _check_list(v, "[]*container.Ulimit",
                                                    lambda u: _check_struct(u, "Ulimit", fields)))
        opts.ulimits = [_fold(u, tuple(fields)) for u in ulimits or [] if u is not None]
    if value("buildargs"):
        args = _json_param(value("buildargs"), "error reading build args",
                           lambda v: _check_map(v, "map[string]*string", nullable_values=True))
        opts.buildargs = dict(args or {})
    if value("labels"):
        labels = _json_param(value("labels"), "error reading labels",
                             lambda v: _check_map(v, "map[string]string", nullable_values=False))
        opts.labels = {k: v or "" for k, v in (labels or {}).items()}
    if value("cachefrom"):
        cache_from = _json_param(value("cachefrom"), "error reading cache-from",
                                 lambda v: _check_list(v, "[]string", _check_string))
        opts.cache_from = [s or "" for s in cache_from or []]
    version = value("version")
    if version and version not in ("1", "2"):
        raise InvalidParameter(f"invalid version {json.dumps(version)}")
    if version == "2":
        raise InvalidParameter("buildkit is not enabled on daemon")
    return opts

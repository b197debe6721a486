"""A container's log attributes: what `docker logs --details` prints before
each line.

Docker's json-file driver stores, with every line, the attributes chosen by
the log options `labels`, `labels-regex`, `env`, `env-regex` (moby's
logger.Info.ExtraAttributes) plus `tag` (the rendered tag template, only when
set). `GET /containers/{id}/logs?details=1` prints them sorted by key,
`url.QueryEscape`d, as `k=v,k2=v2 ` before each line (a lone space when there
are none). They are fixed for a container's life, so we keep none in the log
file and compute them when the log is read, from the container's config and
log options.
"""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote_plus

from ..errors import InvalidParameter

if TYPE_CHECKING:
    from ..images.service import ImageService
    from .container import Container
    from .paths import ContainerPaths

DAEMON_NAME = "docker"   # what moby puts in logger.Info.DaemonName


class _Daemon(Protocol):
    images: ImageService
    def paths(self, c: Container) -> ContainerPaths: ...


@dataclass
class Info:
    """The subset of moby's logger.Info that attributes and tags read."""
    opts: dict
    container_id: str = ""
    container_name: str = ""          # with the leading "/" as in moby
    entrypoint: str = ""              # the process's path (inspect's Path)
    args: list = field(default_factory=list)
    image_id: str = ""                # "sha256:…"
    image_name: str = ""              # what the user asked for
    env: list = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    log_path: str = ""


def _regex(pattern: str, opt: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InvalidParameter(f"error parsing regexp in log opt {opt}: {e}") from None


def extra_attributes(info: Info) -> dict[str, str]:
    """moby's ExtraAttributes: labels, labels-regex, env, env-regex, later ones winning."""
    opts, labels = info.opts, info.labels or {}
    extra: dict[str, str] = {}
    for key in filter(None, (opts.get("labels") or "").split(",")):
        if key in labels:
            extra[key] = labels[key]
    if opts.get("labels-regex"):
        rx = _regex(opts["labels-regex"], "labels-regex")
        extra.update((k, v) for k, v in labels.items() if rx.search(k))
    env = dict(e.split("=", 1) for e in info.env or [] if "=" in e)
    for key in filter(None, (opts.get("env") or "").split(",")):
        if key in env:
            extra[key] = env[key]
    if opts.get("env-regex") and env:
        rx = _regex(opts["env-regex"], "env-regex")
        extra.update((k, v) for k, v in env.items() if rx.search(k))
    return extra


def _truncate(ident: str) -> str:
    """moby's stringid.TruncateID: drop an algorithm prefix, keep 12 characters."""
    return ident.partition(":")[2][:12] if ":" in ident else ident[:12]


def _fields(info: Info) -> dict:
    # methods and string fields of logger.Info a tag template can name
    return {
        "ID": lambda: _truncate(info.container_id), "FullID": lambda: info.container_id,
        "Name": lambda: info.container_name.lstrip("/"),
        "Command": lambda: " ".join([info.entrypoint] + list(info.args)),
        "ImageID": lambda: _truncate(info.image_id), "ImageFullID": lambda: info.image_id,
        "ImageName": lambda: info.image_name, "Hostname": socket.gethostname,
        "DaemonName": lambda: DAEMON_NAME, "ContainerID": lambda: info.container_id,
        "ContainerName": lambda: info.container_name, "ContainerEntrypoint": lambda: info.entrypoint,
        "ContainerImageID": lambda: info.image_id, "ContainerImageName": lambda: info.image_name,
        "LogPath": lambda: info.log_path,
    }


_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_FIELD = re.compile(r"-?\s*\.([A-Za-z]+)\s*-?")


def render_tag(template: str, info: Info) -> str:
    """The tag template with its `{{.Field}}` placeholders filled (the fields of
    moby's logger.Info); other template actions are refused."""
    fields = _fields(info)

    def one(m: re.Match) -> str:
        f = _FIELD.fullmatch(m.group(1))
        if not f:
            raise InvalidParameter(f"log opt tag: unsupported template action {m.group(0)!r} "
                                   "(only {{.Field}} placeholders)")
        if f.group(1) not in fields:
            raise InvalidParameter(f"log opt tag: template: log-tag: can't evaluate field {f.group(1)} "
                                   "in type *logger.Info")
        return fields[f.group(1)]()
    return _ACTION.sub(one, template)


def check(opts: dict) -> None:
    """Create-time validation of the options computed here (Docker fails the start instead)."""
    for opt in ("labels-regex", "env-regex"):
        if opts.get(opt):
            _regex(opts[opt], opt)
    if opts.get("tag"):
        render_tag(opts["tag"], Info(opts={}))


def attributes(info: Info) -> dict[str, str]:
    """What the json-file driver stores with each line."""
    attrs = extra_attributes(info)
    tag = render_tag(info.opts["tag"], info) if info.opts.get("tag") else ""
    if tag:
        attrs["tag"] = tag
    return attrs


def details_prefix(attrs: dict[str, str]) -> bytes:
    """`k=v,k2=v2 ` as moby's attrsByteSlice + the space (Go's QueryEscape = quote_plus)."""
    return (",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(attrs.items())) + " ").encode()


def created_env(config_env: list | None, image_env: list | None) -> list[str]:
    """Config.Env as Docker keeps it after create: the request's, then the image's it did not set."""
    user = list(config_env or [])
    keys = {e.split("=", 1)[0] for e in user}
    return user + [e for e in image_env or [] if e.split("=", 1)[0] not in keys]


def for_container(d: _Daemon, c) -> bytes:
    """The `--details` prefix of container c's log lines."""
    from ..runtime.command import resolve_command
    img = d.images.config(c.image) or {}
    try:
        argv = resolve_command(c.config, img)
    except InvalidParameter:
        argv = [""]
    info = Info(opts=(c.host_config.get("LogConfig") or {}).get("Config") or {}, container_id=c.id,
                container_name="/" + c.name, entrypoint=argv[0], args=argv[1:], image_id=c.image,
                image_name=c.image_ref, env=created_env(c.config.get("Env"), img.get("Env")),
                labels=c.config.get("Labels") or {}, log_path=d.paths(c).log_path)
    return details_prefix(attributes(info))

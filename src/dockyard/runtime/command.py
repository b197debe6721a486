"""The container's argv and environment, merged from image and request as Docker does.

Docker does this in two steps (create-time merge into Config, start-time
daemon environment); both are idempotent, so doing them together at spec
time gives the same result whether or not Config was merged already.
"""

from __future__ import annotations

from typing import Any, Iterable

from dockyard import errors

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def resolve_command(config: dict, image_config: dict | None) -> list[str]:
    """Entrypoint + Cmd, following moby's merge() and getEntrypointAndArgs().

    - No Entrypoint in the request (null/absent): the image's Entrypoint is used.
    - Entrypoint [] : clears the image's, but (as in Docker) the image's Cmd
      still applies when the request has none.
    - Entrypoint [""] (what `docker run --entrypoint ""` sends): clears it and,
      being an override, also drops the image's Cmd.
    - A request Cmd always replaces the image's Cmd.
    """
    image_config = image_config or {}
    entrypoint = _str_slice(config.get("Entrypoint"))
    cmd = _str_slice(config.get("Cmd"))

    if not entrypoint:                      # len == 0: [] or absent
        if not cmd:
            cmd = _str_slice(image_config.get("Cmd"))
        if entrypoint is None:
            entrypoint = _str_slice(image_config.get("Entrypoint"))
    if entrypoint == [""]:
        entrypoint = None

    args = list(entrypoint or []) + list(cmd or [])
    if not args:
        raise errors.InvalidParameter("No command specified")
    return args


def container_config_env(image_env: Iterable[str] | None, config_env: Iterable[str] | None) -> list[str]:
    """The request's env, then the image's it did not set: moby's create-time merge into Config.Env."""
    user = list(config_env or [])
    user_keys = {_key(e) for e in user}
    return user + [e for e in (image_env or []) if _key(e) not in user_keys]


def merge_env(image_env: Iterable[str] | None, config_env: Iterable[str] | None,
              hostname: str, tty: bool, linked: Iterable[str] = ()) -> list[str]:
    """PATH, HOSTNAME, TERM and the legacy links' variables first, then request env, then image
    env it did not set.

    Same order and override rules as moby's runconfig merge() followed by
    CreateDaemonEnvironment/ReplaceOrAppendEnvValues; a bare "KEY" in the
    request unsets KEY.
    """
    env = ["PATH=" + DEFAULT_PATH, "HOSTNAME=" + hostname]
    if tty:
        env.append("TERM=xterm")
    return _replace_or_append(env + list(linked), container_config_env(image_env, config_env))


def _replace_or_append(defaults: list[str], overrides: list[str]) -> list[str]:
    result: list[str | None] = list(defaults)
    index = {_key(e): i for i, e in enumerate(result)}
    for value in overrides:
        key = _key(value)
        if "=" not in value:                # bare name: unset it
            if key in index:
                result[index[key]] = None
            continue
        if key in index:
            result[index[key]] = value
        else:
            index[key] = len(result)
            result.append(value)
    return [e for e in result if e is not None]


def _key(entry: str) -> str:
    return entry.split("=", 1)[0]


def _str_slice(value: Any) -> list[str] | None:
    # moby's strslice.StrSlice accepts a JSON string as a one-element list
    # (not shell-split: "echo hi" stays one argv entry).
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]

"""Log drivers: which are accepted, their options, and the rotation limits
they imply.

All file drivers are written by conmon in its k8s-file format (one line per
chunk: time, stream, partial flag, bytes) and rotated by the daemon
(daemon/logrotate.py); `none` tells conmon to keep nothing. `json-file` and
`local` differ only in their defaults here: rotation is on for both unless
configured (Docker's `local` defaults, 20 MB x 5 files).
"""
from __future__ import annotations

from .. import units
from ..errors import InvalidParameter

FILE_DRIVERS = ("json-file", "local", "k8s-file")
DRIVERS = FILE_DRIVERS + ("none",)
DEFAULT_MAX_SIZE = 20 * 1024 * 1024
DEFAULT_MAX_FILE = 5

_OPTS = {
    "json-file": {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
    "local": {"max-size", "max-file", "compress"},
    "k8s-file": {"max-size", "max-file"},
    "none": set(),
}
_BUILTIN = ("mode", "max-buffer-size")   # moby's builtInLogOpts, valid with every driver


def parse_size(v: str) -> int:
    """go-units RAMInBytes: "10m", "1.5g", "512k", "100" (binary units);
    go-units' message (`invalid size: 'x'`) as a 400."""
    try:
        return units.ram_in_bytes(v or "")
    except units.SizeError as e:
        raise InvalidParameter(str(e)) from None


def resolve(log_config: dict | None, default_driver: str = "json-file",
            default_opts: dict | None = None) -> dict:
    """The LogConfig a container keeps: its driver (or the daemon's), its
    options validated as Docker does at create time. As moby's
    mergeAndVerifyLogConfig: with the daemon's driver (named or not), each
    daemon option the container does not set is added."""
    lc = log_config or {}
    default_driver = default_driver or "json-file"
    driver = lc.get("Type") or default_driver
    opts = {str(k): str(v) for k, v in (lc.get("Config") or {}).items()}
    if driver == default_driver:
        for k, v in (default_opts or {}).items():
            opts.setdefault(str(k), str(v))
    if driver == "none":
        return {"Type": driver, "Config": opts}   # Docker validates no option of `none`
    _check_builtin(opts)
    if driver not in DRIVERS:
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    for k in opts:
        if k not in _OPTS[driver] and k not in _BUILTIN:
            # each driver words it its own way in moby
            raise InvalidParameter(f"unknown log opt '{k}' for log driver local" if driver == "local"
                                   else f"unknown log opt '{k}' for {driver} log driver")
    limits(driver, opts)   # validates sizes and counts
    from .logattrs import check as check_attr_opts
    check_attr_opts(opts)  # regexes and the tag template (`docker logs --details`: daemon/logattrs.py)
    return {"Type": driver, "Config": opts}


def _check_builtin(opts: dict) -> None:
    """moby's options for every driver: `mode` (blocking | non-blocking) and
    `max-buffer-size` (non-blocking only). Accepted and validated as Docker
    does; they change nothing here, since conmon writes the file itself and a
    container never waits for a log reader in either mode."""
    mode = opts.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidParameter(f"logger: logging mode not supported: {mode}")
    if "max-buffer-size" in opts:
        if mode != "non-blocking":
            raise InvalidParameter("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
        try:
            parse_size(opts["max-buffer-size"])
        except InvalidParameter as e:
            raise InvalidParameter(f"error parsing option max-buffer-size: {e.message}") from None


def limits(driver: str, opts: dict) -> tuple[int, int]:
    """(max bytes per file, files kept); (0, 1) means no rotation."""
    if driver not in FILE_DRIVERS:
        return 0, 1
    size = DEFAULT_MAX_SIZE
    files = DEFAULT_MAX_FILE
    if "max-size" in opts:
        size = -1 if opts["max-size"] == "-1" else parse_size(opts["max-size"])
        if size == 0:
            raise InvalidParameter("max-size must be a positive number")
        if "max-file" not in opts:
            files = 1
    if "max-file" in opts:
        try:
            files = int(opts["max-file"])
        except ValueError:
            raise InvalidParameter(f"invalid value for max-file: {opts['max-file']!r}") from None
        if files < 1:
            raise InvalidParameter("max-file cannot be less than 1")
        if "max-size" in opts and size < 0 and files > 1:
            raise InvalidParameter("max-file can only be set if max-size is set")
    if size < 0:
        return 0, 1
    return size, files


def container_limits(c) -> tuple[int, int]:
    lc = c.host_config.get("LogConfig") or {}
    return limits(lc.get("Type") or "json-file", lc.get("Config") or {})


def is_none(c) -> bool:
    return (c.host_config.get("LogConfig") or {}).get("Type") == "none"

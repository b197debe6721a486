"""`logs`: fetch (or follow) a container's output.

The body is 8-byte framed unless the container has a TTY; the daemon
says which in the Content-Type, and we ask inspect's Config.Tty only when
it does not.
"""
from __future__ import annotations

import re
import time

from .. import durations
from . import stdcopy
from .flags import STRING, Command, Flag, UsageError
from .formatting import parse_rfc3339
from .pumps import pump_output

LOGS = Command("[OPTIONS] CONTAINER", "Fetch the logs of a container", [
    Flag("details", help="Show extra details provided to logs"),
    Flag("follow", "f", help="Follow log output"),
    Flag("since", kind=STRING, help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
    Flag("tail", "n", STRING, default="all", help="Number of lines to show from the end of the logs"),
    Flag("timestamps", "t", help="Show timestamps"),
    Flag("until", kind=STRING, help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
], min_args=1, max_args=1, aliases="dockyard container logs, dockyard logs")

def parse_go_duration(text: str) -> float | None:
    """`1h30m`, `42m`, `1.5s` → seconds; None if it is not a Go duration."""
    try:
        return durations.parse_seconds(text)
    except ValueError:
        return None


def _local_epoch(text: str) -> float | None:
    match = re.match(r"^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?)?$", text)
    if not match:
        return None
    y, mo, d, h, mi, s, frac = match.groups()
    fields = (int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), 0, 0, -1)
    return time.mktime(fields) + (float(frac) if frac else 0.0)


def api_timestamp(value: str, now: float | None = None) -> str | None:
    """docker's timetypes.GetTimestamp: `10m`, RFC 3339 (zoned or local), a
    date, or unix seconds → the `since`/`until` query value."""
    if not value:
        return None
    now = time.time() if now is None else now
    seconds = parse_go_duration(value) if value != "0" else None
    if seconds is not None:
        return str(int(now - seconds))
    if "-" in value:
        zoned = any(c in value for c in "zZ+") or value.count("-") == 3
        epoch = parse_rfc3339(value if "T" in value else value + "T00:00:00Z") if zoned else _local_epoch(value)
        if epoch is None:
            raise UsageError(f'parsing time "{value}": cannot parse as RFC 3339 or a date', code=1)
        whole = int(epoch // 1)
        return f"{whole}.{int(round((epoch - whole) * 1e9)):09d}"
    try:
        float(value)
    except ValueError:
        raise UsageError(f'failed to parse value as time or duration: "{value}"', code=1) from None
    return value


def logs(cli, argv: list[str]) -> int:
    opts, (name,) = LOGS.parse(argv, cli.command_path)
    query = {
        "stdout": 1, "stderr": 1,
        "since": api_timestamp(opts.since),
        "until": api_timestamp(opts.until),
        "timestamps": 1 if opts.timestamps else None,
        "follow": 1 if opts.follow else None,
        "tail": opts.tail,
        "details": 1 if opts.details else None,
    }
    resp = cli.client.call("GET", f"/containers/{name}/logs", query)
    try:
        kind = resp.content_type
        if kind == stdcopy.MULTIPLEXED:
            framed = True
        elif kind == stdcopy.RAW:
            framed = False
        else:
            info = cli.client.get(f"/containers/{name}/json")
            framed = not (info.get("Config") or {}).get("Tty")
        pump_output(resp.chunks(), framed)
    except stdcopy.StreamError as err:
        cli.err(f"Error: {err}")
        return 1
    finally:
        resp.close()
    return 0

"""`events`: the daemon's event stream, as docker prints it."""
from __future__ import annotations

import time

from .. import durations
from .filters import filters_param
from .flags import LIST, STRING, Command, Flag, UsageError

EVENTS = Command("[OPTIONS]", "Get real time events from the server", [
    Flag("filter", "f", LIST, help="Filter output based on conditions provided"),
    Flag("format", kind=STRING, help="Format output using a custom template"),
    Flag("since", kind=STRING, help="Show all events created since timestamp"),
    Flag("until", kind=STRING, help="Stream events until this timestamp"),
], max_args=0, aliases="dockyard system events, dockyard events")



def parse_duration(text: str) -> float | None:
    """Go's time.ParseDuration ("1m", "1h30m", "-5s", "0s") in seconds; None if not one."""
    try:
        return durations.parse_seconds(text)
    except ValueError:
        return None


def timestamp(value: str, now: float) -> str:
    """docker's GetTimestamp: a duration is `now - d` (whole seconds), a date
    becomes epoch seconds, a number passes as is."""
    d = parse_duration(value)
    if d is not None and value != "0":
        return str(int(now - d))
    try:
        float(value)
        return value
    except ValueError:
        pass
    from .formatting import parse_rfc3339
    t = parse_rfc3339(value if "T" in value else value + "T00:00:00Z")
    if t is None:
        raise UsageError(f'invalid value "{value}": cannot parse it as a timestamp or duration')
    return f"{t:.9f}"


def _default_line(ev: dict) -> str:
    ns = ev.get("timeNano") or ev.get("time", 0) * 1_000_000_000
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}"
    off = time.localtime(ns // 1_000_000_000).tm_gmtoff
    stamp += "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def events(cli, argv: list[str]) -> int:
    opts, _ = EVENTS.parse(argv, cli.command_path)
    now = time.time()
    query = {"filters": filters_param(opts.filter),
             "since": timestamp(opts.since, now) if opts.since else None,
             "until": timestamp(opts.until, now) if opts.until else None}
    render = _renderer(opts.format)
    import json
    resp = cli.client.call("GET", "/events", query)
    buf = b""
    for chunk in resp.chunks():
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                cli.out(render(json.loads(line)))
                import sys
                sys.stdout.flush()
    return 0


def _renderer(fmt: str | None):
    if not fmt:
        return _default_line
    if fmt == "json":
        from .listing import json_line
        return json_line
    from . import template
    from .listing import expand_format
    _, text = expand_format(fmt)
    tmpl = template.parse(text)
    return tmpl.execute

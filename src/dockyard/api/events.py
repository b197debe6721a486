"""`GET /events`: the daemon's event stream, one JSON object per line.

`since` replays the bounded history first; `until` in the past ends the
reply after that replay, in the future ends it then. Each event is sent as
it happens (the server drains after every chunk). A client that goes away
is noticed within a second even when no event comes, and its subscription
dropped.
"""
from __future__ import annotations

import asyncio
import json
import time

from .. import timestamps
from ..daemon import event_filters
from ..errors import InvalidParameter
from .server import Request, StreamResponse, route

_EOF_POLL = 1.0


def _timestamp(req: Request, name: str) -> float | None:
    """Docker's `seconds[.nanos]` (the CLI turns durations and dates into
    these), or an RFC 3339 date from other clients."""
    v = req.param(name)
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        pass
    try:
        return timestamps.parse(v)
    except ValueError:
        raise InvalidParameter(f"failed to parse value {v!r} as a timestamp for {name}") from None


def _line(ev: dict) -> bytes:
    return json.dumps(ev).encode() + b"\n"


@route("GET", "/events")
async def events(req: Request):
    since, until = _timestamp(req, "since"), _timestamp(req, "until")
    filters = event_filters.parse(req.param("filters"))
    if since is not None and until is not None and until < since:
        raise InvalidParameter("`since` time is after `until` time")
    bus = req.daemon.events
    history, sub = bus.replay_and_subscribe()
    reader = req._conn.reader
    # The docker CLI sends `--until 0s` as whole seconds (now, truncated): an
    # event of the same second is not after it, or `--until 0s` would miss the
    # last events. The live stream still ends at `until` itself.
    replay_until = until + 1 - 1e-9 if until is not None and until == int(until) else until

    def wanted(ev: dict, last: float | None) -> bool:
        t = ev["timeNano"] / 1e9
        if since is not None and t < since:
            return False
        if last is not None and t > last:
            return False
        return event_filters.matches(ev, filters)

    async def body():
        try:
            if since is not None or until is not None:      # moby replays for either
                for ev in history:
                    if wanted(ev, replay_until):
                        yield _line(ev)
            # the head goes out before the first chunk; an empty chunk sends it now
            yield b""
            while True:
                if until is not None and time.time() >= until:
                    return
                wait = _EOF_POLL if until is None else min(_EOF_POLL, until - time.time())
                try:
                    ev = await asyncio.wait_for(sub.queue.get(), max(wait, 0))
                except asyncio.TimeoutError:
                    if reader.at_eof() or sub.dropped:
                        return          # the client hung up, or stopped reading
                    continue
                if wanted(ev, until):
                    yield _line(ev)
        finally:
            sub.close()
    return StreamResponse(body())

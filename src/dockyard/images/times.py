"""Timestamps as Go writes and reads them (RFC 3339 with nanoseconds).

Image configs carry `created` as Go's time.RFC3339Nano; Python's datetime
stops at microseconds, so we go through integer nanoseconds.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"    # Go's zero time.Time, what Docker shows for "never"

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def now_ns() -> int:
    return time.time_ns()


def format_ns(ns: int) -> str:
    """Unix nanoseconds -> "2024-01-02T03:04:05.123456789Z" (trailing zeros
    of the fraction dropped, as Go does)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def parse_ns(text: str) -> int:
    """RFC 3339 (any fraction length, any offset) -> unix nanoseconds."""
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    y, mo, d, h, mi, s, frac, off = m.groups()
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    if off not in ("Z", "z"):
        sign = 1 if off[0] == "+" else -1
        dt -= sign * timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
    secs = int((dt - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds())
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return secs * 1_000_000_000 + nanos


def parse_duration_ns(text: str) -> int:
    """Go's time.ParseDuration for the forms Dockerfiles use: 30s, 1m30s, 500ms."""
    s = text.strip()
    if s == "0":
        return 0
    if not s:
        raise ValueError("time: invalid duration \"\"")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise ValueError(f"time: invalid duration {text!r}")
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return int(total)


def parse_filter_time(text: str, now: float | None = None) -> int:
    """A `since`/`until` filter value (Docker's timetypes.GetTimestamp):
    unix seconds (with fraction), RFC 3339, or a duration back from now."""
    t = text.strip()
    try:
        return int(float(t) * 1_000_000_000)
    except ValueError:
        pass
    try:
        return parse_ns(t)
    except ValueError:
        pass
    try:
        dur = parse_duration_ns(t)
    except ValueError:
        raise ValueError(f"failed to parse value as time or duration: {text!r}") from None
    base = time.time_ns() if now is None else int(now * 1_000_000_000)
    return base - dur


def until_limits(values: list[str]) -> list[int]:
    """The prune routes' `until` filter values in ns; a bad one is Docker's
    400 `invalid until filter: X`."""
    from ..errors import InvalidParameter
    out = []
    for v in values:
        try:
            out.append(parse_filter_time(v))
        except ValueError:
            raise InvalidParameter(f"invalid until filter: {v}") from None
    return out

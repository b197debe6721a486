"""RFC 3339 times as Go writes and reads them, and Docker's `since`/`until`
values (timetypes.GetTimestamp): the one time parser of the daemon, the
images code and the CLI (stdlib only: the CLI imports it).

Go writes RFC3339Nano (up to nine fraction digits); Python's datetime stops
at microseconds, so times go through integer nanoseconds.
"""
from __future__ import annotations

import re
import time
from datetime import date, datetime, timezone

from . import durations

ZERO_TIME = "0001-01-01T00:00:00Z"    # Go's zero time.Time, what Docker shows for "never"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})")
_EPOCH_DAYS = 719163          # date(1970, 1, 1).toordinal()


def _days(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 (proleptic Gregorian, any year >= 1)."""
    return date(year, month, day).toordinal() - _EPOCH_DAYS


def parse_ns(text: str) -> int:
    """RFC 3339 (any fraction length, `Z` or any offset) -> unix nanoseconds;
    ValueError when it is not one."""
    m = _RFC3339.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    y, mo, d, h, mi, s, frac, off = m.groups()
    hour, minute, sec = int(h), int(mi), int(s)
    if hour > 23 or minute > 59 or sec > 59:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    secs = _days(int(y), int(mo), int(d)) * 86400 + hour * 3600 + minute * 60 + sec
    if off not in ("Z", "z"):
        delta = int(off[1:3]) * 3600 + int(off[4:6]) * 60
        secs -= delta if off[0] == "+" else -delta
    return secs * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


def parse(text: str) -> float:
    """RFC 3339 -> unix seconds (float); ValueError when it is not one."""
    return parse_ns(text) / 1e9


def is_zero(text: str) -> bool:
    """Go's zero time (year 1), what Docker writes for "never"."""
    return text.strip().startswith("0001-")


def format_ns(ns: int) -> str:
    """Unix nanoseconds -> "2024-01-02T03:04:05.123456789Z" (trailing zeros
    of the fraction dropped, as Go's RFC3339Nano)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def get_timestamp_ns(text: str, now: float | None = None) -> int:
    """A `since`/`until` value read by the daemon (timetypes.GetTimestamp):
    unix seconds (with fraction), RFC 3339, or a Go duration back from now."""
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
        dur = durations.parse_ns(t)
    except ValueError:
        raise ValueError(f"failed to parse value as time or duration: {text!r}") from None
    base = time.time_ns() if now is None else int(now * 1_000_000_000)
    return base - dur

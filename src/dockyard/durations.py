"""Go's time.ParseDuration, the one duration parser of the daemon, the
images code and the CLI (stdlib only: the CLI imports it).

`1h30m`, `1.5s`, `-2m`, `500ms`, `0`; a duration needs a unit after every
number. Errors carry Go's wording (`time: invalid duration "x"`,
`time: missing unit in duration "10"`, `time: unknown unit "x" in duration "5x"`).
"""
from __future__ import annotations

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {"ns": NANOSECOND, "us": MICROSECOND, "\u00b5s": MICROSECOND, "\u03bcs": MICROSECOND,
          "ms": MILLISECOND, "s": SECOND, "m": MINUTE, "h": HOUR}
_MAX = (1 << 63) - 1
_DIGITS = "0123456789"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_ns(text: str) -> int:
    """A Go duration string -> nanoseconds (int); ValueError as Go words it."""
    orig, s, neg = text, text, False
    invalid = ValueError("time: invalid duration " + _quote(orig))
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if s[0] != "." and s[0] not in _DIGITS:
            raise invalid
        i = 0
        while i < len(s) and s[i] in _DIGITS:
            i += 1
        whole, s = s[:i], s[i:]
        frac = ""
        if s[:1] == ".":
            s = s[1:]
            j = 0
            while j < len(s) and s[j] in _DIGITS:
                j += 1
            frac, s = s[:j], s[j:]
            if not whole and not frac:
                raise invalid
        elif not whole:
            raise invalid
        k = 0
        while k < len(s) and s[k] != "." and s[k] not in _DIGITS:
            k += 1
        if k == 0:
            raise ValueError("time: missing unit in duration " + _quote(orig))
        unit_name, s = s[:k], s[k:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise ValueError(f"time: unknown unit {_quote(unit_name)} in duration {_quote(orig)}")
        v = int(whole or "0")
        if v > (1 << 63) // unit:
            raise invalid
        v *= unit
        if frac:      # as Go: float64(f) * (float64(unit) / scale), truncated
            v += int(float(int(frac)) * (unit / 10 ** len(frac)))
        total += v
        if total > 1 << 63:
            raise invalid
    if neg:
        return -total
    if total > _MAX:
        raise invalid
    return total


def parse_seconds(text: str) -> float:
    """A Go duration string -> seconds (float); ValueError as parse_ns."""
    return parse_ns(text) / SECOND

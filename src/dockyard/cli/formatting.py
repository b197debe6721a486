"""Human-readable output the way the docker CLI prints it.

Durations and sizes follow docker's go-units (`HumanDuration`,
`HumanSizeWithPrecision`, `BytesSize`), tables follow Go's tabwriter with
docker's settings (min width 10, padding 3), so output lines up with what
users and scripts expect from `docker ps` / `docker images`.
"""
from __future__ import annotations

import time

from ..units import human_duration  # noqa: F401  (re-exported: go-units HumanDuration)



def ago(timestamp: float, now: float | None = None) -> str:
    """`5 seconds ago`, as in ps's CREATED column."""
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - timestamp)) + " ago"


_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scaled(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(size: float, precision: int = 3) -> str:
    """Decimal units: `1.23MB` (docker images uses precision 3, prune 4)."""
    value, unit = _scaled(float(size), 1000.0, _DECIMAL_UNITS)
    return "%.*g%s" % (precision, value, unit)


def bytes_size(size: float) -> str:
    """Binary units: `3.84GiB` (docker info's Total Memory)."""
    value, unit = _scaled(float(size), 1024.0, _BINARY_UNITS)
    return "%.4g%s" % (value, unit)


def ellipsis(text: str, width: int) -> str:
    """Cut to `width` characters, the last one an ellipsis."""
    if len(text) <= width:
        return text
    return text[:max(width - 1, 0)] + "…"


def go_quote(text: str) -> str:
    """strconv.Quote for the common cases (ps's COMMAND column)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r"))
    return '"' + escaped + '"'


def short_id(ident: str, trunc: bool = True) -> str:
    if not trunc:
        return ident
    return ident.split(":", 1)[-1][:12]


def tabulate(lines: list[str], min_width: int = 10, padding: int = 3) -> list[str]:
    """Align tab-separated cells like Go's tabwriter (as docker configures it).

    A cell ended by a tab belongs to an aligned column; the text after a
    line's last tab is not padded."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for cells in rows:
        for i, cell in enumerate(cells[:-1]):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell))
    widths = [max(w + padding, min_width) for w in widths]
    out = []
    for cells in rows:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        out.append("".join(padded) + cells[-1])
    return out


def local_time(timestamp: float) -> str:
    """Go's time.Time.String() for a local time: `2025-01-02 15:04:05 +0100 CET`."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(timestamp))


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's algorithm; avoids importing datetime/calendar
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339(text: str) -> float | None:
    """`2025-01-02T15:04:05.123456789Z` (or with an offset) → epoch seconds.

    Returns None for Go's zero time and anything unparsable."""
    try:
        date, _, clock = text.partition("T")
        year, month, day = (int(p) for p in date.split("-"))
        offset = 0
        for sign in ("Z", "+", "-"):
            at = clock.find(sign)
            if at > 0:
                zone = clock[at:]
                clock = clock[:at]
                if sign != "Z":
                    hh, _, mm = zone[1:].partition(":")
                    offset = (int(hh) * 3600 + int(mm or 0) * 60) * (1 if sign == "+" else -1)
                break
        hms, _, frac = clock.partition(".")
        hour, minute, second = (int(p) for p in hms.split(":"))
    except ValueError:
        return None
    if year <= 1:
        return None
    days = _days_from_civil(year, month, day)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds + (float("0." + frac) if frac.isdigit() else 0.0)

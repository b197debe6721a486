"""Human-readable output the way the docker CLI prints it.

Durations and sizes follow docker's go-units (`HumanDuration`,
`HumanSizeWithPrecision`, `BytesSize`), tables follow Go's tabwriter with
docker's settings (min width 10, padding 3), so output lines up with what
users and scripts expect from `docker ps` / `docker images`.
"""
from __future__ import annotations

import re
import time

from .. import timestamps
from ..units import human_duration  # noqa: F401  (re-exported: go-units HumanDuration)

_ZONED = re.compile(r"(?:[Zz]|[+-]\d{2}:\d{2})\s*$")



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


def parse_rfc3339(text: str) -> float | None:
    """`2025-01-02T15:04:05.123456789Z` (or with an offset; without one, UTC)
    → epoch seconds. Returns None for Go's zero time and anything unparsable."""
    if not _ZONED.search(text):
        text += "Z"
    try:
        ns = timestamps.parse_ns(text)
    except ValueError:
        return None
    return None if timestamps.is_zero(text) else ns / 1e9

"""Docker's go-units, shared by the daemon, the images code and the CLI
(stdlib only: the CLI imports it): HumanDuration, and the one size parser
(RAMInBytes with binary units, FromHumanSize with decimal ones)."""
from __future__ import annotations

import re

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL = {"k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12, "p": 10 ** 15}
_GO_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_CHARS = "01234567890. "


class SizeError(ValueError):
    """A size go-units refuses; str() is its message (`invalid size: 'x'`,
    `invalid suffix: 'x'`, `strconv.ParseFloat: parsing "x": invalid syntax`)."""


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: `64m`, `1.5g`, `512KiB`, `100` (bytes), binary
    units, case-insensitive, the `b`/`ib` optional; no negative sizes."""
    return _parse_size(text, _BINARY)


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: as ram_in_bytes with decimal units (`1kB` is 1000)."""
    return _parse_size(text, _DECIMAL)


def _parse_size(text: str, units: dict[str, int]) -> int:
    sep = max(text.rfind(c) for c in _NUMBER_CHARS)
    if sep < 0:
        raise SizeError(f"invalid size: '{text}'")
    num, suffix = (text[:sep], text[sep + 1:]) if text[sep] == " " else (text[:sep + 1], text[sep + 1:])
    if not _GO_FLOAT.fullmatch(num):
        raise SizeError(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    size = float(num)
    if size < 0:
        raise SizeError(f"invalid size: '{text}'")
    if not suffix:
        return int(size)
    if len(suffix) > 3:
        raise SizeError(f"invalid suffix: '{suffix}'")
    sfx = suffix.lower()
    if sfx[0] == "b":
        if len(sfx) > 1:
            raise SizeError(f"invalid suffix: '{sfx}'")
        return int(size)
    if sfx[0] not in units or (len(sfx) == 2 and sfx[1] != "b") or (len(sfx) == 3 and sfx[1:] != "ib"):
        raise SizeError(f"invalid suffix: '{sfx}'")
    return int(size * units[sfx[0]])


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: `5 seconds`, `About a minute`, `3 weeks`…"""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go rounds to the nearest hour here
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def parse_ulimit(text: str) -> dict:
    """`nofile=1024[:2048]` -> {"Name": "nofile", "Hard": 2048, "Soft": 1024}, as
    docker's units.ParseUlimit (a hard limit of -1 is unlimited); ValueError
    with docker's words ("invalid ulimit argument: X", "ulimit soft limit
    must be less than or equal to hard limit: S > H")."""
    name, eq, values = text.partition("=")
    if not eq or not name:
        raise ValueError(f"invalid ulimit argument: {text}")
    soft_text, colon, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if colon else soft
    except ValueError:
        raise ValueError(f"invalid ulimit argument: {text}") from None
    if soft > hard and hard != -1:
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}

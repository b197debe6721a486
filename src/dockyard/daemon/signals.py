"""Signal names as Docker accepts them: "SIGTERM", "TERM", "15"."""
from __future__ import annotations

import signal

from ..errors import InvalidParameter


def parse(value: str | int | None, default: int = signal.SIGTERM) -> int:
    if value in (None, ""):
        return int(default)
    if isinstance(value, int) or str(value).isdigit():
        n = int(value)
        if n <= 0 or n > 64:
            raise InvalidParameter(f"Invalid signal: {value}")
        return n
    name = str(value).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
            pass
        raise InvalidParameter(f"Invalid signal: {value}") from None

"""Docker's JSON progress messages (moby's jsonmessage), as pull, push and
load stream them: `{"status", "progressDetail", "progress", "id"}`. The
docker CLI draws one line per `id` on a terminal and prints the status
lines otherwise."""
from __future__ import annotations

import threading
import time
from typing import Callable

Emit = Callable[[dict], None]
_MIN_INTERVAL = 0.1      # seconds between two progress updates of one item


def human(n: float) -> str:
    """go-units HumanSize (decimal, 3 significant digits): 1.23MB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


def bar(current: int, total: int, width: int = 50) -> str:
    if total <= 0:
        return human(current)
    filled = min(width, int(width * current / total))
    arrow = "=" * max(filled - 1, 0) + (">" if filled else "")
    return f"[{arrow}{' ' * (width - len(arrow))}] {human(current)}/{human(total)}"


class Progress:
    """Thread-safe emitter with per-item rate limiting of progress updates."""

    def __init__(self, emit: Emit):
        self._emit = emit
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def status(self, status: str, id: str | None = None) -> None:
        msg: dict = {"status": status}
        if id is not None:
            msg = {"status": status, "progressDetail": {}, "id": id}
        with self._lock:
            self._emit(msg)

    def message(self, msg: dict) -> None:
        with self._lock:
            self._emit(msg)

    def update(self, id: str, action: str, current: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last.get(id, 0.0) < _MIN_INTERVAL:
                return
            self._last[id] = now
            detail = {"current": current, "total": total} if total > 0 else {"current": current}
            self._emit({"status": action, "progressDetail": detail, "progress": bar(current, total), "id": id})

"""Docker's JSON message stream shown like the docker CLI shows it: on a
terminal one line per `id` (layer), redrawn in place as its progress
moves; otherwise plain lines, and no progress bars."""
from __future__ import annotations

import sys

from .image_io import StreamFailed, json_messages


def render(resp, out=None, tty: bool | None = None, aux=None) -> None:
    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    lines: dict[str, int] = {}        # id -> line index (terminal mode)
    total = 0
    for msg in json_messages(resp.chunks()):
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise StreamFailed(msg.get("error") or detail.get("message") or "unknown error")
        if msg.get("aux") is not None:
            if aux:
                aux(msg["aux"])
            continue
        if "stream" in msg:
            out.write(msg["stream"])
            continue
        status = msg.get("status")
        if not status:
            continue
        mid = msg.get("id")
        progress = msg.get("progress") or ""
        if not tty:
            if msg.get("progressDetail", {}).get("current") and progress:
                continue           # like docker: no progress lines off a terminal
            out.write(f"{mid}: {status}\n" if mid else f"{status}\n")
            continue
        text = f"{mid}: {status} {progress}".rstrip() if mid else f"{status} {progress}".rstrip()
        if mid and mid in lines:
            up = total - lines[mid]
            out.write(f"\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B")
        else:
            if mid:
                lines[mid] = total
            out.write(text + "\n")
            total += 1
        out.flush()
    out.flush()

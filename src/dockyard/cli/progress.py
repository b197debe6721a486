"""Docker's JSON message stream (pull, push, load, import): `{"status": …}`,
`{"stream": …}`, `{"error": …}` objects one after another; an `error`
message is a failure even though the HTTP status was 200.

`render` shows it as the docker CLI shows pull and push: on a terminal one
line per `id` (layer), redrawn in place as its progress moves; otherwise
plain lines, and no progress bars. `print_plain` shows it as load and
import do. `follow` sends the request and reports a failure.
"""
from __future__ import annotations

import sys


class StreamFailed(Exception):
    """An `error` message in the stream."""


def json_messages(chunks):
    """Decode a stream of concatenated JSON objects as they arrive."""
    import codecs
    import json
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span chunks
    buf = ""
    for chunk in chunks:
        buf += text.decode(chunk)
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                message, end = decoder.raw_decode(buf)
            except ValueError:
                break  # incomplete: wait for more
            buf = buf[end:]
            yield message
    buf += text.decode(b"", final=True)
    if buf.strip():
        yield {"stream": buf}


def _check(message: dict) -> None:
    if message.get("error") or message.get("errorDetail"):
        detail = message.get("errorDetail") or {}
        raise StreamFailed(message.get("error") or detail.get("message") or "unknown error")


def follow(cli, show, method: str, path: str, query: dict | None = None, body: object = None,
           headers: dict | None = None) -> int:
    """Send the request, `show(response)`; an `error` message is printed
    and makes the exit status 1."""
    try:
        show(cli.client.call(method, path, query, body, headers))
    except StreamFailed as err:
        cli.err(str(err))
        return 1
    return 0


def print_plain(cli, resp) -> None:
    """Every message as a line (load, import), progress text included; an
    `aux` ID is printed as is."""
    for message in json_messages(resp.chunks()):
        if not isinstance(message, dict):
            continue
        _check(message)
        if "stream" in message:
            sys.stdout.write(message["stream"])
        elif message.get("status"):
            prefix = f"{message['id']}: " if message.get("id") else ""
            progress = f" {message['progress']}" if message.get("progress") else ""
            cli.out(f"{prefix}{message['status']}{progress}")
        elif message.get("aux", {}).get("ID"):
            cli.out(message["aux"]["ID"])
    sys.stdout.flush()


def render(resp, out=None, tty: bool | None = None, aux=None) -> None:
    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    lines: dict[str, int] = {}        # id -> line index (terminal mode)
    total = 0
    for msg in json_messages(resp.chunks()):
        if not isinstance(msg, dict):
            continue
        _check(msg)
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

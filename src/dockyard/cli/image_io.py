"""`import` and `load`: upload a tarball, then show the daemon's progress stream.

Both answer with docker's JSON message stream (`{"status": …}`,
`{"stream": …}`, `{"error": …}` objects one after another); an `error`
message is a failure even though the HTTP status was 200.
"""
from __future__ import annotations

import os
import sys

from .flags import LIST, STRING, Command, Flag

IMPORT = Command("[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image", [
                     Flag("change", "c", LIST, help="Apply Dockerfile instruction to the created image"),
                     Flag("message", "m", STRING, help="Set commit message for imported image"),
                     Flag("platform", kind=STRING, help="Set platform if server is multi-platform capable"),
                 ], min_args=1, max_args=2, aliases="dockyard image import, dockyard import")
LOAD = Command("[OPTIONS]", "Load an image from a tar archive or STDIN", [
    Flag("input", "i", STRING, help="Read from tar archive file, instead of STDIN"),
    Flag("quiet", "q", help="Suppress the load output"),
    Flag("platform", kind=LIST, help="Load only the given platform(s)"),
], max_args=0, aliases="dockyard image load, dockyard load")


class StreamFailed(Exception):
    pass


def json_messages(chunks):
    """Decode a stream of concatenated JSON objects as they arrive."""
    import json
    decoder = json.JSONDecoder()
    buf = ""
    for chunk in chunks:
        buf += chunk.decode(errors="replace")
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
    if buf.strip():
        yield {"stream": buf}


def show_progress(cli, resp) -> None:
    """Print messages like docker does without a terminal; raise on `error`."""
    for message in json_messages(resp.chunks()):
        if not isinstance(message, dict):
            continue
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            raise StreamFailed(message.get("error") or detail.get("message") or "unknown error")
        if "stream" in message:
            sys.stdout.write(message["stream"])
        elif message.get("status"):
            prefix = f"{message['id']}: " if message.get("id") else ""
            progress = f" {message['progress']}" if message.get("progress") else ""
            cli.out(f"{prefix}{message['status']}{progress}")
        elif message.get("aux", {}).get("ID"):
            cli.out(message["aux"]["ID"])
    sys.stdout.flush()


def _upload(cli, path: str, query: dict, source, content_type: str) -> int:
    try:
        resp = cli.client.call("POST", path, query, source, {"Content-Type": content_type})
        show_progress(cli, resp)
    except StreamFailed as err:
        cli.err(str(err))
        return 1
    return 0


def import_(cli, argv: list[str]) -> int:
    opts, args = IMPORT.parse(argv, cli.command_path)
    source, repo = args[0], (args[1] if len(args) > 1 else None)
    query = {"repo": repo, "message": opts.message, "changes": opts.change or None,
             "platform": opts.platform}
    if "://" in source:
        query["fromSrc"] = source  # the daemon fetches it
        return _upload(cli, "/images/create", query, None, "text/plain")
    query["fromSrc"] = "-"
    if source == "-":
        return _upload(cli, "/images/create", query, sys.stdin.buffer, "text/plain")
    try:
        with open(source, "rb") as tarball:
            return _upload(cli, "/images/create", query, tarball, "text/plain")
    except FileNotFoundError:
        cli.err(f"open {source}: no such file or directory")
        return 1


def load(cli, argv: list[str]) -> int:
    opts, _ = LOAD.parse(argv, cli.command_path)
    query = {"quiet": 1 if opts.quiet else None}
    if opts.input:
        try:
            with open(opts.input, "rb") as tarball:
                return _upload(cli, "/images/load", query, tarball, "application/x-tar")
        except FileNotFoundError:
            cli.err(f"open {opts.input}: no such file or directory")
            return 1
    if os.isatty(0):
        cli.err("requested load from stdin, but stdin is empty")
        return 1
    return _upload(cli, "/images/load", query, sys.stdin.buffer, "application/x-tar")

"""`import` and `load`: upload a tarball, then show the daemon's progress
stream (progress.py)."""
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


def _upload(cli, path: str, query: dict, source, content_type: str) -> int:
    from .progress import follow, print_plain
    return follow(cli, lambda resp: print_plain(cli, resp), "POST", path, query, source,
                  {"Content-Type": content_type})


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

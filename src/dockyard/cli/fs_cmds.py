"""`commit`, `diff`, `export`, `cp`."""
from __future__ import annotations

import os
import sys

from . import archive_out
from .flags import LIST, STRING, Command, Flag

COMMIT = Command("[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes", [
    Flag("author", "a", STRING, help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
    Flag("change", "c", LIST, help="Apply Dockerfile instruction to the created image"),
    Flag("message", "m", STRING, help="Commit message"),
    Flag("pause", "p", default=True, help="Pause container during commit (default true)"),
], min_args=1, max_args=2, aliases="dockyard container commit, dockyard commit")
DIFF = Command("CONTAINER", "Inspect changes to files or directories on a container's filesystem",
               min_args=1, max_args=1, aliases="dockyard container diff, dockyard diff")
EXPORT = Command("[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", [
    Flag("output", "o", STRING, help="Write to a file, instead of STDOUT"),
], min_args=1, max_args=1, aliases="dockyard container export, dockyard export")
CP = Command("[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
             "Copy files/folders between a container and the local filesystem", [
                 Flag("archive", "a", help="Archive mode (copy all uid/gid information)"),
                 Flag("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
                 Flag("quiet", "q", help="Suppress progress output during copy"),
             ], min_args=2, max_args=2, aliases="dockyard container cp, dockyard cp")


def commit(cli, argv: list[str]) -> int:
    opts, args = COMMIT.parse(argv, cli.command_path)
    query = {"container": args[0], "author": opts.author, "comment": opts.message,
             "changes": opts.change or None, "pause": 1 if opts.pause else 0}
    if len(args) > 1:
        from .images import split_reference
        repo, tag = split_reference(args[1]) if "@" not in args[1] else (args[1], "")
        query.update(repo=repo, tag=tag or None)
    reply = cli.client.post("/commit", query, {}) or {}
    cli.out(reply.get("Id", ""))
    return 0


def diff(cli, argv: list[str]) -> int:
    _, args = DIFF.parse(argv, cli.command_path)
    for ch in cli.client.get(f"/containers/{args[0]}/changes") or []:
        cli.out(f"{'CAD'[ch['Kind']] if 0 <= ch['Kind'] <= 2 else '?'} {ch['Path']}")
    return 0


def export(cli, argv: list[str]) -> int:
    opts, args = EXPORT.parse(argv, cli.command_path)
    if archive_out.refuse_terminal(cli, opts.output, "cowardly refusing to save to a terminal. "
                                   "Use the -o flag or redirect"):
        return 1
    archive_out.write(cli.client.call("GET", f"/containers/{args[0]}/export"), opts.output)
    return 0


# ---------------------------------------------------------------- cp

def _split(arg: str) -> tuple[str | None, str]:
    """"ctr:/path" -> ("ctr", "/path"); local paths (also "./a:b", "/a:b") -> (None, path)."""
    if arg.startswith((".", "/")) or ":" not in arg:
        return None, arg
    ctr, _, path = arg.partition(":")
    return ctr, path


def _stat(cli, ctr: str, path: str) -> dict | None:
    import base64
    import json
    resp = cli.client.open("HEAD", f"/containers/{ctr}/archive", {"path": path})
    try:
        if resp.status == 404:
            return None
        if resp.status >= 400:
            from ..client import DaemonError
            raise DaemonError(resp.status, f"Could not stat {path} in container {ctr}")
        raw = resp.headers.get("x-docker-container-path-stat", "")
        return json.loads(base64.b64decode(raw)) if raw else {}
    finally:
        resp.close()


def cp(cli, argv: list[str]) -> int:
    opts, args = CP.parse(argv, cli.command_path)
    (sc, sp), (dc, dp) = _split(args[0]), _split(args[1])
    if sc and dc:
        cli.err("copying between containers is not supported")
        return 1
    if not sc and not dc:
        cli.err("must specify at least one container source")
        return 1
    if sc:
        return _copy_out(cli, sc, sp, dp, opts)
    return _copy_in(cli, sp, dc, dp, opts)


def _copy_out(cli, ctr: str, src: str, dest: str, opts) -> int:
    import io
    import tarfile
    if opts.follow_link:
        st = _stat(cli, ctr, src)
        if st and st.get("linkTarget"):
            src = st["linkTarget"]
    resp = cli.client.call("GET", f"/containers/{ctr}/archive", {"path": src})
    if dest == "-":
        archive_out.write(resp, None)
        return 0
    data = io.BytesIO(b"".join(resp.chunks()))
    base = os.path.basename(src.rstrip("/")) or "."
    into_dir = os.path.isdir(dest)
    if not into_dir and src.endswith("/.") is False and dest.endswith("/"):
        cli.err(f"destination directory {dest} must exist")   # docker's wording differs slightly
        return 1
    with tarfile.open(fileobj=data) as tf:
        members = tf.getmembers()
        if not into_dir:         # copy-and-rename: the archive's top name becomes dest's name
            target_dir, new = os.path.dirname(os.path.abspath(dest)), os.path.basename(dest)
            for m in members:
                first, sep, rest = m.name.partition("/")
                if first == base:
                    m.name = new + (sep + rest if sep else "")
        else:
            target_dir = dest
        kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        tf.extractall(target_dir, members, numeric_owner=True, **kw)
    return 0


def _copy_in(cli, src: str, ctr: str, dest: str, opts) -> int:
    import io
    import tarfile
    st = _stat(cli, ctr, dest)
    query = {"copyUIDGID": 1 if opts.archive else None, "noOverwriteDirNonDir": 1}
    if src == "-":
        cli.client.call("PUT", f"/containers/{ctr}/archive", dict(query, path=dest), sys.stdin.buffer,
                        {"Content-Type": "application/x-tar"})
        return 0
    if not os.path.lexists(src):
        cli.err(f"lstat {os.path.abspath(src)}: no such file or directory")
        return 1
    dest_is_dir = bool(st) and bool(st.get("mode", 0) & (1 << 31))
    if dest_is_dir:
        target, name = dest, os.path.basename(os.path.abspath(src))
    else:
        target, name = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(src, arcname=name, recursive=True)
    cli.client.call("PUT", f"/containers/{ctr}/archive", dict(query, path=target), buf.getvalue(),
                    {"Content-Type": "application/x-tar"})
    return 0

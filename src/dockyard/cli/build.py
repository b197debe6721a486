"""`dockyard build`: the docker CLI's legacy builder client.

The context is what `docker build` sends: a directory tarred with its
.dockerignore applied (context.write_context_tar: the Dockerfile and
.dockerignore always kept, owners root:root), a Dockerfile outside the context added as `.dockerfile.<random>`
(and appended to .dockerignore, so the daemon drops it after reading it),
or `-`: a context tar, or a bare Dockerfile, on stdin. The daemon's JSON
stream is printed as it comes; a failure's message goes to stderr and the
exit status is its code (a failing RUN's own), as the docker CLI exits.
"""
from __future__ import annotations

import base64
import io
import json
import os
import secrets
import sys
import tarfile
import tempfile

from .flags import LIST, STRING, Command, Flag, UsageError

BUILD = Command("[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile", [
    Flag("add-host", kind=LIST, help="Add a custom host-to-IP mapping (\"host:ip\")"),
    Flag("build-arg", kind=LIST, help="Set build-time variables"),
    Flag("cache-from", kind=LIST, help="Images to consider as cache sources"),
    Flag("cpu-period", kind=STRING, help="Limit the CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", kind=STRING, help="Limit the CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-shares", "c", STRING, help="CPU shares (relative weight)"),
    Flag("cpuset-cpus", kind=STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("file", "f", STRING, help="Name of the Dockerfile (Default is \"PATH/Dockerfile\")"),
    Flag("force-rm", help="Always remove intermediate containers"),
    Flag("iidfile", kind=STRING, help="Write the image ID to the file"),
    Flag("isolation", kind=STRING, help="Container isolation technology"),
    Flag("label", kind=LIST, help="Set metadata for an image"),
    Flag("memory", "m", STRING, help="Memory limit"),
    Flag("memory-swap", kind=STRING, help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
    Flag("network", kind=STRING, default="default",
         help="Set the networking mode for the RUN instructions during build"),
    Flag("no-cache", help="Do not use cache when building the image"),
    Flag("platform", kind=STRING, help="Set platform if server is multi-platform capable"),
    Flag("pull", help="Always attempt to pull a newer version of the image"),
    Flag("quiet", "q", help="Suppress the build output and print image ID on success"),
    Flag("rm", default=True, help="Remove intermediate containers after a successful build"),
    Flag("shm-size", kind=STRING, help="Size of /dev/shm"),
    Flag("tag", "t", LIST, help="Name and optionally a tag in the \"name:tag\" format"),
    Flag("target", kind=STRING, help="Set the target build stage to build."),
    Flag("ulimit", kind=LIST, help="Ulimit options"),
], min_args=1, max_args=1, aliases="dockyard image build, dockyard build, dockyard builder build")

DEFAULT_DOCKERFILE = "Dockerfile"
_TAR_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class _Failed(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message, self.code = message, code or 1


def _prepare(message: str) -> _Failed:
    return _Failed(f"unable to prepare context: {message}")


# ---------------------------------------------------------------- the context

def _is_archive(head: bytes) -> bool:
    if head.startswith(_TAR_MAGIC):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> None:
    import time
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _dir_context(out, context_dir: str, dockerfile: str | None, stdin_dockerfile: bytes | None) -> str:
    """Tar `context_dir` into `out` as the docker CLI does; the Dockerfile's
    name for the daemon is returned."""
    from ..daemon.build.context import write_context_tar
    from ..daemon.build.dockerignore import DOCKERIGNORE, read_patterns
    root = os.path.abspath(context_dir)
    if not os.path.exists(root):
        raise _prepare(f'path "{context_dir}" not found')
    if not os.path.isdir(root):
        raise _prepare(f'context must be a directory: {root}')
    extra: bytes | None = stdin_dockerfile
    if extra is None:
        if dockerfile:
            path = os.path.abspath(dockerfile)          # -f is relative to the current directory
        else:
            path = os.path.join(root, DEFAULT_DOCKERFILE)
            if not os.path.exists(path) and os.path.exists(os.path.join(root, "dockerfile")):
                path = os.path.join(root, "dockerfile")
        if not os.path.exists(path):
            raise _prepare(f"unable to evaluate symlinks in Dockerfile path: lstat {path}: no such file or directory")
        rel = os.path.relpath(path, root)
        if rel.startswith(".." + os.sep) or rel == "..":
            with open(path, "rb") as f:
                extra = f.read()                       # outside the context: sent under a random name
        else:
            name = rel.replace(os.sep, "/")
    ignore = b""
    try:
        with open(os.path.join(root, DOCKERIGNORE), "rb") as f:
            ignore = f.read()
    except FileNotFoundError:
        pass
    patterns = read_patterns(ignore)
    if extra is None:
        write_context_tar(root, patterns, name, out)
        return name
    # the Dockerfile from elsewhere goes in under a random name, which .dockerignore then names
    name = ".dockerfile." + secrets.token_hex(10)
    with tempfile.SpooledTemporaryFile(max_size=16 << 20) as tmp:
        write_context_tar(root, patterns, None, tmp)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp, mode="r|") as src, \
                tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
            for m in src:
                if m.name != DOCKERIGNORE:
                    dst.addfile(m, src.extractfile(m) if m.isreg() else None)
            _add_file(dst, name, extra)
            _add_file(dst, DOCKERIGNORE, ignore + f"\n{name}\n".encode(), 0o644)
    return name


def _stdin_context(out, data: bytes, dockerfile: str | None) -> str:
    """`-`: a context archive as is, or a bare Dockerfile put in a tar."""
    if _is_archive(data[:512]):
        out.write(data)
        return dockerfile or DEFAULT_DOCKERFILE
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add_file(tar, DEFAULT_DOCKERFILE, data)
    return DEFAULT_DOCKERFILE


# ---------------------------------------------------------------- the request

def _kv_with_nil(items: list[str]) -> dict:
    """--build-arg: KEY=VALUE, or KEY (its value from the environment, else null)."""
    out: dict = {}
    for item in items:
        key, eq, value = item.partition("=")
        out[key] = value if eq else os.environ.get(key)
    return out


def _kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _size(flag: str, value: str | None) -> int | None:
    if not value:
        return None
    from ..units import ram_in_bytes
    try:
        return ram_in_bytes(value)
    except ValueError as e:
        raise UsageError(f'invalid argument "{value}" for "--{flag}" flag: {e}') from None


def _ulimits(items: list[str]) -> str | None:
    out = []
    for item in items:
        name, _, limits = item.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            out.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
        except ValueError:
            raise UsageError(f'invalid argument "{item}" for "--ulimit" flag: invalid ulimit argument: '
                             f"{item}") from None
    return json.dumps(out) if out else None


def _registry_config() -> str:
    from .credentials import all_auth_configs
    return base64.urlsafe_b64encode(json.dumps(all_auth_configs()).encode()).decode()


def query(opts, dockerfile: str) -> dict:
    return {
        "t": opts.tag or None, "dockerfile": dockerfile, "q": 1 if opts.quiet else None,
        "nocache": 1 if opts.no_cache else None, "pull": 1 if opts.pull else None,
        "rm": 1 if opts.rm else 0, "forcerm": 1 if opts.force_rm else None,
        "buildargs": json.dumps(_kv_with_nil(opts.build_arg)) if opts.build_arg else None,
        "labels": json.dumps(_kv(opts.label)) if opts.label else None,
        "cachefrom": json.dumps(opts.cache_from) if opts.cache_from else None,
        "extrahosts": opts.add_host or None, "target": opts.target or None,
        "networkmode": opts.network if opts.network else None,
        "platform": opts.platform or None, "isolation": opts.isolation or None,
        "memory": _size("memory", opts.memory), "memswap": _size("memory-swap", opts.memory_swap),
        "shmsize": _size("shm-size", opts.shm_size),
        "cpushares": opts.cpu_shares or None, "cpusetcpus": opts.cpuset_cpus or None,
        "cpuperiod": opts.cpu_period or None, "cpuquota": opts.cpu_quota or None,
        "ulimits": _ulimits(opts.ulimit),
    }


def _show(cli, resp, quiet: bool) -> str | None:
    """Print the daemon's stream; returns the image ID it reported. A failure raises _Failed."""
    from .progress import json_messages
    image_id = None
    quiet_out = []
    for msg in json_messages(resp.chunks()):
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            if quiet_out:
                sys.stderr.write("".join(quiet_out))
            raise _Failed(msg.get("error") or detail.get("message") or "unknown error", detail.get("code") or 1)
        aux = msg.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
            continue
        text = msg.get("stream")
        if text is None and msg.get("status"):
            text = f"{msg['id']}: {msg['status']}\n" if msg.get("id") else msg["status"] + "\n"
        if text is None:
            continue
        if quiet:
            quiet_out.append(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    if quiet:
        out = "".join(quiet_out)
        sys.stdout.write(out)
        if out.strip().startswith("sha256:"):
            image_id = out.strip()
    sys.stdout.flush()
    return image_id


def build(cli, argv: list[str]) -> int:
    opts, args = BUILD.parse(argv, cli.command_path)
    source = args[0]
    if "://" in source or source.startswith("git@") or source.startswith("github.com/"):
        cli.err(f"unable to prepare context: remote contexts ({source}) are not supported by dockyard build: "
                "clone or download it and build the directory")
        return 1
    if opts.file == "-" and source == "-":
        cli.err("invalid argument: can't use stdin for both build context and dockerfile")
        return 1
    if opts.iidfile:
        try:
            os.remove(opts.iidfile)
        except FileNotFoundError:
            pass
        except OSError as e:
            cli.err(f"Removing image ID file: {e}")
            return 1
    with tempfile.SpooledTemporaryFile(max_size=16 << 20) as body:
        try:
            if source == "-":
                dockerfile = _stdin_context(body, sys.stdin.buffer.read(), opts.file)
            else:
                stdin_df = sys.stdin.buffer.read() if opts.file == "-" else None
                dockerfile = _dir_context(body, source, None if opts.file == "-" else opts.file, stdin_df)
        except _Failed as e:
            cli.err(e.message)
            return 1
        except OSError as e:
            cli.err(f"unable to prepare context: {e}")
            return 1
        size = body.tell()
        body.seek(0)
        if not opts.quiet and source != "-":
            from .formatting import human_size
            sys.stdout.write(f"Sending build context to Docker daemon  {human_size(size, 4)}\n\n")
            sys.stdout.flush()
        resp = cli.client.call("POST", "/build", query(opts, dockerfile), body,
                               {"Content-Type": "application/x-tar", "X-Registry-Config": _registry_config()})
        try:
            image_id = _show(cli, resp, opts.quiet)
        except _Failed as e:
            cli.err(e.message)
            return e.code
    if opts.iidfile:
        if not image_id:
            cli.err(f"Server did not provide an image ID. Cannot write {opts.iidfile}")
            return 1
        with open(opts.iidfile, "w") as f:
            f.write(image_id)
    return 0


PRUNE = Command("[OPTIONS]", "Remove build cache", [
    Flag("all", "a", help="Remove all unused build cache, not just dangling ones"),
    Flag("filter", kind=LIST, help="Provide filter values (e.g. \"until=24h\")"),
    Flag("force", "f", help="Do not prompt for confirmation"),
    Flag("keep-storage", kind=STRING, help="Amount of disk space to keep for cache"),
], max_args=0, aliases="dockyard builder prune")


def prune(cli, argv: list[str]) -> int:
    from .filters import filters_param
    from .prune import confirm, print_deleted, print_reclaimed
    opts, _ = PRUNE.parse(argv, cli.command_path)
    what = "all build cache" if opts.all else "all dangling build cache"
    if not opts.force and not confirm(f"WARNING! This will remove {what}."):
        return 0
    report = cli.client.post("/build/prune", {"all": 1 if opts.all else None,
                                              "filters": filters_param(opts.filter),
                                              "keep-storage": _size("keep-storage", opts.keep_storage)}) or {}
    print_deleted(cli, "build cache objects", list(report.get("CachesDeleted") or []))
    print_reclaimed(cli, report.get("SpaceReclaimed"))
    return 0

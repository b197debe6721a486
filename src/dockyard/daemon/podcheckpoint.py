"""The CRI's CheckpointContainer: a running CRI container checkpointed with
CRIU on `docker checkpoint create --leave-running`'s path (checkpoint.py),
written as one tar archive at the kubelet's `location`, in the layout
containerd and CRI-O write (checkpointctl reads it):

    checkpoint/       CRIU's image files
    config.dump       the container: id, name, image, runtime, times (JSON)
    spec.dump         its OCI runtime spec (the bundle's config.json)
    status.dump       its CRI ContainerStatus (JSON; the caller renders it)
    rootfs-diff.tar   its filesystem changes (the overlay upper dir)
    dump.log, stats-dump   CRIU's log and timings, when it wrote them
    container.log     its log at the kubelet's path, when there is one

The container keeps running. The archive appears whole or not at all (a
temp file beside `location`, renamed over it); the checkpoint dir the dump
went through is removed either way.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..errors import InvalidParameter, SystemError_
from . import checkpoint as cp
from .checkpoint_io import tar_dir
from .podcontainers import log_path

if TYPE_CHECKING:
    from .container import Container

DEFAULT_TIMEOUT = 120       # s, the CRIU dump's when the request names none ("the CRI default")


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat().replace("+00:00", "Z")


def _config_dump(c: Container, runtime: str, checkpointed_ns: int) -> dict:
    """checkpointctl's ContainerConfig."""
    return {"id": c.id, "name": c.name, "rootfsImage": c.cri.get("image", c.image_ref),
            "rootfsImageRef": c.image, "rootfsImageName": c.cri.get("image", c.image_ref), "runtime": runtime,
            "createdTime": _rfc3339(c.cri.get("created_ns", 0)), "checkpointedTime": _rfc3339(checkpointed_ns),
            "restoredTime": "0001-01-01T00:00:00Z", "restored": False}


def check_location(location: str) -> str:
    if not location:
        raise InvalidParameter("checkpoint location must not be empty")
    if not os.path.isabs(location):
        raise InvalidParameter(f"checkpoint location must be an absolute path: {location}")
    parent = os.path.dirname(os.path.normpath(location))
    if not os.path.isdir(parent):
        raise InvalidParameter(f"checkpoint location {location}: no such directory {parent}")
    if os.path.isdir(location):
        raise InvalidParameter(f"checkpoint location {location} is a directory")
    return os.path.normpath(location)


def _write_archive(d, c: Container, cp_dir: str, location: str, status_json: bytes, runtime: str) -> None:
    paths = d.paths(c)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tar", dir=os.path.dirname(location))
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(dir=cp_dir) as work:
            diff = os.path.join(work, "rootfs-diff.tar")
            tar_dir(paths.rootfs.upper, diff)
            with tarfile.open(tmp, "w") as tar:
                def add_bytes(name: str, data: bytes) -> None:
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
                    tar.addfile(info, io.BytesIO(data))
                images = os.path.join(cp_dir, cp.IMAGES)
                tar.add(images, "checkpoint")
                add_bytes("config.dump", json.dumps(_config_dump(c, runtime, time.time_ns())).encode())
                add_bytes("status.dump", status_json)
                spec = os.path.join(paths.bundle, "config.json")
                if os.path.exists(spec):
                    tar.add(spec, "spec.dump")
                tar.add(diff, "rootfs-diff.tar")
                for name in ("dump.log", "stats-dump"):      # CRIU's: in its work dir or beside the images
                    found = [p for p in (os.path.join(cp_dir, "work", name), os.path.join(images, name))
                             if os.path.isfile(p)]
                    if found:
                        tar.add(found[0], name)
                log = log_path(c)
                if log and os.path.isfile(log):
                    tar.add(log, "container.log")
        os.chmod(tmp, 0o600)
        os.replace(tmp, location)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


async def checkpoint_to_archive(d, c: Container, location: str, timeout: int, status_json: bytes) -> None:
    """Checkpoint the running container c (leave-running) into a tar at location."""
    location = check_location(location)
    name = f"cri-{time.time_ns()}"
    target = await cp.create(d, c, c.id, name, None, exit_=False,
                             timeout=timeout if timeout > 0 else DEFAULT_TIMEOUT)
    try:
        meta = cp.read_meta(target)
        await asyncio.to_thread(_write_archive, d, c, target, location, status_json, meta.get("Runtime", ""))
    except OSError as e:
        raise SystemError_(f"writing checkpoint archive {location} failed: {e.strerror or e}") from None
    finally:
        await asyncio.to_thread(shutil.rmtree, target, True)

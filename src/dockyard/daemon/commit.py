"""`docker commit`: a new image = the container's image + one layer made
from its upper dir (archive.layer_tar), with the container's config and
Dockerfile-style `changes` applied. The layer is staged and verified like
any other (layers.stage keeps its exact tar), and the image is recorded
in one transaction: an error leaves no image and no layer behind.
A running container is paused meanwhile unless pause=false, so the layer
is a consistent snapshot; as moby's, that pause is best effort (a container
whose process just ended cannot be frozen, and is committed as it is)."""
from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import tempfile
from typing import TYPE_CHECKING, Protocol

from .. import __version__
from ..errors import DockyardError, NoSpace
from ..images.archive import host_arch
from ..images.changes import apply_changes
from ..images.ingest import Prestaged, config_bytes
from ..images.reference import repo_tag
from ..images.times import format_ns, now_ns
from ..store.db import is_full
from . import archive
from .container import RUNNING

if TYPE_CHECKING:
    from ..images.service import ImageService
    from ..runtime.runtimes import Runtimes
    from .container import Container
    from .paths import ContainerPaths

log = logging.getLogger("dockyard.commit")


class _Daemon(Protocol):          # and what pause.py asks of it
    images: ImageService
    runtimes: Runtimes
    def paths(self, c: Container) -> ContainerPaths: ...
    def save(self, c: Container) -> None: ...
    def event(self, c: Container, action: str, **extra) -> None: ...


# The container config keys an image config carries (what dockerd writes on commit).
_IMAGE_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
               "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
               "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels",
               "StopSignal", "StopTimeout", "Shell")


async def commit(daemon: _Daemon, c, repo: str = "", tag: str = "", comment: str = "", author: str = "",
                 changes: list[str] | None = None, pause: bool = True, config: dict | None = None) -> str:
    ref = repo_tag(repo, tag or None) if repo else None          # bad names fail first
    base = {k: copy.deepcopy(c.config.get(k)) for k in _IMAGE_KEYS if k in c.config}
    if config:
        base.update({k: v for k, v in config.items() if v not in (None, "", [], {})})
    base["Image"] = c.image                                        # the parent, by id, as dockerd records it
    cfg = apply_changes(list(changes or []), base)                # so do bad changes
    paused = False
    if pause and c.state.status == RUNNING:
        from .pause import pause as do_pause
        try:
            await do_pause(daemon, c)
            paused = True
        except DockyardError as e:
            # as moby: the pause is best effort and its error never the commit's. A
            # container that just exited is still running here until its exit is
            # recorded (conmon reports it); there is nothing left to freeze then
            log.info("commit of %s without pausing it: %s", c.id[:12], e.message)
    try:
        image_id = await asyncio.to_thread(_commit, daemon, c, ref, cfg, comment, author)
    except OSError as e:
        if is_full(e):       # moby's wording: the OS error, "no space left on device"
            raise NoSpace(f"write {e.filename or daemon.images.tmp_dir}") from e
        raise
    finally:
        if paused:           # whatever happened, the container runs again
            from .pause import unpause
            try:
                await unpause(daemon, c)
            except DockyardError as e:       # unpaused meanwhile, or gone: not the commit's error
                log.warning("unpause of %s after commit: %s", c.id[:12], e.message)
    daemon.event(c, "commit", comment=comment)
    return image_id


def _commit(daemon: _Daemon, c, ref, cfg: dict, comment: str, author: str) -> str:
    images = daemon.images
    parent = images.store.get(c.image)
    if parent is None:
        from ..errors import NoSuchImage
        raise NoSuchImage(c.image)
    pdoc = json.loads(parent.config)
    upper = daemon.paths(c).rootfs.upper
    fd, tmp = tempfile.mkstemp(prefix="commit-", suffix=".tar", dir=images.tmp_dir)
    try:
        with os.fdopen(fd, "w+b") as f:
            archive.layer_tar(upper, f)
            f.seek(0)
            staged = images.layers.stage(f)
        parent_diff_ids = list((pdoc.get("rootfs") or {}).get("diff_ids") or [])
        # the parent's layers are reused; only the new top one was staged
        with Prestaged(images.layers, {len(parent_diff_ids): staged}) as layers:
            created = format_ns(now_ns())
            hist = {"created": created}
            if author:
                hist["author"] = author
            hist["created_by"] = " ".join(c.config.get("Cmd") or [])      # moby: Cmd only
            if comment:
                hist["comment"] = comment
            doc = {"architecture": pdoc.get("architecture") or host_arch()}
            if author:
                doc["author"] = author
            if comment:
                doc["comment"] = comment
            doc.update({"config": cfg, "container": c.id, "created": created,
                        "docker_version": __version__,
                        "history": list(pdoc.get("history") or []) + [hist],
                        "os": pdoc.get("os") or "linux",
                        "rootfs": {"type": "layers", "diff_ids": parent_diff_ids + [staged.diff_id]}})
            image_id = images.ingest(config_bytes(doc), layers, [ref] if ref else [], "commit").image_id
        try:
            images.dist.set_parent(image_id, parent.id)
        except BaseException:
            try:                # all or nothing: no image without its parent
                images.remove(image_id, force=True)
            except Exception as e:
                log.warning("removing %s after a failed commit: %s", image_id, e)
            raise
        return image_id
    finally:
        os.unlink(tmp)

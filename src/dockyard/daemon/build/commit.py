"""One build step's image: the parent image + the step's config, and the
layer made from a root's upper dir when the step changed files (as moby's
CommitBuildStep / exportImage: an unchanged upper dir adds no layer and
its history entry is `empty_layer`). The image's Parent is the previous
step's image, as the classic builder records it. Blocking: run in a thread.
"""
from __future__ import annotations

import errno
import json
import shutil
import stat
import os
import tarfile
import tempfile
from typing import TYPE_CHECKING

from ... import __version__
from ...images.archive import host_arch
from ...images.ingest import Prestaged, config_bytes
from ...images.layers import StagedLayer
from ...images.times import format_ns, now_ns
from ...images.whiteouts import OPAQUE_XATTR
from .. import archive

if TYPE_CHECKING:
    from ...images.service import ImageService


def _has_members(f) -> bool:
    f.seek(0)
    with tarfile.open(fileobj=f, mode="r:") as tf:
        return tf.next() is not None


def _stage_moved(images: "ImageService", upper: str):
    """A private overlay's upper dir as the layer itself (no unpacking)."""
    if not os.listdir(upper):
        return None, 0
    try:
        staged = images.layers.stage_dir(upper, lambda out: archive.layer_tar(upper, out, skip_init=False))
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        return _stage_tar(images, upper, skip_init=False)
    return staged, staged.tar_size


def drop_init_paths(upper: str) -> None:
    """Remove from a finished container's upper dir the mount points the
    start path made (what layer_tar leaves out), on fds: the container may
    have left a symlink where /etc was, and it must not lead out."""
    ufd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for rel in sorted(archive.INIT_PATHS) + list(archive.INIT_TREES):
            parent, _, name = rel.rpartition("/")
            try:
                dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=ufd) if parent else ufd
            except OSError:
                continue                # no such dir (or not a dir): nothing of ours below it
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                st = None
            try:
                if st is not None and stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(name, dir_fd=dfd)
                elif st is not None:
                    os.unlink(name, dir_fd=dfd)
            finally:
                if dfd != ufd:
                    os.close(dfd)
        # a parent the start path's placeholders alone copied up (/etc): empty
        # now, it is no change of the step's (dockerd keeps those in a separate
        # init layer, so its RW layer never has them)
        for parent in sorted({rel.rpartition("/")[0] for rel in archive.INIT_PATHS} - {""}):
            try:
                fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=ufd)
            except OSError:
                continue
            try:
                empty = not os.listdir(fd) and OPAQUE_XATTR not in os.listxattr(fd)
            finally:
                os.close(fd)
            if empty:
                try:
                    os.rmdir(parent, dir_fd=ufd)
                except OSError:
                    pass
    finally:
        os.close(ufd)


def _stage_tar(images: "ImageService", upper: str, skip_init: bool = True):
    staged, size = None, 0
    fd, tmp = tempfile.mkstemp(prefix="build-", suffix=".tar", dir=images.tmp_dir)
    try:
        with os.fdopen(fd, "w+b") as f:
            archive.layer_tar(upper, f, skip_init=skip_init)
            if _has_members(f):
                size = f.seek(0, os.SEEK_END)
                f.seek(0)
                staged = images.layers.stage(f)
    finally:
        os.unlink(tmp)
    return staged, size


def stage_layer(images: "ImageService", upper: str, *, movable: bool = False,
                keep_upper: bool = False) -> tuple[StagedLayer | None, int]:
    """The step's new layer, staged (None: the step changed no file), and
    its tar's bytes. `upper` (unmounted, or its processes gone) is taken as
    the layer's files as it is, moved into the layer store; `movable` says
    it is a private overlay's, else it is a finished container's, whose
    start-path mount points are dropped first; `keep_upper` (a container the
    build keeps: rm=false): tarred and unpacked instead, the container keeps
    its changes."""
    if keep_upper:
        return _stage_tar(images, upper)
    if not movable:              # a RUN container's: its mount points go first
        drop_init_paths(upper)
    return _stage_moved(images, upper)


def record_step(images: "ImageService", parent_id: str, config: dict, recorded: dict,
                staged: StagedLayer | None, *, container_id: str = "", author: str = "") -> str:
    """Record the step's image (taking `staged` over, or discarding it on
    failure); returns its id."""
    try:
        pdoc = json.loads(images.store.get(parent_id).config) if parent_id else {}
    except BaseException:
        images.layers.discard(staged)
        raise
    diff_ids = list((pdoc.get("rootfs") or {}).get("diff_ids") or [])
    prestaged = {len(diff_ids): staged} if staged is not None else {}
    with Prestaged(images.layers, prestaged) as layers:     # hands it to the ingest, or discards it
        created = format_ns(now_ns())
        hist: dict = {"created": created}
        if author:
            hist["author"] = author
        hist["created_by"] = " ".join(recorded.get("Cmd") or [])
        if staged is None:
            hist["empty_layer"] = True
        else:
            diff_ids.append(staged.diff_id)
        doc = {"architecture": pdoc.get("architecture") or host_arch(), "config": config}
        if author:
            doc["author"] = author
        if container_id:
            doc["container"] = container_id
        doc.update({"container_config": recorded, "created": created, "docker_version": __version__,
                    "history": list(pdoc.get("history") or []) + [hist], "os": pdoc.get("os") or "linux",
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}})
        if pdoc.get("variant"):
            doc["variant"] = pdoc["variant"]
        doc = dict(sorted(doc.items()))     # dockerd's image JSON: keys in order
        image_id = images.ingest(config_bytes(doc), layers, [], "build").image_id
    if parent_id:
        try:
            images.dist.set_parent(image_id, parent_id)
        except BaseException:
            images.remove(image_id, force=True)
            raise
    return image_id


def commit_step(images: "ImageService", parent_id: str, config: dict, recorded: dict, upper: str | None,
                *, container_id: str = "", author: str = "", movable: bool = False,
                keep_upper: bool = False) -> tuple[str, int]:
    """stage_layer + record_step: (image id, bytes of its new layer)."""
    staged, size = (None, 0) if upper is None else stage_layer(images, upper, movable=movable,
                                                                 keep_upper=keep_upper)
    return record_step(images, parent_id, config, recorded, staged, container_id=container_id,
                       author=author), size

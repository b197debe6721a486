"""Moving a checkpointed container to another daemon (another host).

Export makes one tar:

    dockyard-export.json   format version, the container's create body
                           (Config, HostConfig, image), its name, the checkpoint's metadata
    rootfs-diff.tar        the container's filesystem changes (the overlay upper
                           dir, with whiteouts and xattrs: GNU tar)
    checkpoint/            checkpoint.json and CRIU's images/

Import creates a container from it on this daemon (the image must be here),
lays the filesystem changes into its upper dir, files the checkpoint under
the new container and restores it. Any failure removes what import made.
"""
from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import os
import subprocess
import tarfile
import tempfile
from typing import TYPE_CHECKING, AsyncIterator, Protocol

from ..errors import DockyardError, InvalidParameter, NotFound, SystemError_
from . import checkpoint as cp
from .container import Container

if TYPE_CHECKING:
    from ..images.service import ImageService
    from ..network.manager import NetworkManager
    from ..runtime.criu import CriuProbe
    from ..runtime.runtimes import Runtimes
    from .daemon import DaemonConfig
    from .lifecycle import Lifecycle
    from .paths import ContainerPaths

FORMAT = 1
MANIFEST = "dockyard-export.json"
ROOTFS_DIFF = "rootfs-diff.tar"
CHUNK = 256 * 1024


class _Daemon(Protocol):
    config: DaemonConfig
    images: ImageService
    networks: NetworkManager
    runtimes: Runtimes           # this and the rest: what checkpoint.py asks of it
    criu: CriuProbe
    lifecycle: Lifecycle
    def paths(self, c: Container) -> ContainerPaths: ...
    def save(self, c: Container) -> None: ...
    def event(self, c: Container, action: str, **extra) -> None: ...


def _tmpdir(d: _Daemon) -> str:
    path = os.path.join(d.config.exec_root, "checkpoint-io")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def tar_dir(src: str, dest: str) -> None:
    """GNU tar keeps overlay whiteouts (0/0 char devices) and opaque-dir xattrs."""
    r = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", src, "-cpf", dest, "."],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemError_(f"archiving {src} failed: {r.stderr.strip()[-300:]}")


def _untar_dir(src: str, dest: str) -> None:
    r = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--same-permissions",
                        "-C", dest, "-xf", src], capture_output=True, text=True)
    if r.returncode != 0:
        raise InvalidParameter(f"the export's filesystem changes cannot be unpacked: {r.stderr.strip()[-300:]}")


# ---------------------------------------------------------------- export

def _build_export(d: _Daemon, c: Container, path: str, meta: dict, out: str) -> None:
    manifest = {"Format": FORMAT, "Name": c.name, "Checkpoint": meta, "ImageRef": c.image_ref,
                "Create": {**c.config, "Image": c.image, "HostConfig": c.host_config}}
    with tempfile.TemporaryDirectory(dir=_tmpdir(d)) as tmp:
        diff = os.path.join(tmp, ROOTFS_DIFF)
        tar_dir(d.paths(c).rootfs.upper, diff)
        with tarfile.open(out, "w") as tar:
            data = json.dumps(manifest).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            tar.add(diff, ROOTFS_DIFF)
            tar.add(os.path.join(path, cp.META), f"checkpoint/{cp.META}")
            tar.add(os.path.join(path, cp.IMAGES), f"checkpoint/{cp.IMAGES}")


async def export(d: _Daemon, c: Container, ref: str, name: str, custom_dir: str | None) -> AsyncIterator[bytes]:
    path = cp.find(d, c, ref, name, custom_dir)
    meta = cp.read_meta(path)
    fd, out = tempfile.mkstemp(suffix=".tar", dir=_tmpdir(d))
    os.close(fd)
    try:
        await asyncio.to_thread(_build_export, d, c, path, meta, out)
    except BaseException:
        os.unlink(out)
        raise

    async def chunks() -> AsyncIterator[bytes]:
        try:
            with open(out, "rb") as f:
                while True:
                    data = await asyncio.to_thread(f.read, CHUNK)
                    if not data:
                        return
                    yield data
        finally:
            os.unlink(out)
    return chunks()


# ---------------------------------------------------------------- import

def _safe_members(tar: tarfile.TarFile, prefix: str) -> list[tarfile.TarInfo]:
    out = []
    for m in tar.getmembers():
        if not m.name.startswith(prefix):
            continue
        rel = os.path.normpath(m.name[len(prefix):])
        if rel.startswith("..") or os.path.isabs(rel) or not (m.isfile() or m.isdir()):
            raise InvalidParameter(f"unsafe entry in checkpoint export: {m.name}")
        out.append(m)
    return out


def _read_manifest(tar_path: str) -> dict:
    try:
        with tarfile.open(tar_path) as tar:
            f = tar.extractfile(MANIFEST)
            manifest = json.load(f)
    except (tarfile.TarError, KeyError, ValueError, OSError, TypeError):
        raise InvalidParameter(f"not a dockyard checkpoint export (no readable {MANIFEST})") from None
    if not isinstance(manifest, dict):
        raise InvalidParameter(f"not a dockyard checkpoint export ({MANIFEST} is not an object)")
    if manifest.get("Format") != FORMAT or not isinstance(manifest.get("Create"), dict):
        raise InvalidParameter(f"unsupported checkpoint export (format {manifest.get('Format')!r})")
    return manifest


def _lay_out(d: _Daemon, c: Container, tar_path: str, cp_name: str, meta: dict) -> None:
    target = os.path.join(cp.root_dir(d, c, None), cp_name)
    os.makedirs(target, mode=0o700)
    with tarfile.open(tar_path) as tar:
        for m in _safe_members(tar, "checkpoint/"):
            m.name = m.name[len("checkpoint/"):]
            tar.extract(m, target, set_attrs=False)
        with tempfile.TemporaryDirectory(dir=_tmpdir(d)) as tmp:
            tar.extract(tar.getmember(ROOTFS_DIFF), tmp, set_attrs=False)
            _untar_dir(os.path.join(tmp, ROOTFS_DIFF), d.paths(c).rootfs.upper)
    meta = {**cp.read_meta(target), "ContainerID": c.id}
    if not _in_bridge_subnet(d, meta.get("IPAddress")):
        meta["IPAddress"] = ""       # another network here: take any free address
    cp.write_meta(target, meta)


def _in_bridge_subnet(d: _Daemon, ip: str | None) -> bool:
    if not ip:
        return False
    try:
        net = d.networks.store.network("bridge")
        return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(net.subnet)
    except (TypeError, ValueError, AttributeError):
        return False


def _local_image(d: _Daemon, image_id: str | None, ref: str | None) -> str:
    """The same image by ID (docker save/load keeps it), else by the name it was created from."""
    found = {}
    for want in (image_id, ref):
        if want:
            try:
                found[want] = d.images.resolve(want).id
            except DockyardError:
                pass
    if ref in found and (image_id not in found or found[ref] == found[image_id]):
        return ref            # shown as it was on the first daemon
    if found:
        return next(iter(found))
    raise NotFound(f"image {ref or image_id} of the exported container is not on this daemon: load it first")


async def import_(d: _Daemon, body: AsyncIterator[bytes], name: str | None, start: bool = True) -> Container:
    fd, tar_path = tempfile.mkstemp(suffix=".tar", dir=_tmpdir(d))
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in body:
                f.write(chunk)
        manifest = await asyncio.to_thread(_read_manifest, tar_path)
        meta = manifest.get("Checkpoint") or {}
        cp_name = cp.validate_name(meta.get("Name"))
        create = dict(manifest["Create"])
        hc = dict(create.get("HostConfig") or {})
        if meta.get("Runtime"):
            hc["Runtime"] = meta["Runtime"]      # CRIU images restore with the runtime that made them
        create["HostConfig"] = hc
        create["Image"] = _local_image(d, create.get("Image"), manifest.get("ImageRef"))
        c = d.lifecycle.create(create, name or manifest.get("Name"))
        try:
            await asyncio.to_thread(_lay_out, d, c, tar_path, cp_name, meta)
            if start:
                await cp.restore(d, c, c.id, cp_name, None)
        except BaseException:
            try:
                await d.lifecycle.remove(c, force=True)
            except DockyardError:
                pass
            raise
        return c
    finally:
        os.unlink(tar_path)

"""runtime.v1.ImageService on dockyard's own image store (the one the
Docker API uses: an image pulled by either is there for both). References
are shown fully qualified (docker.io/library/busybox:latest), as containerd
shows them."""
from __future__ import annotations

import asyncio
import json
import time

from ..errors import NoSuchImage
from ..fsutil import disk_usage
from ..images.reference import parse_normalized
from .proto import grpc_pb, pb
from .server import batches, rpc, stream_rpc, unimplemented


def _qualified(refs: list[str]) -> list[str]:
    out = []
    for r in refs:
        try:
            out.append(str(parse_normalized(r)))
        except Exception:
            out.append(r)
    return out


def _user(cfg: dict) -> tuple[int | None, str]:
    """The image's User as the CRI splits it: a numeric uid, else a name."""
    user = (cfg.get("User") or "").split(":", 1)[0]
    if user.isdigit():
        return int(user), ""
    return None, user


def cri_mirrors(cfg, domain: str) -> tuple[str, ...]:
    """The mirror endpoints for a registry host (--cri-registry-mirror /
    daemon.json "cri-registry-mirrors"): its own entry, else "*"'s."""
    table = getattr(cfg, "cri_registry_mirrors", None) or {}
    return tuple(table.get(domain) or table.get("*") or ())


@unimplemented(grpc_pb.ImageServiceServicer)
class ImageServicer(grpc_pb.ImageServiceServicer):
    def __init__(self, daemon):
        self.d = daemon

    def _image(self, summary: dict) -> pb.Image:
        cfg = self.d.images.config(summary["Id"]) or {}
        uid, username = _user(cfg)
        img = pb.Image(id=summary["Id"], repo_tags=_qualified(summary.get("RepoTags") or []),
                       repo_digests=_qualified(summary.get("RepoDigests") or []), size=int(summary.get("Size") or 0),
                       username=username, spec=pb.ImageSpec(image=summary["Id"]))
        if uid is not None:
            img.uid.value = uid
        return img

    def _find(self, ref: str) -> dict | None:
        try:
            image_id = self.d.images.resolve(ref).id
        except NoSuchImage:
            return None
        return next((s for s in self.d.images.list(all=True) if s["Id"] == image_id), None)

    async def _images(self, request) -> list[pb.Image]:
        """ListImages' and StreamImages' items."""
        want = request.filter.image.image if request.HasField("filter") else ""
        if want:
            summary = await asyncio.to_thread(self._find, want)
            summaries = [summary] if summary else []
        else:
            summaries = await asyncio.to_thread(self.d.images.list, True)
        return [self._image(s) for s in summaries]

    @rpc
    async def ListImages(self, request, context):
        return pb.ListImagesResponse(images=await self._images(request))

    @stream_rpc
    async def StreamImages(self, request, context):
        for chunk in batches(await self._images(request)):
            yield pb.StreamImagesResponse(images=chunk)

    @rpc
    async def ImageStatus(self, request, context):
        """An unknown image is no error: the response has no image."""
        summary = await asyncio.to_thread(self._find, request.image.image)
        if summary is None:
            return pb.ImageStatusResponse()
        info = {}
        if request.verbose:
            info["info"] = json.dumps({"imageSpec": self.d.images.config(summary["Id"])})
        return pb.ImageStatusResponse(image=self._image(summary), info=info)

    @rpc
    async def PullImage(self, request, context):
        from ..errors import InvalidParameter
        from ..images.progress import Progress
        from ..images.registry import AuthConfig
        name = request.image.image
        if not name:
            raise InvalidParameter("image reference must not be empty")
        ref = parse_normalized(name)
        if ref.tag is None and ref.digest is None:
            ref = ref.with_tag("latest")          # never every tag, as `docker pull` without one would
        a = request.auth
        auth = AuthConfig.from_dict({"username": a.username, "password": a.password, "auth": a.auth,
                                     "identitytoken": a.identity_token, "registrytoken": a.registry_token,
                                     "serveraddress": a.server_address})
        cfg = self.d.config

        mirrors = cri_mirrors(cfg, ref.domain)

        def pull() -> str:
            if mirrors:       # containerd's registry.mirrors: its endpoints in order, then the registry itself
                transfer = self.d.images.pull(ref, auth, None, cfg.insecure_registries, mirrors,
                                              cfg.max_concurrent_downloads, any_registry=True)
            else:
                transfer = self.d.images.pull(ref, auth, None, cfg.insecure_registries, cfg.registry_mirrors,
                                              cfg.max_concurrent_downloads)
            errors: list[str] = []
            transfer.run(Progress(lambda msg: errors.append(msg["error"]) if "error" in msg else None))
            if errors:
                raise InvalidParameter(errors[-1])
            return self.d.images.resolve(str(ref)).id
        image_id = await asyncio.to_thread(pull)
        return pb.PullImageResponse(image_ref=image_id)

    @rpc
    async def RemoveImage(self, request, context):
        """Every tag of the image goes, and the image; an unknown image is no error."""
        ref = request.image.image
        try:
            image_id = (await asyncio.to_thread(self.d.images.resolve, ref)).id
        except NoSuchImage:
            return pb.RemoveImageResponse()
        try:
            await asyncio.to_thread(self.d.images.remove, image_id, True)
        except NoSuchImage:       # removed meanwhile by a concurrent call
            pass
        return pb.RemoveImageResponse()

    @rpc
    async def ImageFsInfo(self, request, context):
        root = self.d.images.root
        used, inodes = await asyncio.to_thread(disk_usage, root)
        fs = pb.FilesystemUsage(timestamp=time.time_ns(), fs_id=pb.FilesystemIdentifier(mountpoint=root),
                                used_bytes=pb.UInt64Value(value=used), inodes_used=pb.UInt64Value(value=inodes))
        return pb.ImageFsInfoResponse(image_filesystems=[fs])

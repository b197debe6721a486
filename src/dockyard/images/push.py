"""`docker push`: an image's layers, config and manifest to a registry.

Layers go up concurrently (5 at a time, Docker's default). A layer the
registry already has is not sent again: we remember the blob digest each
layer has in each repository (distribution.py), so we ask with HEAD in the
same repository and try a cross-repo mount from another one on the same
registry. Otherwise the layer's kept tar is gzip-compressed (deterministic:
no name, mtime 0) *while* it streams up in one chunked PATCH; the digest is
known only at the end, which is when the upload's PUT needs it.

The manifest is Docker's schema 2 (what dockerd pushes), tagged with the
tag asked for; its digest is recorded as a RepoDigest.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import DockyardError, NoSuchImage, NotFound, SystemError_
from .distribution import DistributionStore
from .progress import Progress
from .reference import Reference, parse
from .registry import AuthConfig, Registry, RegistryError, registry_host, repo_scope

MAX_CONCURRENT = 5
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_GZIP_MEDIA = {LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar+gzip"}
_CHUNK = 1 << 20
GZIP_LEVEL = 1       # fast: the network is rarely slower than zlib at level 1 on loopback/LAN


@dataclass
class _Layer:
    diff_id: str
    chain_id: str
    digest: str = ""
    size: int = 0

    @property
    def short(self) -> str:
        return self.diff_id.split(":", 1)[-1][:12]


class Pusher:
    def __init__(self, images, ref: Reference, auth: AuthConfig, insecure: tuple[str, ...] = (),
                 concurrency: int = MAX_CONCURRENT):
        self.images = images
        self.concurrency = max(1, concurrency)
        self.dist = DistributionStore(images.db)
        self.ref = ref                       # without tag: every tag of the repository
        self.registry = Registry(registry_host(ref.domain), auth, tuple(insecure))
        self.repo = f"{ref.domain}/{ref.path}"
        self.scope = repo_scope(ref.path, "pull,push")
        self.targets: list[tuple[str, str]] = []    # (tag, image id)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop the uploads (from another thread: the client went away)."""
        self._cancel.set()

    # ------------------------------------------------------------ phase 1
    def resolve(self) -> None:
        if self.ref.tag:
            image_id = self.images.store.tagged(str(self.ref))
            if not image_id:
                raise NotFound(f"An image does not exist locally with the tag: {self.ref.familiar_name}")
            self.targets = [(self.ref.tag, image_id)]
        else:
            for image_id, refs in self.images.store.all_tags().items():
                for r in refs:
                    p = parse(r)
                    if p.domain == self.ref.domain and p.path == self.ref.path and p.tag:
                        self.targets.append((p.tag, image_id))
            self.targets.sort()
            if not self.targets:
                raise NotFound(f"An image does not exist locally with the tag: {self.ref.familiar_name}")
        self.registry.ping(self.scope)

    # ------------------------------------------------------------ phase 2
    def run(self, progress: Progress) -> None:
        progress.status(f"The push refers to repository [{self.repo}]")
        for tag, image_id in self.targets:
            self._push_image(tag, image_id, progress)

    def _push_image(self, tag: str, image_id: str, progress: Progress) -> None:
        row = self.images.store.get(image_id)
        if row is None:
            raise NoSuchImage(image_id)
        config = row.config
        diff_ids = list(json.loads(config)["rootfs"]["diff_ids"])
        chains = self.images.store.chain_ids(image_id)
        layers = [_Layer(d, c) for d, c in zip(diff_ids, chains)]
        for lay in reversed(layers):
            progress.status("Preparing", lay.short)
        self._push_layers(layers, progress)
        self._ensure_blob(config, _digest(config))
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": _digest(config)},
            "layers": [{"mediaType": LAYER_GZIP, "size": lay.size, "digest": lay.digest} for lay in layers],
        }, indent=3).encode()
        digest = _digest(manifest)
        r = self.registry.request("PUT", f"/v2/{self.ref.path}/manifests/{tag}",
                                  {"Content-Type": MANIFEST_V2}, manifest, scope=self.scope, ok=(201, 200))
        r.read()
        r.close()
        self.dist.add_repo_digest(f"{self.repo}@{digest}", image_id)
        progress.status(f"{tag}: digest: {digest} size: {len(manifest)}")
        progress.message({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(manifest)}})

    def _push_layers(self, layers: list[_Layer], progress: Progress) -> None:
        errors: list[BaseException] = []
        seen: dict[str, _Layer] = {}
        todo = []
        for lay in layers:
            if lay.diff_id in seen:            # the same layer twice in one image: send it once
                continue
            seen[lay.diff_id] = lay
            todo.append(lay)

        def work(lay: _Layer) -> None:
            if self._cancel.is_set():
                return
            try:
                self._push_layer(lay, progress)
            except BaseException as e:   # noqa: BLE001 - reported below
                self._cancel.set()
                errors.append(e)

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo) or 1),
                                thread_name_prefix="push") as pool:
            list(pool.map(work, reversed(todo)))
        if errors:
            e = errors[0]
            raise e if isinstance(e, DockyardError) else SystemError_(f"pushing layer: {e}")
        for lay in layers:
            lay.digest, lay.size = seen[lay.diff_id].digest, seen[lay.diff_id].size

    def _push_layer(self, lay: _Layer, progress: Progress) -> None:
        host = self.registry.host if self.ref.domain != "docker.io" else "docker.io"
        candidates = [c for c in self.dist.layer_candidates(lay.diff_id, host) if c[3] in _GZIP_MEDIA]
        candidates.sort(key=lambda c: c[0] != self.repo)          # this repository first
        for repo, digest, size, _media in candidates:
            if repo == self.repo:
                if self._has_blob(digest):
                    lay.digest, lay.size = digest, size
                    progress.status("Layer already exists", lay.short)
                    return
                continue
            from_path = repo.split("/", 1)[1]
            q = urllib.parse.urlencode({"mount": digest, "from": from_path})
            try:
                r = self.registry.request("POST", f"/v2/{self.ref.path}/blobs/uploads/?{q}",
                                          {"Content-Length": "0"}, b"", scope=self.scope, ok=(201, 202))
            except DockyardError:
                continue
            r.read()
            r.close()
            if r.status == 201:
                lay.digest, lay.size = digest, size
                self.dist.add_layer(lay.diff_id, self.repo, digest, size, LAYER_GZIP)
                progress.status(f"Mounted from {from_path}", lay.short)
                return
            self._cancel_upload(r.header("Location"))
        path = self.images.layers.tar_path(lay.chain_id)
        blob = self.images.layers.blob_path(lay.chain_id)
        if os.path.exists(path):
            lay.digest, lay.size = self._upload_layer(path, lay, progress)
        elif os.path.exists(blob):              # pulled: the registry's own gzip blob, as is
            lay.digest, lay.size = self._upload_layer(blob, lay, progress, compress=False)
        else:
            raise SystemError_(f"layer {lay.diff_id}: its tar was not kept (stored by an older "
                               "dockyard); load or pull the image again to push it")
        self.dist.add_layer(lay.diff_id, self.repo, lay.digest, lay.size, LAYER_GZIP)
        progress.status("Pushed", lay.short)

    def _has_blob(self, digest: str) -> bool:
        try:
            r = self.registry.request("HEAD", f"/v2/{self.ref.path}/blobs/{digest}", scope=self.scope)
        except DockyardError:
            return False
        r.close()
        return True

    def _start_upload(self) -> str:
        r = self.registry.request("POST", f"/v2/{self.ref.path}/blobs/uploads/",
                                  {"Content-Length": "0"}, b"", scope=self.scope, ok=(202,))
        r.read()
        r.close()
        loc = r.header("Location")
        if not loc:
            raise RegistryError("registry gave no upload location")
        return loc

    def _cancel_upload(self, loc: str) -> None:
        if not loc:
            return
        try:
            r = self.registry.request("DELETE", loc, scope=self.scope, ok=(204, 200, 404))
            r.close()
        except DockyardError:
            pass

    def _upload_layer(self, tar_path: str, lay: _Layer, progress: Progress,
                      compress: bool = True) -> tuple[str, int]:
        loc = self._start_upload()
        total = os.path.getsize(tar_path)
        sha = hashlib.sha256()
        sent = [0]

        def body():
            comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if compress else None   # gzip, mtime 0
            done = 0
            with open(tar_path, "rb") as f:
                while True:
                    if self._cancel.is_set():
                        raise SystemError_("push cancelled")
                    chunk = f.read(_CHUNK)
                    if not chunk:
                        break
                    done += len(chunk)
                    out = comp.compress(chunk) if comp else chunk
                    if out:
                        sha.update(out)
                        sent[0] += len(out)
                        yield out
                    progress.update(lay.short, "Pushing", done, total)
            out = comp.flush() if comp else b""
            sha.update(out)
            sent[0] += len(out)
            yield out

        r = self.registry.request("PATCH", loc, {"Content-Type": "application/octet-stream"},
                                  body(), scope=self.scope, ok=(202, 204), chunked=True)
        r.read()
        r.close()
        digest = "sha256:" + sha.hexdigest()
        loc = r.header("Location") or loc
        self._finish_upload(loc, digest, b"")
        progress.update(lay.short, "Pushing", total, total, force=True)
        return digest, sent[0]

    def _finish_upload(self, loc: str, digest: str, body: bytes) -> None:
        sep = "&" if "?" in loc else "?"
        r = self.registry.request("PUT", f"{loc}{sep}digest={urllib.parse.quote(digest)}",
                                  {"Content-Type": "application/octet-stream",
                                   "Content-Length": str(len(body))}, body, scope=self.scope, ok=(201, 204))
        r.read()
        r.close()

    def _ensure_blob(self, data: bytes, digest: str) -> None:
        if self._has_blob(digest):
            return
        self._finish_upload(self._start_upload(), digest, data)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()

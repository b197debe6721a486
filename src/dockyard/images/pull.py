"""`docker pull`: manifest, config and layers from a registry into the image store.

Two phases, so that errors before any output are HTTP errors (what the
docker CLI prints as "Error response from daemon: ...") and errors after
it are in-stream `errorDetail` messages, like dockerd:

1. `Puller.resolve()`: ping + auth, the manifest (an index or manifest
   list resolved to this host's platform or `--platform`), the config;
2. `Puller.run(progress)`: layers not present locally are fetched
   concurrently (3 at a time, Docker's default) and unpacked *while*
   downloading: the compressed bytes are hashed on the way in and the
   plain tar is hashed by the unpacker, so a layer is verified against
   both its blob digest and the config's diff id before it is installed.
   A dropped connection resumes with a Range request. The image is
   recorded whole or not at all (ImageService.ingest); a failed pull
   leaves only private temp dirs, removed at once.

`cancel()` (from another thread: the client went away) stops the transfers.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import DockyardError, InvalidParameter, NotFound, SystemError_
from .archive import INDEX_TYPES, MANIFEST_TYPES, host_arch
from .distribution import DistributionStore
from .layers import TAR_NAME, StagedLayer, chain_ids
from .progress import Progress
from .reference import Reference
from .unpack import decompressed
from .registry import MANIFEST_ACCEPT, AuthConfig, Registry, RegistryError, registry_host, repo_scope

log = logging.getLogger("dockyard.images")

MAX_CONCURRENT = 3
_MAX_MANIFEST = 4 << 20
_MAX_CONFIG = 8 << 20
_CHUNK = 1 << 20
_RETRIES = 5
_FOREIGN = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+prettyjws",
           "application/vnd.docker.distribution.manifest.v1+json")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# containerd platforms' known GOOS and GOARCH values
_KNOWN_OS = frozenset("aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 "
                      "solaris wasip1 windows zos".split())
_KNOWN_ARCH = frozenset("386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 mips64le mips64p32 "
                        "mips64p32le ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 wasm".split())


def parse_platform(text: str | None) -> tuple[str, str, str]:
    """"linux/arm64/v8" -> (os, arch, variant); empty means this host."""
    if not text:
        return "linux", host_arch(), ""
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f'"{text}": unknown operating system or architecture: invalid argument')
    os_ = parts[0]
    arch = parts[1] if len(parts) > 1 else host_arch()
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    if len(parts) == 1 and os_ not in _KNOWN_OS:      # containerd's Parse: a lone part is an OS or an arch
        lone = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}.get(os_, os_)
        if lone not in _KNOWN_ARCH:
            raise InvalidParameter(f'"{text}": unknown operating system or architecture: invalid argument')
        os_, arch = "linux", lone
    variant = parts[2] if len(parts) > 2 else ""
    return os_, arch, variant


@dataclass
class _Layer:
    index: int
    digest: str
    size: int
    media: str
    diff_id: str
    chain_id: str

    @property
    def short(self) -> str:
        return self.digest.split(":", 1)[-1][:12]


class Puller:
    def __init__(self, images, ref: Reference, auth: AuthConfig, platform: str | None = None,
                 insecure: tuple[str, ...] = (), cancelled: threading.Event | None = None,
                 mirrors: tuple[str, ...] = (), concurrency: int = MAX_CONCURRENT, any_registry: bool = False):
        self.platform = parse_platform(platform)
        if self.platform[0] != "linux":
            # refused before the registry is asked, in dockerd 20.10's words (ValidatePlatform;
            # Docker 23+ asks the registry first); a 400, not 20.10's 500: it is the client's input
            raise InvalidParameter(f"unsupported os {self.platform[0]}")
        self.images = images
        # Docker's mirrors are Docker Hub's; the CRI's (any_registry) are the ref's registry's
        self.mirrors = mirrors if any_registry or ref.domain == "docker.io" else ()
        self.concurrency = max(1, concurrency)
        self.dist = DistributionStore(images.db)
        self.ref = ref
        self.registry = Registry(registry_host(ref.domain), auth, tuple(insecure))
        self.scope = repo_scope(ref.path, "pull")
        self.manifest_digest = ""
        self.manifest: dict = {}
        self.config_raw = b""
        self.image_id = ""
        self._cancel = cancelled or threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    # ------------------------------------------------------------ phase 1
    def resolve(self) -> None:
        """Docker Hub images come from the first mirror that has them
        (--registry-mirror, in order), else from Docker Hub, as dockerd's
        pull endpoints."""
        official = self.registry
        for url in self.mirrors:
            scheme, _, rest = url.partition("://")
            host = (rest or scheme).split("/", 1)[0]
            self.registry = Registry(host, AuthConfig(), (host,) if scheme == "http" else ())
            try:
                self._resolve()
                log.info("pulling %s from mirror %s", self.ref.familiar(), url)
                return
            except (DockyardError, OSError) as e:
                log.warning("pull of %s from mirror %s failed, trying the next: %s",
                            self.ref.familiar(), url, getattr(e, "message", e))
        self.registry = official
        self._resolve()

    def _resolve(self) -> None:
        self.registry.ping(self.scope)
        want = self.ref.digest or self.ref.tag or "latest"
        body, media, digest = self._manifest(want, top=True)
        self.manifest_digest = digest
        for _ in range(3):
            if media in INDEX_TYPES or (not media and "manifests" in self._json(body)):
                child = self._pick(self._json(body))
                body, media, _ = self._manifest(child["digest"], top=False)
                continue
            break
        if media in SCHEMA1:
            raise InvalidParameter(f"{self.ref.familiar()}: Docker Image Format v1 and Docker Image "
                                   "manifest version 2, schema 1 support has been removed.")
        doc = self._json(body)
        if (media and media not in MANIFEST_TYPES) or "config" not in doc:
            raise InvalidParameter(f"unsupported manifest media type {media or 'unknown'} "
                                   f"for {self.ref.familiar()}")
        self.manifest = doc
        cfg = doc["config"]
        self.image_id = cfg["digest"]
        if self.images.store.get(self.image_id) is None:
            self.config_raw = self._blob_bytes(cfg["digest"], _MAX_CONFIG)
        else:
            self.config_raw = self.images.store.get(self.image_id).config

    def _json(self, body: bytes) -> dict:
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise InvalidParameter(f"invalid manifest for {self.ref.familiar()}: {e}") from None
        if not isinstance(doc, dict):
            raise InvalidParameter(f"invalid manifest for {self.ref.familiar()}")
        return doc

    def _manifest(self, tag_or_digest: str, top: bool) -> tuple[bytes, str, str]:
        path = f"/v2/{self.ref.path}/manifests/{tag_or_digest}"
        try:
            r = self.registry.request("GET", path, {"Accept": MANIFEST_ACCEPT}, scope=self.scope)
        except NotFound as e:
            if top:
                raise NotFound(f"manifest for {self.ref.familiar()} not found: {e.message}") from None
            raise
        try:
            body = r.read(_MAX_MANIFEST + 1)
        finally:
            r.close()
        if len(body) > _MAX_MANIFEST:
            raise InvalidParameter("manifest too large")
        digest = _sha256(body)
        if tag_or_digest.startswith("sha256:") and digest != tag_or_digest:
            raise InvalidParameter(f"manifest verification failed for digest {tag_or_digest}")
        media = (r.header("Content-Type").split(";")[0].strip())
        if media not in INDEX_TYPES and media not in MANIFEST_TYPES and media not in SCHEMA1:
            media = self._json(body).get("mediaType") or ""
        return body, media, digest

    def _pick(self, index: dict) -> dict:
        os_, arch, variant = self.platform
        best = None
        for d in index.get("manifests") or []:
            p = d.get("platform") or {}
            if p.get("os") != os_ or p.get("architecture") != arch:
                continue
            if variant and p.get("variant", "") not in (variant, ""):
                continue
            if best is None or (variant and p.get("variant") == variant):
                best = d
        if best is None:
            want = "/".join(x for x in self.platform if x)
            raise NotFound(f"no matching manifest for {want} in the manifest list entries")
        return best

    def _blob_bytes(self, digest: str, limit: int) -> bytes:
        r = self._open_blob(digest, 0)
        try:
            data = r.read(limit + 1)
        finally:
            r.close()
        if len(data) > limit:
            raise InvalidParameter(f"blob {digest} too large")
        if _sha256(data) != digest:
            raise InvalidParameter(f"digest mismatch for blob {digest}")
        return data

    def _open_blob(self, digest: str, offset: int):
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        r = self.registry.request("GET", f"/v2/{self.ref.path}/blobs/{digest}", headers,
                                  scope=self.scope, ok=(200, 206, 302, 303, 307))
        if r.status in (302, 303, 307):
            loc = r.header("Location")
            r.read()
            r.close()
            r = self.registry.unauthenticated("GET", loc, headers)      # storage backends: no registry auth
            if r.status not in (200, 206):
                data = r.read(4096)
                r.close()
                raise self.registry.error(r.status, r.raw.reason, data, "GET", loc)
        return r

    # ------------------------------------------------------------ phase 2
    def run(self, progress: Progress) -> None:
        ref = self.ref
        progress.status(f"Pulling from {ref.path}", ref.tag or ref.digest)   # as dockerd: no host
        try:
            doc = json.loads(self.config_raw)
            diff_ids = list(doc["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidParameter("invalid image config: no rootfs.diff_ids") from None
        if doc.get("os", "linux") != "linux":
            raise InvalidParameter(f"image operating system \"{doc.get('os')}\" cannot be used on this platform")
        descs = [d for d in self.manifest.get("layers") or [] if d.get("mediaType") not in _FOREIGN]
        if len(descs) != len(diff_ids):
            raise InvalidParameter(f"layers from manifest don't match image configuration "
                                   f"({len(descs)} layers, {len(diff_ids)} diff ids)")
        chains = chain_ids(diff_ids)
        layers = [_Layer(i, d["digest"], int(d.get("size") or 0), d.get("mediaType", ""), diff_ids[i], chains[i])
                  for i, d in enumerate(descs)]
        before = self.images.store.tagged(str(ref)) if ref.tag else None

        def stage(todo: list[int], staged: list) -> None:
            wanted = set(todo)
            for lay in layers:
                progress.status("Pulling fs layer" if lay.index in wanted else "Already exists", lay.short)
            self._fetch_all([layers[i] for i in todo], staged, progress)

        self.images.ingest(self.config_raw, stage, [ref] if ref.tag else [], "pull")
        repo = f"{ref.domain}/{ref.path}"
        self.dist.add_repo_digest(f"{repo}@{self.manifest_digest}", self.image_id)
        for lay in layers:
            self.dist.add_layer(lay.diff_id, repo, lay.digest, lay.size, lay.media)
        progress.status(f"Digest: {self.manifest_digest}")
        shown = ref.familiar()
        if before == self.image_id:
            progress.status(f"Status: Image is up to date for {shown}")
        else:
            progress.status(f"Status: Downloaded newer image for {shown}")

    def _fetch_all(self, todo: list[_Layer], staged: list, progress: Progress) -> None:
        if not todo:
            return
        errors: list[BaseException] = []
        done = {}

        def work(lay: _Layer) -> None:
            if self._cancel.is_set():
                return
            try:
                staged[lay.index] = self._fetch(lay, progress)
                done[lay.index] = True
            except BaseException as e:   # noqa: BLE001 - reported below, others cancelled
                self._cancel.set()
                errors.append(e)

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo)),
                                thread_name_prefix="pull") as pool:
            list(pool.map(work, todo))
        if errors:
            e = errors[0]
            if isinstance(e, DockyardError):
                raise e
            raise SystemError_(f"pulling layer: {e}") from e
        for lay in todo:
            progress.status("Pull complete", lay.short)

    def _fetch(self, lay: _Layer, progress: Progress) -> StagedLayer:
        # the blob as downloaded is kept (push sends it as is, save gunzips it)
        fd, blob = tempfile.mkstemp(prefix="blob-", dir=self.images.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as sink:
                reader = _BlobReader(self, lay, progress, sink)
                try:
                    staged = self.images.layers.stage(reader, keep_tar=False)
                    try:
                        reader.finish()
                    except BaseException:
                        self.images.layers.discard(staged)
                        raise
                finally:
                    reader.close()
            try:
                self._keep(blob, staged)
            except BaseException:
                self.images.layers.discard(staged)
                raise
        finally:
            if os.path.exists(blob):
                os.unlink(blob)
        try:
            progress.status("Verifying Checksum", lay.short)
            progress.status("Download complete", lay.short)
            if staged.diff_id != lay.diff_id:
                raise InvalidParameter(f"layer {lay.digest}: diff id {staged.diff_id} does not "
                                       f"match the image config ({lay.diff_id})")
            progress.update(lay.short, "Extracting", lay.size, lay.size, force=True)
        except BaseException:
            self.images.layers.discard(staged)
            raise
        return staged

    def _keep(self, blob: str, staged: StagedLayer) -> None:
        with open(blob, "rb") as f:
            head = f.read(2)
        layers = self.images.layers
        if head == b"\x1f\x8b":
            layers.keep_blob(staged, blob)
            return
        tar = os.path.join(staged.path, TAR_NAME)
        with open(blob, "rb") as src, open(tar, "wb") as out:    # plain, or bzip2/xz: keep it plain
            shutil.copyfileobj(decompressed(src), out, _CHUNK)


class _BlobReader:
    """A layer blob as a file: hashes what passes (and copies it to `sink`),
    reports progress, resumes a dropped connection with a Range request,
    stops on cancel."""

    def __init__(self, puller: Puller, lay: _Layer, progress: Progress, sink=None):
        self.p = puller
        self.lay = lay
        self.progress = progress
        self.sink = sink
        self.sha = hashlib.sha256()
        self.offset = 0
        self.retries = 0
        self.resp = puller._open_blob(lay.digest, 0)

    def read(self, n: int = -1) -> bytes:
        if self.p._cancel.is_set():
            raise SystemError_("pull cancelled")
        n = _CHUNK if n is None or n < 0 else n
        while True:
            try:
                data = self.resp.read(n)
                break
            except (OSError, ValueError, http.client.HTTPException) as e:
                self._reopen(e)
        if data:
            self.sha.update(data)
            if self.sink is not None:
                self.sink.write(data)
            self.offset += len(data)
            self.progress.update(self.lay.short, "Downloading", self.offset, self.lay.size)
        elif self.lay.size and self.offset < self.lay.size:
            self._reopen(EOFError("connection closed early"))
            return self.read(n)
        return data

    def _reopen(self, err: BaseException) -> None:
        self.retries += 1
        self.resp.close()
        if self.retries > _RETRIES:
            raise RegistryError(f"downloading {self.lay.digest}: {err}")
        log.info("resuming %s at %d after %s", self.lay.digest, self.offset, err)
        r = self.p._open_blob(self.lay.digest, self.offset)
        if r.status == 200 and self.offset:        # no Range support: skip what we have
            left = self.offset
            while left:
                chunk = r.read(min(left, _CHUNK))
                if not chunk:
                    break
                left -= len(chunk)
        self.resp = r

    def finish(self) -> None:
        while self.read(_CHUNK):
            pass
        if "sha256:" + self.sha.hexdigest() != self.lay.digest:
            raise InvalidParameter(f"filesystem layer verification failed for digest {self.lay.digest}")

    def close(self) -> None:
        self.resp.close()


class AllTagsPuller:
    """`docker pull -a`: every tag of the repository, one after another
    (the API's fromImage without a tag)."""

    def __init__(self, images, ref: Reference, auth: AuthConfig, platform: str | None = None,
                 insecure: tuple[str, ...] = ()):
        self.images, self.ref, self.auth = images, ref, auth
        self.platform, self.insecure = platform, insecure
        self.tags: list[str] = []
        self.image_id = ""
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def resolve(self) -> None:
        first = Puller(self.images, self.ref.with_tag("latest"), self.auth, self.platform, self.insecure)
        first.registry.ping(first.scope)
        r = first.registry.request("GET", f"/v2/{self.ref.path}/tags/list", scope=first.scope)
        try:
            doc = json.loads(r.read(_MAX_MANIFEST) or b"{}")
        except ValueError:
            doc = {}
        finally:
            r.close()
        self.tags = sorted(t for t in doc.get("tags") or [] if isinstance(t, str))
        if not self.tags:
            raise NotFound(f"no tags found for {self.ref.familiar_name}")

    def run(self, progress: Progress) -> None:
        for tag in self.tags:
            if self._cancel.is_set():
                raise SystemError_("pull cancelled")
            p = Puller(self.images, self.ref.with_tag(tag), self.auth, self.platform, self.insecure,
                       cancelled=self._cancel)
            p.resolve()
            p.run(_Quiet(progress))
            self.image_id = p.image_id
        progress.status(f"Status: Downloaded newer image for {self.ref.familiar_name}")


class _Quiet:
    """Passes a pull's messages on except its final "Status:" line (all-tags prints one)."""

    def __init__(self, inner: Progress):
        self.inner = inner

    def status(self, status: str, id: str | None = None) -> None:
        if id is None and status.startswith("Status: "):
            return
        self.inner.status(status, id)

    def __getattr__(self, name):
        return getattr(self.inner, name)

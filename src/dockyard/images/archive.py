"""Reading `docker save` tarballs and OCI image layout archives.

Two layouts, both a tar of JSON documents and layer blobs:

- docker save: `manifest.json` = [{"Config": path, "RepoTags": [...],
  "Layers": [path, ...]}], plus the legacy `repositories` file
  ({repo: {tag: top layer's v1 id}}) that older tools rely on. Since
  Docker 25 the paths point into `blobs/sha256/`, and `<id>/layer.tar`
  entries may be symlinks to blobs.
- OCI image layout: `oci-layout` + `index.json` whose descriptors lead
  (through nested indexes, for multi-platform images) to manifests; names
  come from the `io.containerd.image.name` or
  `org.opencontainers.image.ref.name` annotations.

When both are present (Docker 25+ writes both) manifest.json wins, as it
carries the tags. This module only reads; verification against the
config's diff ids happens where layers are unpacked.
"""
from __future__ import annotations

import hashlib
import json
import platform
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import InvalidParameter
from .reference import InvalidReference, Reference, parse_normalized

_MAX_JSON = 64 << 20
_MAX_LINK_HOPS = 16
INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
MANIFEST_TYPES = {"application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json"}
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_arch() -> str:
    m = platform.machine().lower()
    return _GOARCH.get(m, m)


@dataclass
class ArchivedImage:
    config: bytes                   # exact bytes: their sha256 is the image id
    layers: list[str]               # archive member names, base layer first
    refs: list[Reference] = field(default_factory=list)


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


class SavedArchive:
    """A plain (uncompressed) tar of images, opened for random access."""

    def __init__(self, path: str):
        try:
            self._tf = tarfile.open(path, "r:", encoding="utf-8", errors="surrogateescape")
            self._members = {_norm(m.name): m for m in self._tf.getmembers()}
        except tarfile.TarError as e:
            raise InvalidParameter(f"invalid image archive: {e}") from None

    def close(self) -> None:
        self._tf.close()

    def __enter__(self) -> "SavedArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- members
    def has(self, name: str) -> bool:
        return _norm(name) in self._members

    def _member(self, name: str) -> tarfile.TarInfo:
        path = _norm(name)
        for _ in range(_MAX_LINK_HOPS):
            m = self._members.get(path)
            if m is None:
                raise InvalidParameter(f"invalid image archive: {name} not found in it")
            if m.issym():
                path = _norm(posixpath.join(posixpath.dirname(path), m.linkname))
            elif m.islnk():
                path = _norm(m.linkname)
            elif m.isreg():
                return m
            else:
                raise InvalidParameter(f"invalid image archive: {name} is not a file")
        raise InvalidParameter(f"invalid image archive: too many links at {name}")

    def open(self, name: str) -> BinaryIO:
        f = self._tf.extractfile(self._member(name))
        assert f is not None
        return f

    def read(self, name: str, limit: int = _MAX_JSON) -> bytes:
        m = self._member(name)
        if m.size > limit:
            raise InvalidParameter(f"invalid image archive: {name} is too large")
        with self.open(name) as f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise InvalidParameter(f"invalid image archive: {name}: {e}") from None

    # -- images
    def images(self) -> list[ArchivedImage]:
        if self.has("manifest.json"):
            return self._docker_save()
        if self.has("index.json"):
            return self._oci_layout()
        raise InvalidParameter("invalid image archive: neither manifest.json (docker save) "
                               "nor index.json (OCI layout) found")

    def _docker_save(self) -> list[ArchivedImage]:
        manifest = self.json("manifest.json")
        if not isinstance(manifest, list):
            raise InvalidParameter("invalid image archive: manifest.json is not a list")
        repositories = self.json("repositories") if self.has("repositories") else {}
        out = []
        for entry in manifest:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise InvalidParameter("invalid image archive: manifest.json entry without Config")
            layers = entry.get("Layers") or []
            refs = [_tag_ref(t) for t in entry.get("RepoTags") or []]
            if not refs and layers and isinstance(repositories, dict):
                refs = _refs_from_repositories(repositories, layers[-1])
            out.append(ArchivedImage(self.read(entry["Config"]), [str(x) for x in layers], refs))
        return out

    def _oci_layout(self) -> list[ArchivedImage]:
        index = self.json("index.json")
        out = []
        for desc in index.get("manifests") or []:
            manifest = self._pick_manifest(desc)
            if manifest is None:
                continue
            cfg_desc = manifest.get("config") or {}
            config = self.read(_blob_path(cfg_desc))
            want = cfg_desc.get("digest", "")
            if want.startswith("sha256:") and "sha256:" + hashlib.sha256(config).hexdigest() != want:
                raise InvalidParameter(f"invalid image archive: config blob does not match digest {want}")
            layers = [_blob_path(d) for d in manifest.get("layers") or []]
            ref = _name_from_annotations(desc.get("annotations") or {})
            out.append(ArchivedImage(config, layers, [ref] if ref else []))
        return out

    def _pick_manifest(self, desc: dict, depth: int = 0) -> dict | None:
        """Follow a descriptor to one image manifest for this host's platform."""
        if depth > 4:
            raise InvalidParameter("invalid image archive: indexes nested too deep")
        doc = self.json(_blob_path(desc))
        media = desc.get("mediaType") or doc.get("mediaType") or ""
        if media in INDEX_TYPES or (not media and "manifests" in doc):
            children = [d for d in doc.get("manifests") or [] if not _is_attestation(d)]
            arch = host_arch()
            for d in children:
                p = d.get("platform") or {}
                if p.get("os", "linux") == "linux" and p.get("architecture", arch) == arch:
                    return self._pick_manifest(d, depth + 1)
            return None
        if media in MANIFEST_TYPES or (not media and "layers" in doc):
            return doc
        return None     # something else (an artifact): not an image


def _blob_path(desc: dict) -> str:
    digest = desc.get("digest") if isinstance(desc, dict) else None
    if not isinstance(digest, str) or ":" not in digest:
        raise InvalidParameter("invalid image archive: descriptor without digest")
    algo, _, hexpart = digest.partition(":")
    if not algo.isalnum() or not hexpart.isalnum():
        raise InvalidParameter(f"invalid image archive: bad digest {digest!r}")
    return f"blobs/{algo}/{hexpart}"


def _is_attestation(desc: dict) -> bool:
    ann = desc.get("annotations") or {}
    p = desc.get("platform") or {}
    return ann.get("vnd.docker.reference.type") == "attestation-manifest" or \
        (p.get("os") == "unknown" and p.get("architecture") == "unknown")


def _tag_ref(text: str) -> Reference:
    ref = parse_normalized(text)
    if ref.tag is None or ref.digest is not None:
        raise InvalidParameter(f"invalid tag {text!r}")
    return ref


def _refs_from_repositories(repositories: dict, top_layer: str) -> list[Reference]:
    """Legacy tags: `repositories` maps repo -> tag -> v1 id of the top layer,
    which is the directory (old saves) or blob name (new saves) of that layer."""
    ids = {posixpath.basename(posixpath.dirname(_norm(top_layer))), posixpath.basename(_norm(top_layer))}
    refs = []
    for repo, tags in repositories.items():
        if not isinstance(tags, dict):
            continue
        for tag, v1 in tags.items():
            if v1 in ids:
                refs.append(parse_normalized(repo).with_tag(tag))
    return refs


def _name_from_annotations(ann: dict) -> Reference | None:
    name = ann.get("io.containerd.image.name")
    if not name:
        name = ann.get("org.opencontainers.image.ref.name")
        if not name or not any(c in name for c in ":/"):
            return None     # a bare tag ("latest") names no repository
    try:
        ref = parse_normalized(name)
    except InvalidReference:
        return None
    return ref.with_default_tag() if ref.digest is None else None

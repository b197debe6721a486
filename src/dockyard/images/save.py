"""`docker save`: images as a tar that both `docker load`s read.

The layout dockerd 25+ writes: an OCI image layout (oci-layout,
index.json, blobs/sha256/…) plus the docker-save `manifest.json` and
legacy `repositories`, all pointing at the same blobs. Layers are the
exact tars kept at unpack time, so their sha256 is the config's diff id
and the image id survives the trip.

Which tags go in (moby's tarexport parseNames): `name:tag` that tag,
a bare `name` every tag of that repository, an id none.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from ..errors import NoSuchImage, SystemError_
from .reference import Reference, parse, parse_normalized

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class _Entry:
    image_id: str
    config: bytes
    layers: list[tuple[str, str]]            # (diff id, chain id), base first
    created: int
    refs: list[Reference] = field(default_factory=list)


def plan(images, names: list[str]) -> list[_Entry]:
    """Resolve every name first (an unknown one is a 404 before any byte is sent)."""
    entries: dict[str, _Entry] = {}
    for name in names:
        img = images.resolve(name)
        e = entries.get(img.id)
        if e is None:
            chains = images.store.chain_ids(img.id)
            layers = list(zip(img.diff_ids, chains))
            for d, c in layers:
                if not images.layers.has_tar(c):
                    raise SystemError_(f"layer {d} of {name}: its tar was not kept (stored by an older "
                                       "dockyard); load or pull the image again to save it")
            e = entries[img.id] = _Entry(img.id, images.store.get(img.id).config, layers,
                                         img.created_ns // 1_000_000_000)
        for ref in _refs_for(images, name, img.id):
            if ref not in e.refs:
                e.refs.append(ref)
    if not entries:
        raise NoSuchImage("")
    return list(entries.values())


def _refs_for(images, name: str, image_id: str) -> list[Reference]:
    by_id = re.fullmatch(r"(?:sha256:)?([a-f0-9]+)", name)
    if by_id and image_id.split(":", 1)[1].startswith(by_id.group(1)) \
            and images.store.tagged(_safe_tag(name)) != image_id:
        return []                                   # named by id: no tags
    named = parse_normalized(name)
    if named.digest:
        return []
    if named.tag:
        return [named]
    out = []
    for r in images.store.tags_of(image_id):
        p = parse(r)
        if p.domain == named.domain and p.path == named.path:
            out.append(p)
    return out


def _safe_tag(name: str) -> str:
    try:
        return str(parse_normalized(name).with_default_tag())
    except Exception:
        return ""


def write(layer_store, entries: list[_Entry], out: BinaryIO) -> None:
    """Stream the archive to `out` (a pipe: written in order, never sought)."""
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
    written: set[str] = set()

    def add_bytes(name: str, data: bytes, mtime: int = 0) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = len(data), 0o444, mtime
        tf.addfile(ti, io.BytesIO(data))

    def add_dir(name: str) -> None:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(ti)

    add_dir("blobs")
    add_dir("blobs/sha256")
    index, manifest_json, repositories = [], [], {}
    for e in entries:
        layer_descs = []
        for diff_id, chain in e.layers:
            hexd = diff_id.split(":", 1)[1]
            f, size = layer_store.open_tar(chain)
            with f:
                if hexd not in written:
                    written.add(hexd)
                    ti = tarfile.TarInfo(f"blobs/sha256/{hexd}")
                    ti.size, ti.mode, ti.mtime = size, 0o444, e.created
                    tf.addfile(ti, f)
            layer_descs.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": size})
        cfg_hex = e.image_id.split(":", 1)[1]
        if cfg_hex not in written:
            written.add(cfg_hex)
            add_bytes(f"blobs/sha256/{cfg_hex}", e.config, e.created)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": e.image_id, "size": len(e.config)},
            "layers": layer_descs,
        }, separators=(",", ":")).encode()
        m_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        if m_digest.split(":")[1] not in written:
            written.add(m_digest.split(":")[1])
            add_bytes(f"blobs/sha256/{m_digest.split(':')[1]}", manifest, e.created)
        desc = {"mediaType": OCI_MANIFEST, "digest": m_digest, "size": len(manifest)}
        for ref in e.refs or [None]:
            d = dict(desc)
            if ref is not None:
                d["annotations"] = {"io.containerd.image.name": str(ref),
                                    "org.opencontainers.image.ref.name": ref.tag or ""}
            index.append(d)
        manifest_json.append({
            "Config": f"blobs/sha256/{cfg_hex}",
            "RepoTags": [r.familiar() for r in e.refs] or None,
            "Layers": [f"blobs/sha256/{d.split(':', 1)[1]}" for d, _ in e.layers],
        })
        if e.layers:
            top = e.layers[-1][0].split(":", 1)[1]
            for r in e.refs:
                repositories.setdefault(r.familiar_name, {})[r.tag] = top
    add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                        "manifests": index}, separators=(",", ":")).encode())
    add_bytes("manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())
    add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    if repositories:
        add_bytes("repositories", json.dumps(repositories, separators=(",", ":")).encode())
    tf.close()

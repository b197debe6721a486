"""Tar builders shared by the image tests (this module holds no tests).

Everything is built in memory or under tmp_path: layer tars entry by entry,
a busybox rootfs from the host's static /bin/busybox, `docker save`
tarballs (old `<id>/layer.tar` and new `blobs/sha256/` layouts) and OCI
image layout archives.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

BUSYBOX = "/bin/busybox"
MTIME = 1_600_000_000


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entry(name: str, kind: str = "file", data: bytes = b"", mode: int | None = None,
          uid: int = 0, gid: int = 0, mtime: float = MTIME, linkname: str = "",
          xattrs: dict[str, str] | None = None, dev: tuple[int, int] = (0, 0)):
    """One archive member: (TarInfo, data or None)."""
    ti = tarfile.TarInfo(name)
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
               "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
               "fifo": tarfile.FIFOTYPE}[kind]
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid, ti.mtime, ti.linkname = uid, gid, mtime, linkname
    ti.devmajor, ti.devminor = dev
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    if kind == "file":
        ti.size = len(data)
        return ti, data
    return ti, None


def make_tar(entries, compress: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    if compress == "gz":
        return gzip.compress(raw)
    if compress == "bz2":
        import bz2
        return bz2.compress(raw)
    if compress == "xz":
        import lzma
        return lzma.compress(raw)
    return raw


def busybox_rootfs(extra=()) -> bytes:
    """A minimal runnable rootfs: busybox, sh -> busybox, /etc/passwd."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    passwd = b"root:x:0:0:root:/root:/bin/sh\n"
    return make_tar([
        entry("./", "dir"),
        entry("bin/", "dir"),
        entry("bin/busybox", data=bb, mode=0o755),
        entry("bin/sh", "symlink", linkname="busybox"),
        entry("etc/", "dir"),
        entry("etc/passwd", data=passwd),
        entry("tmp/", "dir", mode=0o1777),
        *extra,
    ])


def image_config(diff_ids: list[str], config: dict | None = None, created="2024-01-02T03:04:05.123456789Z",
                 **extra) -> bytes:
    doc = {"architecture": "amd64", "config": config or {}, "created": created, "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": created, "created_by": f"step {i}"} for i in range(len(diff_ids))]}
    doc.update(extra)
    return json.dumps(doc).encode()


def docker_save(images, layout: str = "legacy", repositories: bool = False,
                gzip_layers: bool = False) -> bytes:
    """images: [(layer tars (plain bytes), config dict, repo tags)].
    layout "legacy": <v1id>/layer.tar (Docker < 25); "blobs": blobs/sha256/
    with <v1id>/layer.tar symlinks to them (Docker 25+)."""
    members, manifest, repos, seen = [], [], {}, set()

    def add(name, data):
        if name not in seen:
            seen.add(name)
            members.append(entry(name, data=data))

    for layers, config, tags in images:
        diff_ids = [sha256(l) for l in layers]
        cfg = image_config(diff_ids, config)
        cfg_name = (sha256(cfg)[7:] + ".json") if layout == "legacy" else "blobs/sha256/" + sha256(cfg)[7:]
        add(cfg_name, cfg)
        paths = []
        for layer in layers:
            blob = gzip.compress(layer) if gzip_layers else layer
            v1 = hashlib.sha256(b"v1" + layer).hexdigest()
            if layout == "legacy":
                add(f"{v1}/layer.tar", blob)
                paths.append(f"{v1}/layer.tar")
            else:
                add("blobs/sha256/" + sha256(blob)[7:], blob)
                if f"{v1}/layer.tar" not in seen:
                    seen.add(f"{v1}/layer.tar")
                    members.append(entry(f"{v1}/layer.tar", "symlink",
                                         linkname="../blobs/sha256/" + sha256(blob)[7:]))
                paths.append(f"{v1}/layer.tar")
        manifest.append({"Config": cfg_name, "RepoTags": None if repositories else tags, "Layers": paths})
        for t in tags:
            repo, _, tag = t.rpartition(":")
            repos.setdefault(repo, {})[tag] = paths[-1].split("/")[0]
    members.append(entry("manifest.json", data=json.dumps(manifest).encode()))
    if repositories:
        members.append(entry("repositories", data=json.dumps(repos).encode()))
    return make_tar(members)


def oci_layout(layers: list[bytes], config: dict | None = None, name: str | None = None,
               nested_index: bool = False) -> bytes:
    """An OCI image layout archive holding one image (gzip layers)."""
    members = [entry("oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}')]

    def blob(data):
        members.append(entry("blobs/sha256/" + sha256(data)[7:], data=data))
        return {"digest": sha256(data), "size": len(data)}

    cfg = image_config([sha256(l) for l in layers], config)
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       **blob(gzip.compress(l))} for l in layers]}
    desc = {"mediaType": man["mediaType"], **blob(json.dumps(man).encode()),
            "platform": {"os": "linux", "architecture": "amd64"}}
    if nested_index:
        attest = {"mediaType": man["mediaType"], **blob(b'{"layers":[]}'),
                  "platform": {"os": "unknown", "architecture": "unknown"}}
        inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [attest, desc]}
        desc = {"mediaType": inner["mediaType"], **blob(json.dumps(inner).encode())}
    if name:
        desc["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"}
    index = {"schemaVersion": 2, "manifests": [desc]}
    members.append(entry("index.json", data=json.dumps(index).encode()))
    return make_tar(members), sha256(cfg)

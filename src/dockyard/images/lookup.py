"""Finding images: by id, id prefix, name[:tag] or digest, and what the
daemon reads of one (its config defaults, its overlay lower dirs). Reads
only, no lock: every change records an image in one transaction."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

from ..errors import NoSuchImage
from .distribution import DistributionStore
from .layers import LayerStore
from .reference import parse, parse_normalized
from .store import ImageStore

_FULL_ID = re.compile(r"^(?:sha256:)?([a-f0-9]{64})$")
_HEX_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]+)$")
_OTHER_DIGEST = re.compile(r"^(?:sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$")   # valid, never an image id

# The image config's "config" object as the daemon sees it: every key
# present, Docker's zero value when the image does not set it.
CONFIG_DEFAULTS: dict = {
    "User": "", "ExposedPorts": None, "Env": None, "Cmd": None, "Healthcheck": None,
    "ArgsEscaped": False, "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None, "StopSignal": "", "Shell": None,
}


def short_id(image_or_container_id: str) -> str:
    """stringid.TruncateID: no algorithm prefix, 12 hex digits."""
    return image_or_container_id.split(":", 1)[-1][:12]


def is_full_id(ref: str) -> bool:
    """`<64 hex>` or `sha256:<64 hex>`."""
    return _FULL_ID.match(ref) is not None


@dataclass(frozen=True)
class Image:
    id: str                 # "sha256:<64 hex>"
    config: dict            # the whole image config document
    created_ns: int
    size: int
    last_tag_time: str | None

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def labels(self) -> dict:
        return (self.config.get("config") or {}).get("Labels") or {}

    @classmethod
    def from_row(cls, row) -> "Image":
        return cls(row.id, json.loads(row.config), row.created_ns, row.size, row.last_tag_time)


class ImageLookup:
    def __init__(self, store: ImageStore, dist: DistributionStore, layers: LayerStore):
        self.store = store
        self.dist = dist
        self.layers = layers

    def resolve(self, ref: str) -> Image:
        """By id, `sha256:<id>`, unique id prefix, or name[:tag] (moby's
        GetImage order: a tag wins over an id prefix). NoSuchImage if none;
        InvalidParameter for a malformed reference."""
        m = _FULL_ID.match(ref)
        if m:
            img = self.get("sha256:" + m.group(1))
            if img is None:
                raise NoSuchImage(ref)
            return img
        if _OTHER_DIGEST.match(ref):
            raise NoSuchImage(ref)
        named = parse_normalized(ref)
        if named.digest is not None:
            image_id = self.dist.by_digest(f"{named.name}@{named.digest}")
            img = self.get(image_id) if image_id else None
            if img is not None:
                return img
        if named.digest is None:
            image_id = self.store.tagged(str(named.with_default_tag()))
            if image_id:
                img = self.get(image_id)
                if img is not None:
                    return img
        m = _HEX_PREFIX.match(ref)
        if m:
            ids = self.store.ids_with_prefix(m.group(1))
            if len(ids) == 1:      # ambiguous is "No such image" too, as in Docker
                img = self.get(ids[0])
                if img is not None:
                    return img
        raise NoSuchImage(named.with_default_tag().familiar())

    def get(self, image_id: str, include_removed: bool = False) -> Image | None:
        row = self.store.get(image_id, include_removed)
        return Image.from_row(row) if row is not None else None

    def all(self) -> list[Image]:
        return [Image.from_row(r) for r in self.store.all()]

    def by_id(self, image_id: str) -> Image:
        """For the daemon's own calls with a container's image id: a removed
        image that containers still use is found too."""
        img = self.get(image_id, include_removed=True) if image_id.startswith("sha256:") else None
        return img if img is not None else self.resolve(image_id)

    def config(self, image_id: str) -> dict:
        """The image's container defaults (Env, Cmd, Entrypoint, WorkingDir,
        User, ExposedPorts, Volumes, Labels, StopSignal, Healthcheck, ...),
        every key present."""
        cfg = self.by_id(image_id).config.get("config") or {}
        return {k: copy.deepcopy(cfg.get(k, default)) for k, default in CONFIG_DEFAULTS.items()}

    def lower_dirs(self, image_id: str) -> list[str]:
        """Unpacked layer dirs, topmost first, for overlay `lowerdir=`. An
        image without layers gets one empty dir (overlay needs a lower)."""
        img = self.by_id(image_id)
        dirs = [self.layers.diff_dir(c) for c in reversed(self.store.chain_ids(img.id))]
        return dirs or [self.layers.empty_dir]

    def repo_tags(self, image_id: str) -> list[str]:
        return [parse(r).familiar() for r in self.store.tags_of(image_id)]

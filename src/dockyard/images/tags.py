"""`docker tag`: another name for an image."""
from __future__ import annotations

import threading

from ..errors import InvalidParameter, NoSuchImage
from ..store.db import Database
from .lookup import Image, ImageLookup
from .reference import Reference
from .reference import repo_tag as parse_repo_tag
from .store import ImageStore
from .times import format_ns, now_ns


def add_tag(db: Database, lookup: ImageLookup, lock: threading.RLock, ref: str, repo: str,
        tag: str | None = None) -> tuple[Image, Reference]:
    """POST /images/{name}/tag: returns the image and its new reference."""
    img = lookup.resolve(ref)
    if not repo:
        raise InvalidParameter("repository name must have at least one component")
    new = parse_repo_tag(repo, tag)
    if new.familiar_name == "sha256":
        raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
    with lock, db.transaction() as conn:
        if not conn.execute("SELECT 1 FROM images WHERE id=?", (img.id,)).fetchone():
            raise NoSuchImage(ref)
        ImageStore.set_tag(conn, str(new), img.id, format_ns(now_ns()))
    return img, new

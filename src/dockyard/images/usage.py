"""Disk use of image layers, for `GET /system/df`: the bytes of every
unpacked layer once, and per image the bytes it shares with other images."""
from __future__ import annotations

from collections import Counter


def layer_usage(db) -> tuple[int, dict[str, int]]:
    """(LayersSize, {image id: SharedSize})."""
    sizes = {r["chain_id"]: r["size"] for r in db.query("SELECT chain_id, size FROM unpacked_layers")}
    rows = db.query("SELECT il.image_id, il.chain_id FROM image_layers il "
                    "JOIN images i ON i.id = il.image_id WHERE i.removed = 0")
    users = Counter(r["chain_id"] for r in rows)
    shared: dict[str, int] = {}
    for r in rows:
        shared.setdefault(r["image_id"], 0)
        if users[r["chain_id"]] > 1:
            shared[r["image_id"]] += sizes.get(r["chain_id"], 0)
    return sum(sizes.values()), shared

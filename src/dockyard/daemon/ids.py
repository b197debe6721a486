"""Container IDs: 64 hex chars whose 12-char short form is not all digits
(an all-digit short ID would be taken for a number by tools that parse it)."""
from __future__ import annotations

import os


def new_id() -> str:
    while True:
        cid = os.urandom(32).hex()
        if not cid[:12].isdigit():
            return cid


def short(cid: str) -> str:
    return cid.removeprefix("sha256:")[:12]

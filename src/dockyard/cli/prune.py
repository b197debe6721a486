"""What the prune commands (container, image, network, volume, system)
share: docker's confirmation prompt and docker's report."""
from __future__ import annotations

import sys


def confirm(warning: str) -> bool:
    """Ask `warning` + docker's question; True when the user says yes."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def print_deleted(cli, kind: str, lines: list[str]) -> None:
    """`Deleted Volumes:`, one line each, a blank line; nothing if none."""
    if lines:
        cli.out(f"Deleted {kind}:\n" + "\n".join(lines) + "\n")


def image_lines(deleted: list[dict]) -> list[str]:
    """/images/prune's ImagesDeleted as docker prints them."""
    return [f"{key.lower()}: {item[key]}" for item in deleted for key in ("Untagged", "Deleted")
            if item.get(key)]


def print_reclaimed(cli, space: int | None) -> None:
    from .formatting import human_size
    cli.out(f"Total reclaimed space: {human_size(space or 0, 4)}")

"""A container's or exec's pseudo-terminal size, set through conmon's ctl
fifo in its bundle dir: conmon reads "1 <height> <width>\\n" and applies it
to the pty master (TIOCSWINSZ), and the kernel sends SIGWINCH."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from ..errors import Conflict

if TYPE_CHECKING:
    from .container import Container
    from .paths import ContainerPaths

RESIZE = 1


class _Daemon(Protocol):
    def paths(self, c: Container) -> ContainerPaths: ...
    def event(self, c: Container, action: str, **extra) -> None: ...


def write_ctl(bundle: str, h: int, w: int) -> bool:
    """False when no conmon listens (it is exiting)."""
    try:
        fd = os.open(os.path.join(bundle, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        os.write(fd, f"{RESIZE} {max(0, min(h, 1000))} {max(0, min(w, 1000))}\n".encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def resize_container(daemon: _Daemon, c, h: int, w: int) -> None:
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if not c.tty:
        return   # Docker: a no-op for a container without a TTY
    write_ctl(daemon.paths(c).bundle, h, w)
    daemon.event(c, "resize", height=h, width=w)

"""The stream pumps between our terminal and a container, and what goes
around them: one copy for `attach`, `run` (-a/-i), `start -a` and `exec`.

- `pump_stdin`: our stdin into the hijacked socket, half-closing it at
  EOF so the container sees its stdin end (StdinOnce). The detach keys
  travel in the bytes: the daemon watches for them.
- `pump_output`: the stream to our stdout/stderr; demultiplexed with
  stdcopy's 8-byte frames unless the container has a TTY.
- `session`: both pumps plus, on a TTY, raw mode and resize forwarding,
  and without one the signal proxy (docker's --sig-proxy).

Signals go through `_signal`, the C module under `signal` (same functions,
without the enums: `enum` costs every `dockyard run` ~2 ms), and no
contextlib (functools, collections): this is on every run's path.
"""
from __future__ import annotations

import _signal
import os
import sys

from . import stdcopy

_PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
_SIGNAL_NAMES = {getattr(_signal, name): name for name in _PROXIED}


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def terminal_size() -> tuple[int, int]:
    """(rows, columns) of our terminal, or (0, 0) when not on one."""
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
        return size.lines, size.columns
    except OSError:
        return 0, 0


def pump_stdin(sock) -> None:
    """Copy our stdin into the stream; half-close at EOF (StdinOnce)."""
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            sock.sendall(data)
        half_close(sock)
    except OSError:
        pass


def half_close(sock) -> None:
    """End our write side. On a TLS socket this is the TCP socket's own
    shutdown: ssl.SSLSocket.shutdown drops the TLS layer, and the daemon's
    output that follows could no longer be read; dockyardd takes the FIN
    as stdin's end and keeps writing. (`_socket.socket` is the base of every
    socket class, and the unix sockets' own class.)"""
    import _socket
    _socket.socket.shutdown(sock, _socket.SHUT_WR)


def socket_chunks(sock, leftover: bytes = b""):
    """What the socket brings until the far end closes it (or it breaks);
    `leftover` is what was read past the HTTP head."""
    if leftover:
        yield leftover
    while True:
        try:
            data = sock.recv(65536)
        except OSError:   # reset, or closed under us
            return
        if not data:
            return
        yield data


def pump_output(chunks, framed: bool) -> None:
    """Write a stream to our stdout and stderr; `framed` streams carry
    stdcopy's 8-byte headers (raises stdcopy.StreamError on a bad one)."""
    if framed:
        stdcopy.copy(chunks, lambda b: write_all(1, b), lambda b: write_all(2, b))
    else:
        for data in chunks:
            write_all(1, data)


class RawTerminal:
    """Raw mode while a TTY session runs (keys go to the container);
    TCSANOW, not tty.setraw's default TCSAFLUSH, so keys typed while we
    connected are not thrown away."""

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        import termios
        import tty
        self.saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


class ResizeForwarder:
    """Forward terminal resizes (SIGWINCH) while a TTY session runs."""

    def __init__(self, resize):
        self.resize = resize
        self.previous = None

    def __enter__(self):
        self.previous = _signal.signal(_signal.SIGWINCH, self._on)
        return self

    def _on(self, *_: object) -> None:
        resize_quietly(self.resize)

    def __exit__(self, *exc: object) -> None:
        _signal.signal(_signal.SIGWINCH, self.previous)


def resize_quietly(resize) -> None:
    """Tell the container our terminal's size, if we are on one; a resize
    failure is cosmetic."""
    rows, cols = terminal_size()
    if rows:
        try:
            resize(rows, cols)
        except Exception:  # noqa: BLE001
            pass


class SignalProxy:
    """Forward signals to the container via POST /kill; a third SIGINT/TERM exits."""

    def __init__(self, client, container_id: str, err):
        self.client = client
        self.container_id = container_id
        self.err = err
        self.previous: dict[int, object] = {}
        self.count = 0

    def __enter__(self):
        for name in _PROXIED:
            signum = getattr(_signal, name)
            self.previous[signum] = _signal.signal(signum, self._forward)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            _signal.signal(signum, handler)

    def _forward(self, signum: int, frame: object) -> None:
        if signum in (_signal.SIGINT, _signal.SIGTERM):
            self.count += 1
            if self.count >= 3:
                self.err("got 3 SIGTERM/SIGINTs, forcefully exiting")
                os._exit(130)
        name = _SIGNAL_NAMES[signum]
        try:
            self.client.call("POST", f"/containers/{self.container_id}/kill",
                             {"signal": name}).close()
        except Exception as error:  # noqa: BLE001 — a lost forward must not kill the stream
            self.err(f"error forwarding signal {name}: {error}")


def session(cli, sock, leftover: bytes, *, tty: bool, stdin: bool, resize=None,
            signal_proxy: SignalProxy | None = None) -> None:
    """Pump a hijacked stream until the far end closes it.

    `resize(rows, cols)` sizes the container's TTY: once now, then on
    every SIGWINCH. `signal_proxy` is entered only without a TTY (with
    one, ^C travels as a byte). A daemon-side stream error is printed."""
    if tty and resize is not None:
        resize_quietly(resize)
    if stdin:
        import threading
        threading.Thread(target=pump_stdin, args=(sock,), daemon=True).start()
    entered = []    # contextlib.ExitStack's job, without importing contextlib
    try:
        for ctx, wanted in ((RawTerminal(0), tty and stdin and os.isatty(0)),
                            (ResizeForwarder(resize), tty and resize is not None),
                            (signal_proxy, signal_proxy is not None and not tty)):
            if wanted:
                ctx.__enter__()
                entered.append(ctx)
        try:
            pump_output(socket_chunks(sock, leftover), framed=not tty)
        except stdcopy.StreamError as error:
            cli.err(f"Error: {error}")
    finally:
        for ctx in reversed(entered):
            ctx.__exit__(None, None, None)

"""Attach to a container, start it, stream its output, return its exit code.

The order is docker's (`run` and `start -a`): hijack the attach stream
first, then send `wait` and read its head, then start — so neither early
output nor a fast exit is missed. Output is demultiplexed unless the
container has a TTY. Signals we receive are forwarded to the container
(docker's --sig-proxy) when there is no TTY to carry them.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

from . import stdcopy

_PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def wait_exit_code(result: object, err) -> int:
    """Exit status from wait's body; docker exits 125 when waiting failed."""
    if not isinstance(result, dict):
        err("Error waiting for container: no exit status received")
        return 125
    error = result.get("Error") or {}
    message = error.get("Message") if isinstance(error, dict) else str(error)
    if message:
        err(f"Error waiting for container: {message}")
        return 125
    return int(result.get("StatusCode", 0))


class _SignalProxy:
    """Forward signals to the container via POST /kill; a third SIGINT/TERM exits."""

    def __init__(self, client, container_id: str, err):
        self.client = client
        self.container_id = container_id
        self.err = err
        self.previous: dict[int, object] = {}
        self.count = 0

    def __enter__(self) -> "_SignalProxy":
        for name in _PROXIED:
            signum = getattr(signal, name)
            self.previous[signum] = signal.signal(signum, self._forward)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _forward(self, signum: int, frame: object) -> None:
        if signum in (signal.SIGINT, signal.SIGTERM):
            self.count += 1
            if self.count >= 3:
                self.err("got 3 SIGTERM/SIGINTs, forcefully exiting")
                os._exit(130)
        name = signal.Signals(signum).name
        try:
            self.client.call("POST", f"/containers/{self.container_id}/kill",
                             {"signal": name}).close()
        except Exception as error:  # noqa: BLE001 — a lost forward must not kill the stream
            self.err(f"error forwarding signal {name}: {error}")


class _RawTerminal:
    """Put our terminal in raw mode while a TTY session runs (keys go to the container)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def __enter__(self) -> "_RawTerminal":
        import termios
        import tty
        self.saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def _pump_stdin(sock) -> None:
    """Copy our stdin into the attach socket; half-close at EOF (StdinOnce)."""
    import socket as socket_module
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            sock.sendall(data)
        sock.shutdown(socket_module.SHUT_WR)
    except OSError:
        pass


def _pump_output(sock, leftover: bytes, tty: bool) -> None:
    def chunks():
        if leftover:
            yield leftover
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                return
            if not data:
                return
            yield data
    if tty:
        for data in chunks():
            write_all(1, data)
    else:
        stdcopy.copy(chunks(), lambda b: write_all(1, b), lambda b: write_all(2, b))


def terminal_size() -> tuple[int, int]:
    """(rows, columns) of our terminal, or (0, 0) when not on one."""
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
        return size.lines, size.columns
    except OSError:
        return 0, 0


def attach_start_wait(cli, container_id: str, *, tty: bool, stdin: bool, auto_remove: bool,
                      sig_proxy: bool, start) -> int:
    """Run a container in the foreground; returns its exit status.

    `start()` starts it (raising DaemonError); its errors propagate after
    the streams are closed, so callers choose the exit code."""
    client = cli.client
    query = {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1, "stderr": 1}
    sock, leftover, _ = client.hijack(f"/containers/{container_id}/attach", query)
    waiter = None
    try:
        condition = "removed" if auto_remove else "next-exit"
        waiter = client.call("POST", f"/containers/{container_id}/wait", {"condition": condition})
        start()
        if tty:
            rows, cols = terminal_size()
            if rows:
                try:
                    client.call("POST", f"/containers/{container_id}/resize",
                                {"h": rows, "w": cols}).close()
                except Exception:  # noqa: BLE001 — a resize failure is cosmetic
                    pass
        if stdin:
            import threading
            threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
        with contextlib.ExitStack() as stack:
            if tty and stdin and os.isatty(0):
                stack.enter_context(_RawTerminal(0))
            if sig_proxy and not tty:
                stack.enter_context(_SignalProxy(client, container_id, cli.err))
            try:
                _pump_output(sock, leftover, tty)
            except stdcopy.StreamError as error:
                cli.err(f"Error: {error}")
        sock.close()
        return wait_exit_code(waiter.json(), cli.err)
    finally:
        sock.close()
        if waiter is not None:
            waiter.close()

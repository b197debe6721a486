"""Docker's stream framing and the pump between a hijacked client and
conmon's attach socket.

Without a TTY, every chunk is framed: [stream type, 0, 0, 0, uint32 BE
length] + payload (stdin 0, stdout 1, stderr 2). With a TTY the bytes go
raw."""
from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
STDOUT, STDERR = 1, 2


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def content_type(tty: bool, api_version_ge_142: bool) -> str:
    # API < 1.42 always said raw-stream, even when multiplexing
    if tty or not api_version_ge_142:
        return RAW
    return MULTIPLEXED


async def wait_client_read_head(writer: asyncio.StreamWriter, cap: float = 0.05) -> None:
    """docker-py drops bytes that arrive with the 101 (upstream PR #3438):
    wait until the kernel says the client has read what we sent."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap
    buf = bytearray(4)
    while loop.time() < deadline:
        try:
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
        except (OSError, ValueError):     # ValueError: no fd (a TLS transport's view of it)
            return
        if struct.unpack("i", buf)[0] == 0:
            return
        await asyncio.sleep(0.001)


async def pump_attach(sock: socket.socket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                      tty: bool, want_stdout: bool, want_stderr: bool, want_stdin: bool,
                      detach_keys: bytes = b"\x10\x11", close_stdin: bool = False,
                      raw: bool | None = None) -> bool:
    """Copy conmon → client (framed unless raw, which defaults to tty) and
    client → conmon (stdin) until the container's output ends or the client
    goes away. Returns True when the client detached with the detach keys
    (looked for when the process has a TTY, as moby does). With close_stdin,
    the client's half-close is passed on (conmon then closes the process's
    stdin, unless it was told to leave it open)."""
    loop = asyncio.get_running_loop()
    raw = tty if raw is None else raw

    async def out() -> None:
        while True:
            pkt = await loop.sock_recv(sock, 65536)
            if not pkt:
                return
            kind, data = pkt[0], pkt[1:]
            if not data:
                continue
            if kind == 2 and want_stdout:
                writer.write(data if raw else frame(STDOUT, data))
            elif kind == 3 and want_stderr:
                writer.write(data if raw else frame(STDERR, data))
            else:
                continue
            await writer.drain()

    async def inp() -> None:
        held = b""
        while True:
            data = await reader.read(32768)
            if not data:
                if close_stdin:
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return  # half-close: stdin EOF; keep streaming output
            if tty and detach_keys:
                data = held + data
                if detach_keys in data:
                    before = data.split(detach_keys, 1)[0]
                    if before:
                        await loop.sock_sendall(sock, before)
                    raise _Detached()
                held = b""
                if data[-1:] == detach_keys[:1]:
                    held, data = data[-1:], data[:-1]
            if data:
                await loop.sock_sendall(sock, data)

    out_task = asyncio.ensure_future(out())
    in_task = asyncio.ensure_future(inp()) if want_stdin else None
    try:
        if in_task is None:
            await out_task
        else:
            done, _ = await asyncio.wait({out_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
            if in_task in done and in_task.exception() is None:
                await out_task     # stdin closed: drain the output until the end
            elif in_task in done:
                in_task.result()   # detach or client error
    except _Detached:
        return True
    except ConnectionError:
        pass
    finally:
        for t in (out_task, in_task):
            if t is not None and not t.done():
                t.cancel()
        sock.close()
    return False


def parse_detach_keys(spec: str) -> bytes:
    """Docker's --detach-keys: comma-separated `ctrl-<x>` or single chars."""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            ch = key[5]
            if ch == "@":
                out.append(0)
            elif ch.isalpha():
                out.append(ord(ch.lower()) - ord("a") + 1)
            elif ch in "[\\]^_":
                out.append(ord(ch) - 64)
            else:
                raise ValueError(f"Unknown character: '{ch}'")
        elif len(key) == 1:
            out += key.encode()
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)


class _Detached(Exception):
    pass

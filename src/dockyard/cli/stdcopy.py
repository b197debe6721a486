"""Docker's multiplexed stream framing (moby's `pkg/stdcopy`).

Without a TTY, attach/logs/exec carry stdout and stderr over one byte
stream; each payload is prefixed by an 8-byte header:

    [stream type: 1 byte][0, 0, 0][payload length: big-endian uint32]

Stream types: 0 stdin, 1 stdout, 2 stderr, 3 systemerr (a daemon-side
error message, which ends the stream). Pure functions and an incremental
decoder, no I/O, so the daemon can reuse it to encode.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:     # annotations only: collections costs the CLI's start time
    from collections.abc import Callable, Iterable

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER_LEN = 8
MAX_FRAME = 0xFFFFFFFF

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


class StreamError(Exception):
    """A malformed stream, or a systemerr frame sent by the daemon."""


def header(stream: int, length: int) -> bytes:
    if not 0 <= stream <= SYSTEMERR:
        raise ValueError(f"invalid stream type {stream}")
    if not 0 <= length <= MAX_FRAME:
        raise ValueError(f"frame too large: {length} bytes")
    return bytes((stream, 0, 0, 0)) + length.to_bytes(4, "big")


def encode(stream: int, data: bytes) -> bytes:
    """One payload as frame(s); payloads over 4 GiB are split."""
    if len(data) <= MAX_FRAME:
        return header(stream, len(data)) + data
    return b"".join(header(stream, len(data[i:i + MAX_FRAME])) + data[i:i + MAX_FRAME]
                    for i in range(0, len(data), MAX_FRAME))


class Demuxer:
    """Incremental decoder: `feed()` bytes as they arrive, get whole frames.

    Frames split across reads are held until complete, so callers can feed
    whatever `recv()` returned."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= HEADER_LEN:
            stream = buf[pos]
            if stream > SYSTEMERR:
                raise StreamError(f"Unrecognized input header: {stream}")
            length = int.from_bytes(buf[pos + 4:pos + 8], "big")
            end = pos + HEADER_LEN + length
            if len(buf) < end:
                break
            frames.append((stream, bytes(buf[pos + HEADER_LEN:end])))
            pos = end
        del buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buf)


def decode(data: bytes) -> list[tuple[int, bytes]]:
    """A complete framed buffer → [(stream, payload)]."""
    demuxer = Demuxer()
    frames = demuxer.feed(data)
    if demuxer.pending:
        raise StreamError(f"truncated frame: {demuxer.pending} bytes left over")
    return frames


def copy(chunks: Iterable[bytes], stdout: Callable[[bytes], object],
         stderr: Callable[[bytes], object]) -> None:
    """Demultiplex a framed byte stream to two writers (moby's StdCopy).

    A systemerr frame raises StreamError with the daemon's message."""
    demuxer = Demuxer()
    for chunk in chunks:
        for stream, payload in demuxer.feed(chunk):
            if stream == SYSTEMERR:
                raise StreamError(payload.decode(errors="replace"))
            if stream == STDERR:
                stderr(payload)
            else:  # stdout (stdin frames never come back; treat as stdout)
                stdout(payload)

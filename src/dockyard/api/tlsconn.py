"""TLS for the API's TCP listeners, with half-close.

Why not asyncio's own TLS (start_server(ssl=...)): it shuts the whole
connection down when the peer sends close_notify. The docker CLI sends one
whenever it closes its write side of a hijacked stream (Go's
tls.Conn.CloseWrite: `docker run` without -i, `docker run -i` at stdin's
end) and then reads the container's output on the same connection, as on
a unix socket. So the TLS records are handled here, in the event loop,
with an ssl.SSLObject over memory BIOs: close_notify from the client is a
read-side EOF only, and the reply keeps flowing until the handler closes
(then our own close_notify goes out).

The API server sees an ordinary (StreamReader, StreamWriter) pair: the
app-side transport below is what its StreamWriter writes to.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, Callable

log = logging.getLogger("dockyard.api.tls")

_READ = 65536


class _AppTransport(asyncio.Transport):
    """What the handler's StreamWriter writes to: plaintext in, records out."""

    def __init__(self, conn: "TLSServerProtocol"):
        super().__init__()
        self._conn = conn
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or not data:
            return
        self._conn.send(bytes(data))

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._conn.send_close_notify()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()

    def abort(self) -> None:
        self._closed = True
        self._conn.abort()

    def is_closing(self) -> bool:
        return self._closed or self._conn.raw is None or self._conn.raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return None            # the raw socket carries records, not what the handler wrote
        if name == "ssl_object":
            return self._conn.obj
        if name == "peercert":
            return self._conn.obj.getpeercert() if self._conn.obj else default
        raw = self._conn.raw
        return raw.get_extra_info(name, default) if raw is not None else default

    def pause_reading(self) -> None:
        if self._conn.raw is not None:
            self._conn.raw.pause_reading()

    def resume_reading(self) -> None:
        if self._conn.raw is not None:
            self._conn.raw.resume_reading()

    def is_reading(self) -> bool:
        return self._conn.raw is not None and self._conn.raw.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._conn.raw.get_write_buffer_size() if self._conn.raw is not None else 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._conn.raw is not None:
            self._conn.raw.set_write_buffer_limits(high, low)


class TLSServerProtocol(asyncio.Protocol):
    """One TLS connection: handshake, then records <-> an app protocol
    (asyncio.StreamReaderProtocol around the API server's handler)."""

    def __init__(self, ctx: ssl.SSLContext, app_factory: Callable[[], asyncio.Protocol],
                 handshake_timeout: float = 30.0):
        self.ctx = ctx
        self.app_factory = app_factory
        self.handshake_timeout = handshake_timeout
        self.raw: asyncio.Transport | None = None
        self.obj: ssl.SSLObject | None = None
        self.app: asyncio.Protocol | None = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._handshaking = True
        self._timer: asyncio.TimerHandle | None = None
        self._eof_sent = False
        self._app_eof = False

    # -- raw side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = transport  # type: ignore[assignment]
        self.obj = self.ctx.wrap_bio(self._in, self._out, server_side=True)
        self._timer = asyncio.get_running_loop().call_later(self.handshake_timeout, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        if self._handshaking:
            log.debug("TLS handshake with %s timed out", self._peer())
            self.abort()

    def _peer(self) -> Any:
        return self.raw.get_extra_info("peername") if self.raw is not None else None

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if self._handshaking:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return
            except (ssl.SSLError, OSError) as e:
                # a client without an acceptable certificate ends here, before any request
                log.info("TLS handshake with %s refused: %s", self._peer(), e)
                self._flush()
                self.abort()
                return
            self._handshaking = False
            if self._timer is not None:
                self._timer.cancel()
            self._flush()
            self.app = self.app_factory()
            self.app.connection_made(_AppTransport(self))
        self._pump_reads()

    def _pump_reads(self) -> None:
        chunks = []
        eof = False
        while True:
            try:
                chunk = self.obj.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:      # close_notify: the client's write side ended
                eof = True
                break
            except (ssl.SSLError, OSError) as e:
                log.debug("TLS read from %s: %s", self._peer(), e)
                self.abort()
                return
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        self._flush()          # TLS 1.3 may answer (key updates) while reading
        if chunks and self.app is not None:
            self.app.data_received(b"".join(chunks))
        if eof:
            self._eof_to_app()

    def _eof_to_app(self) -> None:
        if self.app is not None and not self._app_eof:
            self._app_eof = True
            self.app.eof_received()

    def eof_received(self) -> bool:
        # TCP FIN without close_notify: a read-side EOF too; keep writing
        if self._handshaking:
            return False
        self._eof_to_app()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.app is not None:
            app, self.app = self.app, None
            app.connection_lost(exc)
        self.raw = None

    def pause_writing(self) -> None:
        if self.app is not None:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.app is not None:
            self.app.resume_writing()

    # -- app side
    def send(self, data: bytes) -> None:
        if self.raw is None or self._eof_sent:
            return
        try:
            self.obj.write(data)
        except (ssl.SSLError, OSError) as e:
            log.debug("TLS write to %s: %s", self._peer(), e)
            self.abort()
            return
        self._flush()

    def send_close_notify(self) -> None:
        if self.raw is None or self._eof_sent or self._handshaking:
            return
        self._eof_sent = True
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError, OSError):
            pass              # our close_notify is in the out BIO; theirs may never come
        self._flush()

    def close(self) -> None:
        if self.raw is None:
            return
        self.send_close_notify()
        self.raw.close()

    def abort(self) -> None:
        if self.raw is not None:
            self.raw.abort()

    def _flush(self) -> None:
        data = self._out.read()
        if data and self.raw is not None and not self.raw.is_closing():
            self.raw.write(data)

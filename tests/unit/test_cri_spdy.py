"""cri/spdy.py: SPDY/3.1 frames against byte vectors written by moby/spdystream's
own Framer (Go, the vendored copy in cri-tools: the frames client-go sends),
round trips through one connection's shared zlib context, spdystream's checks,
and the session over a socketpair."""
import socket
import struct
import threading
import zlib

import pytest

from dockyard.cri import spdy

# spdystream/spdy.Framer.WriteFrame output, one frame per line, written in this
# order through ONE framer (so the second SYN_STREAM's header block continues the
# zlib stream the first began), by a Go program around the vendored package:
#   SynStream{1, Streamtype: error}; SynStream{3, prio 2, FIN, Streamtype: stdout};
#   SynReply{1, no headers}; Data{3, "hello", FIN}; RstStream{5, Cancel}; Ping{2};
#   GoAway{7}; WindowUpdate{1, 1000}; Settings{InitialWindowSize 65536};
#   Headers{1, X: a, b}
GO_VECTORS = [
    "800300010000002a0000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a5a54945f04000000ffff",
    "800300010100001900000003000000004000c22ac5565c92925f5a02000000ffff",
    "800300020000000e000000016260606000000000ffff",
    "000000030100000568656c6c6f",
    "80030003000000080000000500000005",
    "800300060000000400000002",
    "80030007000000080000000700000000",
    "800300090000000800000001000003e8",
    "800300040000000c000000010000000700010000",
    "800300080000001a000000016260606064606060ac606060604e644802000000ffff",
]
GO_FRAMES = [
    spdy.SynStream(1, {"streamtype": ["error"]}),
    spdy.SynStream(3, {"streamtype": ["stdout"]}, priority=2, flags=spdy.FLAG_FIN),
    spdy.SynReply(1, {}),
    spdy.Data(3, b"hello", spdy.FLAG_FIN),
    spdy.RstStream(5, spdy.CANCEL),
    spdy.Ping(2),
    spdy.GoAway(7, 0),
    spdy.WindowUpdate(1, 1000),
    spdy.Settings([(0, spdy.SETTINGS_INITIAL_WINDOW_SIZE, 65536)]),
    spdy.HeadersFrame(1, {"x": ["a", "b"]}),
]


def test_dictionary_is_spdy3s():
    # the zlib DICTID every SPDY/3 header block names (78 f9 e3c6a7c2 in the vectors above)
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_decodes_spdystreams_frames():
    f = spdy.Framer()
    got = []
    for v in GO_VECTORS:
        f.feed(bytes.fromhex(v))
        got += list(f.frames())
    assert got == GO_FRAMES


def test_decodes_them_fed_byte_by_byte():
    f = spdy.Framer()
    got = []
    for b in bytes.fromhex("".join(GO_VECTORS)):
        f.feed(bytes([b]))
        got += list(f.frames())
    assert got == GO_FRAMES


def test_encodes_frames_without_headers_as_spdystream_does():
    # header blocks are deflate output (Go's and zlib's may differ byte-wise);
    # every other frame is fixed layout and must match byte for byte
    f = spdy.Framer()
    for frame, vec in zip(GO_FRAMES, GO_VECTORS):
        if isinstance(frame, (spdy.SynStream, spdy.SynReply, spdy.HeadersFrame)):
            continue
        assert f.encode(frame).hex() == vec, frame


def test_header_blocks_round_trip_through_one_zlib_stream():
    enc, dec = spdy.Framer(), spdy.Framer()
    frames = [spdy.SynStream(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}),
              spdy.SynStream(3, {"streamtype": ["data"], "port": ["8080"], "requestid": ["0"]}),
              spdy.SynReply(3, {}),
              spdy.HeadersFrame(3, {"multi": ["a", "b", ""]}, spdy.FLAG_FIN),
              spdy.SynStream(5, {"streamtype": ["data"]}, associated_to=3, priority=7, slot=1,
                             flags=spdy.FLAG_UNIDIRECTIONAL)]
    wire = [enc.encode(x) for x in frames]
    # the second identical block compresses to less: it refers back into the shared stream
    assert len(wire[1]) < len(wire[0])
    for w in wire:
        dec.feed(w)
    assert list(dec.frames()) == frames
    # a fresh decompressor cannot read a block from the middle of the stream
    fresh = spdy.Framer()
    fresh.feed(wire[1])
    with pytest.raises(spdy.SpdyError):
        list(fresh.frames())


def test_header_names_are_written_lowercase():
    f, g = spdy.Framer(), spdy.Framer()
    g.feed(f.encode(spdy.SynStream(1, {"StreamType": ["stdin"]})))
    assert next(g.frames()).headers == {"streamtype": ["stdin"]}


def _control(ftype, payload, flags=0):
    return struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload


def _compressed(block):
    c = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
    return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize("wire, why", [
    (_control(spdy.SYN_STREAM, struct.pack(">IIBB", 0, 0, 0, 0) + _compressed(struct.pack(">I", 0))),
     "stream id zero"),
    (_control(spdy.SYN_STREAM, struct.pack(">IIBB", 1, 0, 0, 0)
              + _compressed(struct.pack(">I", 1) + struct.pack(">I", 1) + b"A" + struct.pack(">I", 1) + b"v")),
     "header was not lowercased"),
    (_control(spdy.SYN_STREAM, struct.pack(">IIBB", 1, 0, 0, 0)
              + _compressed(struct.pack(">I", 2) + (struct.pack(">I", 1) + b"a" + struct.pack(">I", 0)) * 2)),
     "multiple headers with same name"),
    (_control(spdy.SYN_STREAM, struct.pack(">IIBB", 1, 0, 0, 0) + _compressed(struct.pack(">I", 1))),
     "compressed payload size"),
    (_control(spdy.SYN_STREAM, struct.pack(">IIBB", 1, 0, 0, 0) + b"not zlib at all"), "decompression"),
    (_control(spdy.PING, struct.pack(">I", 0)), "ping id zero"),
    (_control(spdy.RST_STREAM, struct.pack(">II", 1, 0)), "rst status zero"),
    (_control(spdy.GOAWAY, struct.pack(">I", 1)), "short goaway"),
    (_control(spdy.WINDOW_UPDATE, struct.pack(">II", 1, 1), flags=1), "window update with flags"),
    (_control(spdy.SETTINGS, struct.pack(">I", 5) + b"\0" * 8), "settings count past the payload"),
    (_control(5, b""), "unknown control frame type (NOOP is gone in SPDY/3)"),
    (struct.pack(">II", 0, 0), "data frame on stream 0"),
])
def test_refuses_what_spdystream_refuses(wire, why):
    f = spdy.Framer()
    f.feed(wire)
    with pytest.raises(spdy.SpdyError):
        list(f.frames())


def test_encoder_refuses_invalid_frames():
    f = spdy.Framer()
    for bad in (spdy.Data(0, b""), spdy.SynStream(0, {}), spdy.Ping(0), spdy.RstStream(1, 0),
                spdy.Data(1, b"x" * (spdy.MAX_DATA_LENGTH + 1))):
        with pytest.raises(spdy.SpdyError):
            f.encode(bad)


# ---------------------------------------------------------------- the session

class _Peer:
    """The client end of a socketpair, framing with its own Framer."""

    def __init__(self, sock):
        self.sock = sock
        self.enc = spdy.Framer()
        self.dec = spdy.Framer()
        self.pending = []

    def send(self, frame):
        self.sock.sendall(self.enc.encode(frame))

    def recv(self):
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.dec.feed(data)
            self.pending += list(self.dec.frames())
        return self.pending.pop(0)


@pytest.fixture
def session():
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    accepted = []

    def on_stream(s):
        accepted.append(s)
        return s.header("streamtype") != "refuse"
    conn = spdy.Connection(b, on_stream, server=True)
    conn.start()
    yield conn, _Peer(a), accepted
    conn.close(timeout=0.5)
    a.close()
    b.close()


def test_session_replies_streams_delivers_data_and_half_closes(session):
    conn, peer, accepted = session
    peer.send(spdy.SynStream(1, {"streamtype": ["stdin"]}))
    assert peer.recv() == spdy.SynReply(1, {})
    peer.send(spdy.Data(1, b"abc"))
    peer.send(spdy.Data(1, b"def", spdy.FLAG_FIN))
    (s,) = accepted
    got = b""
    while chunk := s.read():
        got += chunk
    assert got == b"abcdef"
    s.write(b"back")
    s.close()
    assert peer.recv() == spdy.Data(1, b"back")
    assert peer.recv() == spdy.Data(1, b"", spdy.FLAG_FIN)
    assert 1 not in conn.streams        # both sides finished: forgotten


def test_session_refuses_resets_and_answers_pings(session):
    conn, peer, accepted = session
    peer.send(spdy.SynStream(1, {"streamtype": ["refuse"]}))
    assert peer.recv() == spdy.RstStream(1, spdy.CANCEL)
    peer.send(spdy.SynStream(1, {"streamtype": ["again"]}))     # ids must increase
    assert peer.recv() == spdy.RstStream(1, spdy.PROTOCOL_ERROR)
    peer.send(spdy.SynStream(4, {"streamtype": ["x"]}))         # a client's ids are odd
    assert peer.recv() == spdy.RstStream(4, spdy.PROTOCOL_ERROR)
    peer.send(spdy.Ping(7))                                      # the client's ping: echoed
    assert peer.recv() == spdy.Ping(7)
    peer.send(spdy.Settings([(0, spdy.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)]))
    peer.send(spdy.SynStream(9, {"streamtype": ["stdout"]}))
    assert peer.recv() == spdy.SynReply(9, {})
    s = accepted[-1]
    peer.send(spdy.WindowUpdate(9, 100))
    peer.send(spdy.RstStream(9, spdy.CANCEL))
    assert s.read() == b""                                       # reset: reads end
    with pytest.raises(BrokenPipeError):
        s.write(b"x")
    assert conn.peer_initial_window == 1 << 20
    assert s.send_window == (1 << 20) + 100


def test_session_writes_large_data_without_window_updates(session):
    # spdystream sends no WINDOW_UPDATE: a writer that waited for one would stall at 64 KiB
    conn, peer, accepted = session
    peer.send(spdy.SynStream(1, {"streamtype": ["stdout"]}))
    assert peer.recv() == spdy.SynReply(1, {})
    payload = bytes(range(256)) * 1024          # 256 KiB
    t = threading.Thread(target=lambda: (accepted[0].write(payload), accepted[0].close()))
    t.start()
    got = b""
    while True:
        f = peer.recv()
        got += f.data
        if f.flags & spdy.FLAG_FIN:
            break
    t.join()
    assert got == payload


def test_session_close_sends_goaway_and_ends_streams(session):
    conn, peer, accepted = session
    peer.send(spdy.SynStream(1, {"streamtype": ["stdin"]}))
    assert peer.recv() == spdy.SynReply(1, {})
    threading.Thread(target=conn.close, daemon=True).start()
    assert peer.recv() == spdy.GoAway(1, 0)
    assert peer.recv() is None                   # our FIN
    peer.sock.shutdown(socket.SHUT_WR)
    assert conn.wait(5)
    assert accepted[0].read() == b""

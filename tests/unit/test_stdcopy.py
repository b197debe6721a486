"""Docker's 8-byte stream framing: encode, incremental decode, demux."""
import pytest

from dockyard.cli import stdcopy


def test_header_layout_is_type_three_zeros_and_big_endian_length():
    assert stdcopy.encode(stdcopy.STDERR, b"hi") == b"\x02\x00\x00\x00\x00\x00\x00\x02hi"
    assert stdcopy.header(stdcopy.STDOUT, 0x01020304) == b"\x01\x00\x00\x00\x01\x02\x03\x04"


def test_roundtrip_of_several_frames():
    data = (stdcopy.encode(1, b"out\n") + stdcopy.encode(2, b"err\n")
            + stdcopy.encode(1, b"") + stdcopy.encode(1, b"x" * 70000))
    assert stdcopy.decode(data) == [(1, b"out\n"), (2, b"err\n"), (1, b""), (1, b"x" * 70000)]


def test_frames_split_at_every_byte_boundary_are_reassembled():
    data = stdcopy.encode(1, b"hello") + stdcopy.encode(2, b"world!")
    for cut in range(len(data) + 1):
        demuxer = stdcopy.Demuxer()
        frames = demuxer.feed(data[:cut]) + demuxer.feed(data[cut:])
        assert frames == [(1, b"hello"), (2, b"world!")]
        assert demuxer.pending == 0


def test_byte_at_a_time():
    data = stdcopy.encode(1, b"abc") + stdcopy.encode(2, b"de")
    demuxer = stdcopy.Demuxer()
    frames = []
    for i in range(len(data)):
        frames += demuxer.feed(data[i:i + 1])
    assert frames == [(1, b"abc"), (2, b"de")]


def test_truncated_buffer_is_an_error_for_decode():
    with pytest.raises(stdcopy.StreamError, match="truncated"):
        stdcopy.decode(stdcopy.encode(1, b"hello")[:-1])


def test_unknown_stream_type_is_rejected():
    with pytest.raises(stdcopy.StreamError, match="Unrecognized input header: 7"):
        stdcopy.Demuxer().feed(b"\x07\x00\x00\x00\x00\x00\x00\x00")
    with pytest.raises(ValueError):
        stdcopy.header(9, 1)


def test_copy_routes_streams_and_raises_on_systemerr():
    out, err = [], []
    chunks = [stdcopy.encode(1, b"a") + stdcopy.encode(2, b"b")[:3], stdcopy.encode(2, b"b")[3:]]
    stdcopy.copy(chunks, out.append, err.append)
    assert (out, err) == ([b"a"], [b"b"])
    with pytest.raises(stdcopy.StreamError, match="daemon broke"):
        stdcopy.copy([stdcopy.encode(3, b"daemon broke")], out.append, err.append)

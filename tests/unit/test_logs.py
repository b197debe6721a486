import asyncio

from dockyard.daemon import logs


LOG = (b"2026-11-28T04:08:57.319585609+00:00 stdout F hello\n"
       b"2026-11-28T04:08:58.000000000+00:00 stderr F oops\n"
       b"2026-11-28T04:08:59.000000000+00:00 stdout P par\n"
       b"2026-11-28T04:08:59.100000000+00:00 stdout F tial\n"
       b"2026-11-28T04:09:00.000000000+00:00 stdout F \n")


def _read(path, **kw):
    async def go():
        return [e async for e in logs.follow(str(path), **kw)]
    return asyncio.run(go())


def test_parse_line_restores_newlines_and_partials():
    e = logs.parse_line(b"2026-11-28T04:08:57.319585609+00:00 stdout F hello world")
    assert (e.stream, e.partial, e.data) == ("stdout", False, b"hello world\n")
    p = logs.parse_line(b"2026-11-28T04:08:57.319585609+00:00 stderr P abc")
    assert (p.stream, p.partial, p.data) == ("stderr", True, b"abc")
    assert e.docker_time() == "2026-11-28T04:08:57.319585609Z"


def test_streams_tail_since_until(tmp_path):
    f = tmp_path / "ctr.log"
    f.write_bytes(LOG)
    out = _read(f, stdout=True, stderr=True)
    assert b"".join(e.data for e in out) == b"hello\noops\npartial\n\n"
    assert [e.data for e in _read(f, stdout=False, stderr=True)] == [b"oops\n"]
    # tail counts lines, a partial entry belongs to the line it ends
    assert b"".join(e.data for e in _read(f, stdout=True, stderr=True, tail=2)) == b"partial\n\n"
    assert _read(f, stdout=True, stderr=True, tail=0) == []
    t = logs.parse_time("2026-11-28T04:08:58.000000000+00:00")
    assert [e.data for e in _read(f, stdout=True, stderr=True, since=t, until=t + 1.15)] == [b"par", b"tial\n"]


def test_tail_counts_a_streams_unterminated_last_output_as_a_line(tmp_path):
    """`printf no-newline` at the end: dockerd's json-file holds it as one
    message, so tail=1 is that alone (it counted only full lines: o2 came too)."""
    f = tmp_path / "ctr.log"
    f.write_bytes(b"2026-11-28T04:08:57.000000000+00:00 stdout F o1\n"
                  b"2026-11-28T04:08:57.100000000+00:00 stderr F e1\n"
                  b"2026-11-28T04:08:57.200000000+00:00 stdout F o2\n"
                  b"2026-11-28T04:08:57.300000000+00:00 stdout P no-newline\n")
    assert [e.data for e in _read(f, stdout=True, stderr=False, tail=1)] == [b"no-newline"]
    assert [e.data for e in _read(f, stdout=True, stderr=False, tail=2)] == [b"o2\n", b"no-newline"]
    assert [e.data for e in _read(f, stdout=False, stderr=True, tail=1)] == [b"e1\n"]
    assert [e.data for e in _read(f, stdout=True, stderr=True, tail=2)] == [b"o2\n", b"no-newline"]


def test_follow_ends_when_container_stops(tmp_path):
    f = tmp_path / "ctr.log"
    f.write_bytes(LOG[:52])
    state = {"running": True}

    async def go():
        got = []

        async def writer():
            await asyncio.sleep(0.15)
            with open(f, "ab") as fh:
                fh.write(LOG[52:])
            state["running"] = False
        asyncio.ensure_future(writer())
        async for e in logs.follow(str(f), stdout=True, stderr=True, follow=True, running=lambda: state["running"]):
            got.append(e.data)
        return got
    got = asyncio.run(asyncio.wait_for(go(), 5))
    assert b"".join(got) == b"hello\noops\npartial\n\n"


def test_render_one_frame_per_entry_as_dockerd():
    """dockerd writes one multiplexed frame per log message: a client that
    iterates frames (docker-py's logs(stream=True)) sees one item per line,
    a partial entry as an item of its own; with a TTY the bytes are raw."""
    import struct

    def frames(buf):
        out = []
        while buf:
            kind, n = struct.unpack(">BxxxL", buf[:8])
            out.append((kind, buf[8:8 + n]))
            buf = buf[8 + n:]
        return out

    stdout_lines = (b"2026-11-28T04:08:57.0+00:00 stdout F hello\n"
                    b"2026-11-28T04:08:57.1+00:00 stdout F world\n")
    got = frames(logs.render(stdout_lines + LOG, stdout=True, stderr=True, framed=True))
    assert got == [(1, b"hello\n"), (1, b"world\n"), (1, b"hello\n"), (2, b"oops\n"),
                   (1, b"par"), (1, b"tial\n"), (1, b"\n")]
    assert frames(logs.render(LOG, stdout=False, stderr=True, framed=True)) == [(2, b"oops\n")]
    assert logs.render(LOG, stdout=True, stderr=True, framed=False) == b"hello\noops\npartial\n\n"

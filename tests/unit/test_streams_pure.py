"""Pure parts of issue 4: log options, rotation on disk and reading across
it, ps parsing for top, cgroup stats parsing, detach keys."""
import asyncio
import os

import pytest

from dockyard.api.streams import parse_detach_keys
from dockyard.daemon import logconfig, logrotate, logs, stats
from dockyard.errors import InvalidParameter


def _line(i: int, stream: str = "stdout", flag: str = "F", text: str | None = None) -> bytes:
    body = text if text is not None else f"line{i}"
    return f"2026-11-28T04:08:{i % 60:02d}.000000000+00:00 {stream} {flag} {body}\n".encode()


def _read(path, **kw):
    async def go():
        return [e async for e in logs.follow(str(path), **kw)]
    return asyncio.run(go())


# ---------------------------------------------------------------- log options

def test_log_config_defaults_and_validation():
    assert logconfig.resolve(None) == {"Type": "json-file", "Config": {}}
    assert logconfig.limits("json-file", {}) == (20 * 1024 * 1024, 5)
    assert logconfig.limits("local", {"max-size": "1m", "max-file": "3"}) == (1024 * 1024, 3)
    assert logconfig.limits("json-file", {"max-size": "10k"}) == (10240, 1)
    assert logconfig.limits("json-file", {"max-size": "-1"}) == (0, 1)
    assert logconfig.limits("none", {}) == (0, 1)
    # the daemon's default driver and options apply when the container names none
    assert logconfig.resolve({}, "local", {"max-size": "5m"}) == {"Type": "local", "Config": {"max-size": "5m"}}
    assert logconfig.resolve({"Type": "json-file"}, "local", {"max-size": "5m"})["Config"] == {}
    # same driver as the daemon's, named or not: its options fill in what the container leaves out
    daemon_opts = {"max-size": "5m", "max-file": "2"}
    assert logconfig.resolve({"Type": "local"}, "local", daemon_opts)["Config"] == daemon_opts
    assert logconfig.resolve({"Config": {"max-file": "3"}}, "local", daemon_opts)["Config"] == {
        "max-size": "5m", "max-file": "3"}
    with pytest.raises(InvalidParameter, match="unknown log opt 'bogus' for json-file log driver"):
        logconfig.resolve({"Type": "json-file", "Config": {"bogus": "1"}})
    with pytest.raises(InvalidParameter, match="no log driver named 'nope'"):
        logconfig.resolve({"Type": "nope"})
    with pytest.raises(InvalidParameter, match="max-file cannot be less than 1"):
        logconfig.resolve({"Type": "local", "Config": {"max-file": "0"}})
    with pytest.raises(InvalidParameter, match="invalid size"):
        logconfig.resolve({"Type": "local", "Config": {"max-size": "ten"}})
    assert logconfig.parse_size("1.5g") == int(1.5 * 1024 ** 3)
    assert logconfig.parse_size("512KB") == 512 * 1024


def test_log_opts_every_driver_takes_and_local_refuses_like_docker():
    # moby's built-in options (mode, max-buffer-size) go with any driver, validated as Docker does
    for driver in ("json-file", "local"):
        opts = {"mode": "non-blocking", "max-buffer-size": "4m"}
        assert logconfig.resolve({"Type": driver, "Config": opts})["Config"] == opts
    assert logconfig.resolve({"Type": "local", "Config": {"mode": "blocking"}})["Config"] == {"mode": "blocking"}
    with pytest.raises(InvalidParameter, match="^logger: logging mode not supported: fast$"):
        logconfig.resolve({"Type": "json-file", "Config": {"mode": "fast"}})
    with pytest.raises(InvalidParameter, match="only supported with 'mode=non-blocking'"):
        logconfig.resolve({"Type": "json-file", "Config": {"max-buffer-size": "4m"}})
    with pytest.raises(InvalidParameter, match="^error parsing option max-buffer-size"):
        logconfig.resolve({"Type": "local", "Config": {"mode": "non-blocking", "max-buffer-size": "lots"}})
    # Docker's local driver (API <= 1.50) takes max-size, max-file, compress only; its own wording
    for opt in ("labels", "env", "tag", "bogus"):
        with pytest.raises(InvalidParameter, match=f"^unknown log opt '{opt}' for log driver local$"):
            logconfig.resolve({"Type": "local", "Config": {opt: "x"}})
    # `none` validates nothing (moby returns before any check)
    assert logconfig.resolve({"Type": "none", "Config": {"max-size": "x"}}) == {
        "Type": "none", "Config": {"max-size": "x"}}
    assert logconfig.limits("none", {"max-size": "x"}) == (0, 1)


# ---------------------------------------------------------------- rotation

def test_rotate_files_shifts_and_drops_oldest(tmp_path):
    p = str(tmp_path / "ctr.log")
    for gen in range(5):
        with open(p, "wb") as f:
            f.write(_line(gen))
        logrotate.rotate_files(p, 3)
    names = sorted(os.listdir(tmp_path))
    assert names == ["ctr.log.1", "ctr.log.2"]          # conmon makes the new ctr.log on reopen
    assert open(p + ".1", "rb").read() == _line(4)
    assert open(p + ".2", "rb").read() == _line(3)


def test_reading_across_rotated_files_in_order_with_tail(tmp_path):
    p = tmp_path / "ctr.log"
    (tmp_path / "ctr.log.2").write_bytes(_line(1) + _line(2, "stderr"))
    (tmp_path / "ctr.log.1").write_bytes(_line(3) + _line(4, flag="P", text="par"))
    p.write_bytes(_line(5, text="tial") + _line(6))
    assert [e.data for e in _read(p, stdout=True, stderr=True)] == [
        b"line1\n", b"line2\n", b"line3\n", b"par", b"tial\n", b"line6\n"]
    # tail counts whole lines backwards across files; a partial belongs to its line
    assert b"".join(e.data for e in _read(p, stdout=True, stderr=True, tail=2)) == b"partial\nline6\n"
    assert b"".join(e.data for e in _read(p, stdout=True, stderr=True, tail=4)) == b"line2\nline3\npartial\nline6\n"
    assert [e.data for e in _read(p, stdout=False, stderr=True)] == [b"line2\n"]


def test_orphaned_line_rest_is_skipped_after_its_start_is_dropped(tmp_path):
    p = str(tmp_path / "ctr.log")
    with open(p + ".2", "wb") as f:
        f.write(_line(1) + _line(2, flag="P", text="start-of-"))
    with open(p + ".1", "wb") as f:
        f.write(_line(3, text="line") + _line(4))
    with open(p, "wb") as f:
        f.write(_line(5))
    logrotate.drop(p, p + ".2", p + ".1")                  # max-file reached: the oldest goes
    assert not os.path.exists(p + ".2")
    assert [e.data for e in _read(p, stdout=True, stderr=True)] == [b"line4\n", b"line5\n"]


def test_follow_continues_through_a_rotation(tmp_path):
    p = str(tmp_path / "ctr.log")
    with open(p, "wb") as f:
        f.write(_line(1))
    state = {"running": True}

    async def go():
        got = []

        async def writer():
            await asyncio.sleep(0.1)
            with open(p, "ab") as f:
                f.write(_line(2))
            logrotate.rotate_files(p, 3)            # daemon renames; the writer still appends
            with open(p + ".1", "ab") as f:
                f.write(_line(3))
            await asyncio.sleep(0.1)
            with open(p, "wb") as f:                # conmon reopened: a new file
                f.write(_line(4))
            await asyncio.sleep(0.1)
            state["running"] = False
        t = asyncio.ensure_future(writer())
        async for e in logs.follow(p, stdout=True, stderr=True, follow=True, running=lambda: state["running"]):
            got.append(e.data)
        await t
        return got
    assert asyncio.run(asyncio.wait_for(go(), 5)) == [b"line1\n", b"line2\n", b"line3\n", b"line4\n"]


def test_docker_time_is_utc():
    e = logs.parse_line(b"2026-11-28T06:08:57.319585609+02:00 stdout F x")
    assert e.docker_time() == "2026-11-28T04:08:57.319585609Z"


# ---------------------------------------------------------------- top and stats

def test_parse_ps_keeps_container_pids_and_whole_command():
    out = ("UID          PID    PPID  C STIME TTY          TIME CMD\n"
           "root           1       0  0 04:00 ?        00:00:01 /sbin/init splash\n"
           "root        4242    4200  0 04:01 ?        00:00:00 sleep 100000\n")
    top = stats.parse_ps(out, {4242})
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top["Processes"] == [["root", "4242", "4200", "0", "04:01", "?", "00:00:00", "sleep 100000"]]


def test_parse_ps_command_column_as_mobys():
    """moby's parsePSOutput: the last column's words joined by one space, no trailing blank (issue 14),
    and `ps -m`'s thread lines (PID `-`) kept under a container process only."""
    out = ("UID          PID    PPID  C STIME TTY          TIME CMD\n"
           "root        4242    4200  0 04:01 ?        00:00:00 sh -c  sleep\t9 \n"
           "root           -       -  0 04:01 -        00:00:00 -\n"
           "root           1       0  0 04:00 ?        00:00:01 /sbin/init\n"
           "root           -       -  0 04:00 -        00:00:00 -\n"
           "root        4243    4242  0 04:01 ?        00:00:00 \u00a0x\u00a0 \n")
    top = stats.parse_ps(out, {4242, 4243})
    assert top["Processes"] == [["root", "4242", "4200", "0", "04:01", "?", "00:00:00", "sh -c sleep 9"],
                                ["root", "-", "-", "0", "04:01", "-", "00:00:00", "-"],
                                ["root", "4243", "4242", "0", "04:01", "?", "00:00:00", "\u00a0x\u00a0"]]


def test_cgroup_v2_stats(tmp_path):
    d = tmp_path
    (d / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\n"
                                "nr_throttled 1\nthrottled_usec 7\n")
    (d / "memory.current").write_text("4096\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.stat").write_text("anon 100\ninactive_file 10\n")
    (d / "pids.current").write_text("2\n")
    (d / "pids.max").write_text("max\n")
    (d / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n")
    cpu, mem, pids, blkio = stats._v2(str(d))
    assert cpu["cpu_usage"] == {"total_usage": 1_500_000, "usage_in_kernelmode": 500_000, "usage_in_usermode": 1_000_000}
    assert cpu["throttling_data"] == {"periods": 3, "throttled_periods": 1, "throttled_time": 7000}
    assert mem["usage"] == 4096 and mem["stats"]["inactive_file"] == 10 and mem["limit"] > 0
    assert pids == {"current": 2}
    assert blkio["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "read", "value": 10},
                                                   {"major": 8, "minor": 0, "op": "write", "value": 20}]


def test_memory_stats_keys_are_dockerds(tmp_path):
    """moby's statsV1/statsV2 report a fixed set of memory.stat keys (0 when the
    kernel lacks one, the kernel's others left out) and omit zero fields
    (failcnt): swap, shmem, workingset_refault_anon & co were extra."""
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.usage_in_bytes").write_text("8192\n")
    (v1 / "memory.max_usage_in_bytes").write_text("9000\n")
    (v1 / "memory.failcnt").write_text("0\n")
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory.stat").write_text("cache 4096\nrss 100\nshmem 5\nswap 0\ntotal_inactive_file 7\n"
                                    "workingset_refault_anon 3\nhierarchical_memory_limit 42\n")
    mem = stats._v1({"memory": str(v1)})[1]
    assert set(mem) == {"usage", "max_usage", "stats", "limit"}          # failcnt 0: omitted
    assert set(mem["stats"]) == set(stats.MEMORY_STATS_V1) and len(stats.MEMORY_STATS_V1) == 32
    assert (mem["stats"]["cache"], mem["stats"]["total_inactive_file"], mem["stats"]["total_rss"]) == (4096, 7, 0)
    assert mem["stats"]["hierarchical_memory_limit"] == 42
    (v1 / "memory.failcnt").write_text("3\n")
    assert stats._v1({"memory": str(v1)})[1]["failcnt"] == 3
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.current").write_text("4096\n")
    (v2 / "memory.max").write_text("max\n")
    (v2 / "memory.stat").write_text("anon 100\nshmem 1\nswapcached 2\nzswap 3\n")
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n")
    mem = stats._v2(str(v2))[1]
    assert set(mem["stats"]) == set(stats.MEMORY_STATS_V2) and len(stats.MEMORY_STATS_V2) == 31
    assert (mem["stats"]["anon"], mem["stats"]["workingset_refault"], mem["failcnt"]) == (100, 0, 2)
    assert "max_usage" not in mem


def test_cgroup_dirs_hybrid_and_v2(tmp_path, monkeypatch):
    pid = os.getpid()
    got = stats.cgroup_dirs(pid, str(tmp_path))
    assert got   # parsed this process's /proc/self/cgroup against a fake root
    for ctrl, path in got.items():
        assert path.startswith(str(tmp_path))


def test_detach_keys():
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-x,x") == b"\x18x"
    assert parse_detach_keys("ctrl-@,ctrl-[") == b"\x00\x1b"
    with pytest.raises(ValueError):
        parse_detach_keys("ctrl-1")
    with pytest.raises(ValueError):
        parse_detach_keys("abc")


def test_render_fast_path_matches_entries(tmp_path):
    from dockyard.api.streams import frame
    data = (_line(1) + _line(2) + _line(3, "stderr") + _line(4, flag="P", text="pa") + _line(5, text="rt") +
            _line(6, "stderr", text=""))
    framed = logs.render(data, stdout=True, stderr=True, framed=True)
    # one frame per entry, as the entry path (and dockerd) frame them
    assert framed == (frame(1, b"line1\n") + frame(1, b"line2\n") + frame(2, b"line3\n") + frame(1, b"pa") +
                      frame(1, b"rt\n") + frame(2, b"\n"))
    assert logs.render(data, stdout=True, stderr=False, framed=False) == b"line1\nline2\npart\n"
    p = tmp_path / "ctr.log"
    p.write_bytes(data)

    async def go():
        return b"".join([b async for b in logs.batches(str(p), stdout=True, stderr=True, raw=True)])
    assert asyncio.run(go()) == data


def test_without_follow_lines_written_meanwhile_are_not_included(tmp_path):
    p = tmp_path / "ctr.log"
    p.write_bytes(_line(1) + _line(2) + _line(3))

    async def go():
        got = []
        async for batch in logs.batches(str(p), stdout=True, stderr=True, tail=1):
            with open(p, "ab") as f:        # the container keeps writing while we answer
                f.write(_line(4))
            got += [e.data for e in batch]
        return got
    assert asyncio.run(go()) == [b"line3\n"]

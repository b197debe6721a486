"""The log rotator does not poll every running container's log: with inotify,
only containers waiting for conmon's reopen are checked between full resyncs."""
import asyncio

from dockyard.daemon import logrotate


class _Rotator(logrotate.LogRotator):
    def __init__(self):
        super().__init__(containers=None, layout=None)
        self._fd = 99                   # "inotify works"
        self.full = 0
        self.pending_checks = 0

    def _resync(self):
        self.full += 1

    def _recheck_pending(self):
        self.pending_checks += 1


def test_full_resync_only_every_few_ticks(monkeypatch):
    monkeypatch.setattr(logrotate, "_RESYNC", 0)
    r = _Rotator()

    async def run():
        t = asyncio.ensure_future(r._resync_loop())
        for _ in range(3 * logrotate._FULL_RESYNC):
            await asyncio.sleep(0)
        t.cancel()
    asyncio.run(run())
    assert r.full >= 2 and r.pending_checks >= 10 * r.full - 10
    assert r.full <= r.pending_checks // (logrotate._FULL_RESYNC - 1) + 1


def test_without_inotify_every_tick_is_a_full_resync(monkeypatch):
    monkeypatch.setattr(logrotate, "_RESYNC", 0)
    r = _Rotator()
    r._fd = -1

    async def run():
        t = asyncio.ensure_future(r._resync_loop())
        for _ in range(20):
            await asyncio.sleep(0)
        t.cancel()
    asyncio.run(run())
    assert r.full >= 5 and r.pending_checks == 0


class _Libc:
    def __init__(self, wd):
        self.wd, self.calls = wd, 0

    def inotify_add_watch(self, fd, path, mask):
        self.calls += 1
        return self.wd


class _Layout:
    def container(self, cid):
        return type("P", (), {"dir": f"/nowhere/{cid}"})()


def test_a_start_finds_its_watch_without_a_scan_and_a_reused_number_moves(monkeypatch):
    libc = _Libc(7)
    monkeypatch.setattr(logrotate, "_libc", libc)
    monkeypatch.setattr(logrotate, "container_limits", lambda c: (1024, 1))
    r = logrotate.LogRotator(containers=None, layout=_Layout())
    r._fd = 5
    a, b = (type("C", (), {"id": x})() for x in ("a", "b"))
    r.watch(a)
    r.watch(a)                      # already watched: no second inotify_add_watch
    assert libc.calls == 1 and r._watched == {"a"}
    r.watch(b)                      # the kernel gave b the number a's dropped watch had
    assert r._wd == {7: "b"} and r._watched == {"b"}
    r.watch(a)                      # so a is watched again when it asks
    assert libc.calls == 3 and r._wd == {7: "a"} and r._watched == {"a"}

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

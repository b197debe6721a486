"""Reading a container's log (conmon's k8s-file format), across the files
rotation left (`ctr.log.N` oldest … `ctr.log.1`, then `ctr.log`).

Each line: `<RFC3339Nano time> <stdout|stderr> <F|P> <content>`; P marks a
partial line (no newline yet), F the end of one.

Files are read through open descriptors and followed by inode: a rotation
renames the file we are reading, conmon may append to it until it reopens,
and only then is it final (see daemon/logrotate.py)."""
from __future__ import annotations

import asyncio
import datetime as _dt
import os
import struct
import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterator

from .. import timestamps


@dataclass
class Entry:
    time: str          # as written by conmon
    stream: str        # "stdout" | "stderr"
    partial: bool
    data: bytes        # with the newline restored for full lines

    @property
    def unix(self) -> float:
        return parse_time(self.time)

    def docker_time(self) -> str:
        """RFC3339Nano in UTC with Z, as Docker prints with -t."""
        t = self.time
        if t.endswith("+00:00"):
            return t[:-6] + "Z"
        # conmon writes local time with an offset: convert, keeping the nanoseconds
        main, _, rest = t.partition(".")
        frac = rest[:9]
        base = _dt.datetime.fromisoformat(main + rest[len(frac):]).astimezone(_dt.timezone.utc)
        return base.strftime("%Y-%m-%dT%H:%M:%S") + "." + frac + "Z"


def parse_time(t: str) -> float:
    """2026-11-28T04:08:57.319585609+00:00 (or …Z) -> unix seconds; ValueError if not RFC 3339."""
    return timestamps.parse(t)


def parse_line(line: bytes) -> Entry | None:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    partial = parts[2] == b"P"
    return Entry(parts[0].decode(), parts[1].decode(), partial, content if partial else content + b"\n")


def parse_since(value: str | None) -> float | None:
    """Docker sends since/until as unix seconds with optional fraction."""
    if value in (None, "", "0"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _select(entries: Iterator[Entry], stdout: bool, stderr: bool, since: float | None,
            until: float | None) -> Iterator[Entry]:
    for e in entries:
        if (e.stream == "stdout" and not stdout) or (e.stream == "stderr" and not stderr):
            continue
        if since is not None or until is not None:
            t = e.unix
            if since is not None and t <= since:
                continue
            if until is not None and t > until:
                continue
        yield e


READ_BLOCK = 1 << 20


def log_files(path: str) -> list[str]:
    """Existing files of one log, oldest first."""
    d, base = os.path.split(path)
    try:
        names = os.listdir(d or ".")
    except FileNotFoundError:
        return []
    nums = sorted((int(n[len(base) + 1:]) for n in names
                   if n.startswith(base + ".") and n[len(base) + 1:].isdigit()), reverse=True)
    out = [f"{path}.{n}" for n in nums]
    if base in names:
        out.append(path)
    return out


def ends_partial(path: str) -> bool:
    """Whether the file's last entry is a partial (P) one: the line goes on
    in the next file."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(0, end - 65536))
            tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    except OSError:
        return False
    e = parse_line(tail) if tail else None
    return bool(e and e.partial)


def _heads_path(path: str) -> str:
    d, base = os.path.split(path)
    return os.path.join(d, f".{base}.heads")


def mid_line_heads(path: str) -> set[int]:
    """Inodes of log files that start in the middle of a line whose start was
    rotated away (recorded by the rotator when it deleted that file)."""
    try:
        with open(_heads_path(path)) as f:
            return {int(x) for x in f.read().split()}
    except (OSError, ValueError):
        return set()


def mark_mid_line_head(path: str, next_file: str) -> None:
    try:
        ino = os.stat(next_file).st_ino
    except OSError:
        return
    live = set()
    for p in log_files(path):
        try:
            live.add(os.stat(p).st_ino)
        except OSError:
            pass
    inos = (mid_line_heads(path) & live) | {ino}
    tmp = _heads_path(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(" ".join(map(str, sorted(inos))))
    os.replace(tmp, _heads_path(path))


def _cut_continuation(data: bytes) -> bytes:
    """Raw lines after the first full (F) entry: see _skip_continuation."""
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        e = parse_line(data[pos:end])
        pos = end + 1
        if e is not None and not e.partial:
            return data[pos:]
    return b""


_FRAME_HEADER = struct.Struct(">BxxxL").pack      # stdcopy: stream, 3 zero bytes, big-endian length


def render(data: bytes, *, stdout: bool, stderr: bool, framed: bool) -> bytes:
    """Whole k8s-file lines → what `docker logs` sends, without an Entry per
    line: with `framed` (no TTY) one stdcopy frame per log entry, as dockerd
    writes one frame per message (clients that iterate frames, docker-py's
    `logs(stream=True)`, get one item per line); a partial (P) entry is a
    frame of its own, as dockerd's partial messages are."""
    out: list[bytes] = []
    append = out.append
    for line in data.split(b"\n"):
        parts = line.split(b" ", 3)
        n = len(parts)
        if n < 3:
            continue
        s = parts[1]
        if s == b"stdout":
            if not stdout:
                continue
            kind = 1
        elif s == b"stderr":
            if not stderr:
                continue
            kind = 2
        else:
            continue
        content = parts[3] if n == 4 else b""
        full = parts[2] != b"P"
        if framed:
            append(_FRAME_HEADER(kind, len(content) + full))
        append(content)
        if full:
            append(b"\n")
    return b"".join(out)


def _skip_continuation(entries: list[Entry]) -> list[Entry]:
    """Drop the leading rest of a line whose start is gone."""
    for i, e in enumerate(entries):
        if not e.partial:
            return entries[i + 1:]
    return []


def open_all(path: str) -> list:
    """Open every file of the log, oldest first, as one consistent set: opened
    newest first (the direction rotation moves files), retried if a rotation
    moved one under us."""
    for _ in range(5):
        files = []
        seen = set()
        ok = True
        for p in reversed(log_files(path)):
            try:
                f = open(p, "rb")
            except FileNotFoundError:
                ok = False
                break
            ino = os.fstat(f.fileno()).st_ino
            if ino in seen:
                f.close()
                ok = False
                break
            seen.add(ino)
            files.append(f)
        if ok:
            return list(reversed(files))
        for f in files:
            f.close()
    return list(reversed(files))


def _count_tail_start(files: list, n: int, stdout: bool, stderr: bool,
                      sizes: list[int] | None = None) -> tuple[int, int]:
    """(file index, offset) where the last n selected lines begin, reading
    backwards block by block (a 100 MB log is not read for --tail 10).
    `sizes` is the snapshot to count back from (the file may be growing).
    A line is a full entry, or a stream's last entry when that is partial
    (output that never got its newline: one message in dockerd's json-file);
    the partial pieces before a full one belong to its line."""
    count = 0
    later: set[str] = set()    # streams with an entry after the one looked at
    for i in range(len(files) - 1, -1, -1):
        f = files[i]
        end = sizes[i] if sizes is not None else os.fstat(f.fileno()).st_size
        pos = end
        carry = b""
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step) + carry
            lines = block.split(b"\n")
            carry = lines[0] if pos > 0 else b""
            body = lines[1:] if pos > 0 else lines
            # offsets of each line start within the file
            off = pos + (len(lines[0]) + 1 if pos > 0 else 0)
            starts = []
            for l in body:
                starts.append((off, l))
                off += len(l) + 1
            for start, l in reversed(starts):
                if not l:
                    continue
                e = parse_line(l)
                if e is None:
                    continue
                last_of_stream = e.stream not in later
                later.add(e.stream)
                if e.partial and not last_of_stream:
                    continue
                if (e.stream == "stdout" and not stdout) or (e.stream == "stderr" and not stderr):
                    continue
                count += 1
                if count > n:
                    return i, start + len(l) + 1
    return 0, 0


def _entries(chunk: bytes) -> list[Entry]:
    return [e for e in (parse_line(l) for l in chunk.split(b"\n") if l) if e]


class _Reader:
    """Reads whole lines from one open file from an offset."""

    def __init__(self, f, pos: int = 0, end: int | None = None):
        self.f = f
        self.pos = pos
        self.end = end      # without follow: the size when we opened it (a snapshot)
        self.buf = b""

    @property
    def ino(self) -> int:
        return os.fstat(self.f.fileno()).st_ino

    def read(self) -> bytes | None:
        """Whole lines read now (None when nothing new)."""
        self.f.seek(self.pos)
        want = READ_BLOCK if self.end is None else min(READ_BLOCK, self.end - self.pos)
        chunk = self.f.read(want) if want > 0 else b""
        if not chunk:
            return None
        self.pos += len(chunk)
        data = self.buf + chunk
        cut = data.rfind(b"\n") + 1
        self.buf = data[cut:]
        return data[:cut]


async def batches(path: str, *, stdout: bool, stderr: bool, tail: int = -1, since: float | None = None,
                  until: float | None = None, follow: bool = False,
                  running: Callable[[], bool] = lambda: False,
                  exited: Callable[[], asyncio.Event] | None = None,
                  raw: bool = False) -> AsyncIterator[list[Entry]]:
    """Lists of entries of the log in order; with follow, keep going until
    the container stops. With raw (no since/until), whole k8s-file lines as
    bytes instead, for `render` (the fast path of a plain `docker logs`)."""
    files = open_all(path)
    try:
        # one snapshot of the sizes: --tail counts back from it, and without
        # follow the answer ends at it (a writer's later lines are not in it)
        sizes = [os.fstat(f.fileno()).st_size for f in files]
        start_i, start_off = (0, 0)
        if tail == 0:
            start_i = max(0, len(files) - 1)
            start_off = sizes[-1] if files else 0
        elif tail > 0:
            start_i, start_off = _count_tail_start(files, tail, stdout, stderr, sizes)
        ends = {id(f): (None if follow else size) for f, size in zip(files, sizes)}
        for f in files[:start_i]:
            f.close()
        queue = files[start_i:]
        cur = None
        if queue:
            first = queue.pop(0)
            cur = _Reader(first, start_off, ends[id(first)])
        # reading the oldest file from its start: it may begin mid-line (see mark_mid_line_head)
        skip_head = cur is not None and start_off == 0 and start_i == 0 and cur.ino in mid_line_heads(path)
        while True:
            alive = follow and running()   # checked before reading: a stop after this read is drained next turn
            while cur is not None:
                data = cur.read()
                if data is None:
                    if not queue:
                        break
                    cur.f.close()
                    nxt = queue.pop(0)
                    cur = _Reader(nxt, 0, ends.get(id(nxt)))
                    continue
                if raw:
                    if skip_head:
                        data, skip_head = _cut_continuation(data), False
                    if data:
                        yield data
                    await asyncio.sleep(0)
                    continue
                entries = _entries(data)
                if skip_head:
                    entries, skip_head = _skip_continuation(entries), False
                selected = list(_select(iter(entries), stdout, stderr, since, until))
                if selected:
                    yield selected
                await asyncio.sleep(0)
            if not follow:
                return
            if _replaced(path, cur):
                # a newer file exists, so ours is final: drain it, then read the newer ones
                queue = _files_after(path, cur)
                if not queue:
                    pass   # a rename raced our look: ours is still the newest, keep reading it
                elif cur is not None:
                    while (data := cur.read()) is not None:
                        if raw:
                            yield data
                            continue
                        selected = list(_select(iter(_entries(data)), stdout, stderr, since, until))
                        if selected:
                            yield selected
                if queue:
                    files.extend(queue)
                    if cur is not None:
                        cur.f.close()
                    cur = _Reader(queue.pop(0))
                    continue
            if not alive:
                return
            if until is not None and until <= time.time():
                return
            ev = exited() if exited else None
            try:
                if ev is not None:
                    await asyncio.wait_for(ev.wait(), 0.05)
                else:
                    await asyncio.sleep(0.05)
            except asyncio.TimeoutError:
                pass
    finally:
        for f in files:
            f.close()


def _replaced(path: str, cur: "_Reader | None") -> bool:
    """Whether a newer file than ours exists. Only the newest file can still
    grow (mid-rotation, conmon writes to the renamed ctr.log.1 until it
    reopens), so ours is then final."""
    names = log_files(path)
    if not names:
        return False
    try:
        newest = os.stat(names[-1]).st_ino
    except FileNotFoundError:
        return False   # renamed under us: look again next turn
    return cur is None or newest != cur.ino


def _files_after(path: str, cur: "_Reader | None") -> list:
    """The log's files newer than ours, oldest first, opened."""
    files = open_all(path)
    if cur is None:
        return files
    inos = [os.fstat(f.fileno()).st_ino for f in files]
    i = inos.index(cur.ino) if cur.ino in inos else -1   # ours deleted (max-file): take what is left
    for f in files[:i + 1]:
        f.close()
    return files[i + 1:]


async def follow(path: str, *, stdout: bool, stderr: bool, tail: int = -1, since: float | None = None,
                 until: float | None = None, follow: bool = False,
                 running: Callable[[], bool] = lambda: False,
                 exited: Callable[[], asyncio.Event] | None = None) -> AsyncIterator[Entry]:
    """Entries of the log one by one (see `batches`)."""
    async for batch in batches(path, stdout=stdout, stderr=stderr, tail=tail, since=since, until=until,
                               follow=follow, running=running, exited=exited):
        for e in batch:
            yield e

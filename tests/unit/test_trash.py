"""A removed container's directories leave their place at once (one rename
into the root's .trash) and are deleted by a thread of their own; what a
daemon left in the trash is deleted at the next start; what is outside the
roots is deleted in place."""
from __future__ import annotations

import os
import time

from dockyard.daemon.trash import TRASH, Trash


def _tree(path, files: int = 20) -> None:
    os.makedirs(os.path.join(path, "sub", "deeper"))
    for i in range(files):
        with open(os.path.join(path, "sub", f"f{i}"), "w") as f:
            f.write("x" * 100)
    os.symlink("/etc/passwd", os.path.join(path, "sub", "deeper", "link"))


def _until_empty(where: str) -> list[str]:
    for _ in range(200):
        left = os.listdir(where) if os.path.isdir(where) else []
        if not left:
            return left
        time.sleep(0.01)
    return os.listdir(where)


def test_a_discarded_dir_is_gone_at_once_and_deleted_in_the_background(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    victim = data / "containers" / ("c" * 64)
    _tree(victim)
    t = Trash([str(data), str(run)])
    t.discard(str(victim))
    assert not os.path.lexists(victim)
    assert _until_empty(str(data / TRASH)) == []
    assert os.path.exists("/etc/passwd")            # a symlink inside is removed, not followed
    t.close()


def test_the_innermost_root_takes_it(tmp_path):
    data = tmp_path / "data"
    run = data / "run"            # an exec root inside the data root
    victim = run / "c" / "x"
    _tree(victim, files=1)
    t = Trash([str(data), str(run)])
    t._put = lambda path: None     # keep what lands in the trash, to look at it
    t.discard(str(victim))
    assert [n.startswith("x-") for n in os.listdir(run / TRASH)] == [True]
    assert not os.path.exists(data / TRASH)


def test_outside_the_roots_it_is_deleted_in_place(tmp_path):
    victim = tmp_path / "elsewhere"
    _tree(victim, files=1)
    t = Trash([str(tmp_path / "data")])
    t.discard(str(victim))
    assert not os.path.lexists(victim)
    assert not os.path.exists(tmp_path / "data" / TRASH)


def test_nothing_there_is_nothing_to_do(tmp_path):
    t = Trash([str(tmp_path)])
    t.discard(str(tmp_path / "missing"))
    assert not os.path.exists(tmp_path / TRASH)


def test_what_a_previous_daemon_left_is_deleted_at_the_next_start(tmp_path):
    left = tmp_path / TRASH / "bundle-0011"
    _tree(left, files=3)
    t = Trash([str(tmp_path)])
    t.sweep()
    assert _until_empty(str(tmp_path / TRASH)) == []


def test_close_lets_the_queue_drain(tmp_path):
    t = Trash([str(tmp_path)])
    victims = [tmp_path / "v" / str(i) for i in range(10)]
    for v in victims:
        _tree(v, files=30)
        t.discard(str(v))
    t.close()
    assert os.listdir(tmp_path / TRASH) == []
    # a discard after close starts a new thread
    _tree(tmp_path / "v" / "late", files=1)
    t.discard(str(tmp_path / "v" / "late"))
    assert _until_empty(str(tmp_path / TRASH)) == []

"""The dockyard CLI's own stream session on a terminal (cli/pumps.py):
`run -it` and `start -ai` under a pty — raw mode, the size at start and
resizes forwarded, exit codes, the detach keys — and `run -i` half-closing
stdin at EOF."""
from __future__ import annotations

import os
import secrets
import sys

import pexpect


def _exe() -> str:
    return os.path.join(os.path.dirname(sys.executable), "dockyard")


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_run_it_raw_sizes_resizes_and_exits_with_the_status(daemon, bb_image):
    name = _name("runit")
    p = pexpect.spawn(_exe(), ["-H", daemon.host, "run", "-it", "--name", name, bb_image, "sh"],
                      env=daemon.env, dimensions=(30, 90), timeout=15)
    try:
        p.sendline('until [ "$(stty size)" = "30 90" ]; do :; done; echo sized-$((1+1))')
        p.expect("sized-2")
        p.setwinsize(33, 101)   # SIGWINCH: forwarded to the container's TTY
        p.sendline('until [ "$(stty size)" = "33 101" ]; do :; done; echo resized-$((2+2))')
        p.expect("resized-4")
        p.sendline("exit 5")
        p.expect(pexpect.EOF)
        p.close()
        assert p.exitstatus == 5
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_start_ai_detaches_with_its_detach_keys_via_attach(daemon, bb_image):
    name = _name("startai")
    daemon.docker("create", "-it", "--name", name, bb_image, "sh")
    try:
        p = pexpect.spawn(_exe(), ["-H", daemon.host, "start", "-ai", name], env=daemon.env,
                          dimensions=(24, 80), timeout=15)
        p.sendline("echo up-$((3+4))")
        p.expect("up-7")
        p.sendline("exit 6")
        p.expect(pexpect.EOF)
        p.close()
        assert p.exitstatus == 6

        daemon.docker("start", name)
        a = pexpect.spawn(_exe(), ["-H", daemon.host, "attach", "--detach-keys", "ctrl-x,x", name],
                          env=daemon.env, dimensions=(24, 80), timeout=15)
        a.sendline("echo att-$((4+5))")
        a.expect("att-9")
        a.send("\x18x")
        a.expect(pexpect.EOF)
        a.close()
        assert a.exitstatus == 0
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_run_i_half_closes_stdin_at_eof(daemon, bb_image):
    r = daemon.dockyard("run", "--rm", "-i", bb_image, "sh", "-c", "wc -c; echo done >&2; exit 2",
                        input="12345\n", check=False)
    assert (r.returncode, r.stdout.split(), r.stderr) == (2, ["6"], "done\n")

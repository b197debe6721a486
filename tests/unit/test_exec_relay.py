"""daemon/exec_relay.py: a process's pipes onto a SOCK_SEQPACKET socket in
conmon's attach format, stdin from it, the exit status, and the end of the
stream at the process's exit (a background child holding the pipes does
not keep it open). A plain `sh` stands in for the runtime."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess

from dockyard.daemon.exec_relay import STDERR_KIND, STDOUT_KIND, relay
from dockyard.runtime.runtimes import PipedExec


async def _spawn(script: str, stdin: bool) -> PipedExec:
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if stdin else (-1, -1)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    proc = await asyncio.create_subprocess_exec("sh", "-c", script, stdin=in_r if stdin else subprocess.DEVNULL,
                                                stdout=out_w, stderr=err_w)
    for fd in (in_r, out_w, err_w):
        if fd >= 0:
            os.close(fd)
    return PipedExec(proc, in_w, out_r, err_r, os.memfd_create("pid"), os.memfd_create("log"))


async def _session(script: str, stdin_data: bytes | None = None, read: bool = True) -> tuple[int, list, PipedExec]:
    px = await _spawn(script, stdin_data is not None)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    packets: list[tuple[int, bytes]] = []

    async def client() -> None:
        if stdin_data is not None:
            await loop.sock_sendall(theirs, stdin_data)
            theirs.shutdown(socket.SHUT_WR)
        while read:
            pkt = await loop.sock_recv(theirs, 65536)
            if not pkt:
                return
            packets.append((pkt[0], pkt[1:]))

    c = asyncio.ensure_future(client())
    if not read:       # the client is gone before any output
        await c
        theirs.close()
    try:
        code = await asyncio.wait_for(relay(px, ours), 30)
    finally:
        ours.close()
    await asyncio.wait_for(c, 30)
    if read:
        theirs.close()
    px.close()
    return code, packets, px


def _joined(packets: list, kind: int) -> bytes:
    return b"".join(d for k, d in packets if k == kind)


def test_stdout_and_stderr_apart_and_the_exit_status():
    code, packets, _ = asyncio.run(_session("echo out; echo err >&2; exit 3"))
    assert code == 3
    assert _joined(packets, STDOUT_KIND) == b"out\n"
    assert _joined(packets, STDERR_KIND) == b"err\n"


def test_stdin_is_passed_and_its_eof_reaches_the_process():
    code, packets, px = asyncio.run(_session("cat; echo eof", stdin_data=b"hello\n"))
    assert code == 0
    assert _joined(packets, STDOUT_KIND) == b"hello\neof\n"
    assert px.stdin == -1          # closed at the client's EOF


def test_a_background_child_holding_the_pipes_does_not_keep_the_stream_open():
    # the child keeps stdout open for 1000 s; the relay ends with the shell
    code, packets, _ = asyncio.run(_session("sleep 1000 & echo $!; exit 0"))
    out = _joined(packets, STDOUT_KIND)
    os.kill(int(out), signal.SIGKILL)
    assert code == 0
    assert out.strip().isdigit()


def test_output_is_drained_when_the_client_is_gone():
    # 1 MiB through a 64 KiB pipe: with nobody reading the socket the relay must still drain it
    code, packets, _ = asyncio.run(_session("head -c 1048576 /dev/zero; exit 5", read=False))
    assert code == 5
    assert packets == []


def test_a_large_output_arrives_whole_and_in_order():
    code, packets, _ = asyncio.run(_session("seq 1 200000"))
    assert code == 0
    assert _joined(packets, STDOUT_KIND) == b"".join(b"%d\n" % i for i in range(1, 200001))

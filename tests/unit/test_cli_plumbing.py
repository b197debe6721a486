"""The CLI's shared plumbing: the subcommand dispatcher, the stream pumps,
the prune prompt/report, the archive writer, the JSON progress stream and
the client's hijack with a body."""
import io
import os
import socket
import threading

import pytest

from dockyard.cli import archive_out, prune, pumps, stdcopy
from dockyard.cli.flags import Command, UsageError, key_values
from dockyard.cli.main import run
from dockyard.cli.progress import json_messages
from dockyard.cli.subcommands import Group
from dockyard.client import Client


class FakeCli:
    def __init__(self):
        self.command_path = "dockyard thing"
        self.lines, self.errors = [], []

    def out(self, text=""):
        self.lines.append(text)

    def err(self, text):
        self.errors.append(text)


# ------------------------------------------------------------------ dispatcher

def _group():
    calls = []

    def ls(cli, argv):
        calls.append((cli.command_path, argv))
        return 3
    lister = Command("[OPTIONS]", "List things")
    return Group("thing", "Manage things", {"ls": (ls, lister), "list": (ls, lister)}, listed=("ls",)), calls


def test_group_runs_a_subcommand_or_its_alias_under_its_own_path():
    group, calls = _group()
    cli = FakeCli()
    assert group(cli, ["list", "-q"]) == 3
    assert calls == [("dockyard thing list", ["-q"])]


@pytest.mark.parametrize("argv", [[], ["-h"], ["--help"]])
def test_group_help_lists_the_listed_names(argv, capsys):
    group, calls = _group()
    assert group(FakeCli(), argv) == 0
    assert capsys.readouterr().out == (
        "\nUsage:  dockyard thing COMMAND\n\nManage things\n\nCommands:\n  ls  List things\n\n"
        "Run 'dockyard thing COMMAND --help' for more information on a command.\n")
    assert calls == []


def test_group_unknown_subcommand_is_a_usage_error_with_status_1():
    group, _ = _group()
    with pytest.raises(UsageError) as info:
        group(FakeCli(), ["frob"])
    assert info.value.code == 1
    assert info.value.message == ("dockyard: unknown command: dockyard thing frob\n\n"
                                  "Run 'dockyard thing --help' for more information")


@pytest.mark.parametrize("group", ["container", "image", "system", "network", "volume", "checkpoint"])
def test_every_management_command_answers_the_same_way(group, capsys):
    assert run([group]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"\nUsage:  dockyard {group} COMMAND\n")
    assert out.endswith(f"Run 'dockyard {group} COMMAND --help' for more information on a command.\n")
    assert run([group, "frob"]) == 1
    assert capsys.readouterr().err == (f"dockyard: unknown command: dockyard {group} frob\n\n"
                                       f"Run 'dockyard {group} --help' for more information\n")


def test_group_subcommand_help_names_the_full_path(capsys):
    assert run(["network", "list", "--help"]) == 0
    assert "Usage:  dockyard network list [OPTIONS]" in capsys.readouterr().out
    assert run(["container", "ls", "--help"]) == 0
    assert "Usage:  dockyard container ls [OPTIONS]" in capsys.readouterr().out


# ------------------------------------------------------------------ pumps

def test_socket_chunks_yield_the_leftover_then_what_arrives_until_eof():
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"world")
        b.shutdown(socket.SHUT_WR)
        assert b"".join(pumps.socket_chunks(a, b"hello ")) == b"hello world"


def test_pump_output_demultiplexes_or_copies(capfd):
    framed = [stdcopy.encode(1, b"out\n")[:5], stdcopy.encode(1, b"out\n")[5:] + stdcopy.encode(2, b"err\n")]
    pumps.pump_output(iter(framed), framed=True)
    pumps.pump_output(iter([b"raw\n"]), framed=False)
    captured = capfd.readouterr()
    assert captured.out == "out\nraw\n" and captured.err == "err\n"


def test_session_prints_a_daemon_stream_error(capfd):
    a, b = socket.socketpair()
    with a, b:
        b.sendall(stdcopy.encode(1, b"partial\n") + stdcopy.encode(stdcopy.SYSTEMERR, b"boom"))
        b.shutdown(socket.SHUT_WR)
        cli = FakeCli()
        pumps.session(cli, a, b"", tty=False, stdin=False)
    assert capfd.readouterr().out == "partial\n"
    assert cli.errors == ["Error: boom"]


def test_pump_stdin_copies_then_half_closes():
    r, w = os.pipe()
    saved = os.dup(0)
    a, b = socket.socketpair()
    try:
        os.dup2(r, 0)
        os.write(w, b"typed")
        os.close(w)
        pumps.pump_stdin(a)
        received = b""
        while chunk := b.recv(100):   # EOF: the pump shut its write side
            received += chunk
        assert received == b"typed"
        b.sendall(b"the container's output still flows")   # a half close, not a close
        assert a.recv(100) == b"the container's output still flows"
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(r)
        a.close()
        b.close()


# ------------------------------------------------------------------ prune, flags

def test_confirm_accepts_only_yes(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert prune.confirm("WARNING! gone.")
    assert capsys.readouterr().out == "WARNING! gone.\nAre you sure you want to continue? [y/N] "
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert not prune.confirm("WARNING! gone.")


def test_prune_report():
    cli = FakeCli()
    prune.print_deleted(cli, "Volumes", [])
    prune.print_deleted(cli, "Images", prune.image_lines([{"Untagged": "a:1"}, {"Deleted": "sha256:x"}]))
    prune.print_reclaimed(cli, 12345)
    assert cli.lines == ["Deleted Images:\nuntagged: a:1\ndeleted: sha256:x\n", "Total reclaimed space: 12.35kB"]


def test_key_values():
    assert key_values(["a=1", "b", "c=x=y", "a=2"]) == {"a": "2", "b": "", "c": "x=y"}


# ------------------------------------------------------------------ archive, progress

class FakeResponse:
    def __init__(self, parts):
        self.parts = parts
        self.closed = False

    def chunks(self):
        yield from self.parts

    def close(self):
        self.closed = True


def test_archive_goes_to_the_file_only_when_whole(tmp_path):
    target = tmp_path / "out.tar"
    resp = FakeResponse([b"ab", b"cd"])
    archive_out.write(resp, str(target))
    assert target.read_bytes() == b"abcd" and resp.closed
    assert not (tmp_path / "out.tar.dockyard-tmp").exists()


def test_archive_refuses_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    cli = FakeCli()
    assert archive_out.refuse_terminal(cli, None, "no") and cli.errors == ["no"]
    assert not archive_out.refuse_terminal(cli, "file.tar", "no")


def test_json_messages_keep_a_character_split_across_chunks():
    data = '{"stream": "caf\u00e9"}'.encode()
    at = data.index(b"\xc3") + 1
    assert list(json_messages([data[:at], data[at:]])) == [{"stream": "caf\u00e9"}]


# ------------------------------------------------------------------ client

def test_hijack_with_a_json_body(tmp_path):
    path = str(tmp_path / "d.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    seen = {}

    def serve():
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n")
                          if h.lower().startswith(b"content-length"))
            while len(body) < length:
                body += conn.recv(4096)
            seen["head"], seen["body"] = head.decode(), body
            conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                         b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly bytes")
    thread = threading.Thread(target=serve)
    thread.start()
    try:
        sock, leftover, kind = Client(f"unix://{path}").hijack("/exec/abc/start", body={"Tty": True})
        sock.close()
    finally:
        thread.join(5)
        server.close()
    assert leftover == b"early bytes" and kind == stdcopy.RAW
    assert seen["head"].startswith("POST /v") and "/exec/abc/start HTTP/1.1" in seen["head"]
    assert "Upgrade: tcp" in seen["head"] and "Content-Type: application/json" in seen["head"]
    assert seen["body"] == b'{"Tty":true}'


# ------------------------------------------------------------------ many names

def test_each_prints_results_then_the_errors_and_fails_if_any(capsys):
    from dockyard.cli.main import Cli
    from dockyard.client import DaemonError

    def action(name):
        if name.startswith("bad"):
            raise DaemonError(404 if name == "bad404" else 409, f"no {name}")
        return {"a": None, "b": "shown b", "c": ""}[name]
    cli = Cli(None, "dockyard thing rm")
    assert cli.each(["a", "bad404", "b", "bad409", "c"], action) == 1
    out = capsys.readouterr()
    assert out.out == "a\nshown b\n"
    assert out.err == "Error response from daemon: no bad404\nError response from daemon: no bad409\n"
    assert cli.each(["a", "bad404"], action, ignore=lambda err: err.status == 404) == 0
    assert capsys.readouterr().out == "a\n"

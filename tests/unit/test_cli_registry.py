"""CLI pieces for registries: the credentials file and the progress display."""
from __future__ import annotations

import base64
import io
import json

from dockyard.cli import credentials
from dockyard.cli.progress import render


def test_credentials_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_CONFIG", str(tmp_path))
    empty = json.loads(base64.urlsafe_b64decode(credentials.header_for("127.0.0.1:5000")))
    assert empty == {}
    credentials.store("127.0.0.1:5000", "u", "p:w")
    doc = json.loads(base64.urlsafe_b64decode(credentials.header_for("127.0.0.1:5000")))
    assert doc == {"username": "u", "password": "p:w", "serveraddress": "127.0.0.1:5000"}
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o600
    assert credentials.server_key("docker.io") == credentials.INDEX_SERVER
    assert credentials.remove("127.0.0.1:5000") and not credentials.remove("127.0.0.1:5000")


class _Resp:
    def __init__(self, msgs):
        self.data = b"".join(json.dumps(m).encode() + b"\r\n" for m in msgs)

    def chunks(self):
        yield self.data


MSGS = [{"status": "Pulling from app", "id": "1"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaa"},
        {"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "progress": "[=>  ] 5B/10B",
         "id": "aaa"},
        {"status": "Pull complete", "progressDetail": {}, "id": "aaa"},
        {"status": "Digest: sha256:x"}]


def test_plain_output_has_no_progress_lines():
    out = io.StringIO()
    render(_Resp(MSGS), out, tty=False)
    assert out.getvalue() == ("1: Pulling from app\naaa: Pulling fs layer\naaa: Pull complete\n"
                              "Digest: sha256:x\n")


def test_terminal_output_redraws_each_layer_in_place():
    out = io.StringIO()
    render(_Resp(MSGS), out, tty=True)
    text = out.getvalue()
    assert text.count("aaa: ") == 3 and "\x1b[1A" in text        # one line per layer, redrawn
    assert text.endswith("Digest: sha256:x\n")

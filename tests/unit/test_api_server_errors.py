"""The API's one error mapping: a bug is a 500 in Go's generic words with
the traceback in the log; a body of the wrong shape is a 400 before any
handler code sees it."""
import asyncio
import http.client
import json
import logging
import socket
import threading

import pytest

from dockyard.api import server
from dockyard.api.server import route


class _Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self._path)


@pytest.fixture
def sock(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "_ROUTES", [])
    monkeypatch.setattr(server, "_BODY_SCHEMAS", {})

    @route("GET", "/boom")
    async def boom(req):
        raise KeyError("secret python text")

    @route("POST", "/containers/create")
    async def create(req):
        body = await req.json()
        return {"Retries": body["Healthcheck"]["Retries"] + 1}

    path = str(tmp_path / "d.sock")
    loop = asyncio.new_event_loop()
    api = server.ApiServer(None)
    loop.run_until_complete(api.listen_unix(path))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield path
    asyncio.run_coroutine_threadsafe(api.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def call(path, method, target, body=None):
    c = _Unix(path)
    try:
        c.request(method, target, body=None if body is None else json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def test_a_bug_is_a_generic_500_and_a_logged_traceback(sock, caplog):
    with caplog.at_level(logging.ERROR, logger="dockyard.api"):
        status, body = call(sock, "GET", "/v1.50/boom")
    assert (status, body) == (500, {"message": "Internal Server Error"})
    assert "secret python text" in caplog.text and "Traceback" in caplog.text


def test_a_body_of_the_wrong_type_never_reaches_the_handler(sock):
    status, body = call(sock, "POST", "/v1.50/containers/create", {"Healthcheck": {"Retries": [None, None]}})
    assert status == 400
    assert body["message"] == ("invalid Healthcheck: json: cannot unmarshal array into Go struct field "
                               "HealthConfig.Healthcheck.Retries of type int")
    assert call(sock, "POST", "/v1.50/containers/create", {"Healthcheck": {"Retries": 2}}) == (200, {"Retries": 3})

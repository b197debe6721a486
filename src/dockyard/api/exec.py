"""Exec routes: create, start (hijacked like attach), resize, inspect."""
from __future__ import annotations

import asyncio
import contextlib

from ..daemon.exec import StartFailed
from ..errors import InvalidParameter
from .server import Request, Response, json_response, route
from .streams import STDOUT, content_type, frame, parse_detach_keys, pump_attach, wait_client_read_head

# after the output ends, how long to wait for conmon's exit report before
# answering anyway (the CLI inspects the exit code right after)
_EXIT_GRACE = 5.0


@route("POST", "/containers/{id}/exec")
async def create(req: Request):
    c = req.daemon.containers.get(req.match["id"])
    body = await req.json(default=None)
    if not isinstance(body, dict):
        raise InvalidParameter("invalid exec config: want a JSON object")
    ex = req.daemon.execs.create(c, body, req.match["id"])
    return json_response({"Id": ex.id}, 201)


@route("POST", "/exec/{id}/start")
async def start(req: Request):
    d = req.daemon
    ex = d.execs.get(req.match["id"])
    body = await req.json(default={}) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid exec start config: want a JSON object")
    c = d.containers.get(ex.container_id)
    # as moby: the process gets a TTY when the exec was *created* with one; the
    # start's Tty only says how the stream is written (raw, or framed stdout and
    # stderr) and whether its ConsoleSize counts
    raw = bool(body.get("Tty"))
    size = body.get("ConsoleSize")
    size = (int(size[0]), int(size[1])) if (raw and isinstance(size, list) and len(size) == 2 and all(size)
                                             and req.api_at_least("1.42")) else None
    if body.get("Detach"):
        try:
            await d.execs.start(ex, c, attach=False, console_size=size)
        except StartFailed as e:
            raise InvalidParameter(str(e)) from None
        return Response(200, b"", content_type="text/plain")
    # the checks answer with their status; then the stream's head goes out
    # while conmon and the runtime start (the client has read it by the time
    # there is output: wait_client_read_head returns at once)
    d.execs.claim(ex, c, size)
    sock = None
    try:
        reader, writer, early = await req.hijack(content_type(raw, req.api_at_least("1.42")))
    except BaseException:
        # the client went away first: the exec runs all the same (as it did
        # when the head went out after the start), with nobody attached
        with contextlib.suppress(Exception):
            await d.execs.launch(ex, c, attach=False)
        raise
    try:
        try:
            sock = await d.execs.launch(ex, c, attach=True)
        except Exception as e:   # StartFailed: the runtime's refusal; else the daemon's own error
            msg = (str(e) + "\r\n").encode()
            await wait_client_read_head(writer)
            writer.write(msg if raw else frame(STDOUT, msg))
            await writer.drain()
            return
        await wait_client_read_head(writer)
        if early and ex.attach_stdin:
            await asyncio.get_running_loop().sock_sendall(sock, early)
        detached = await pump_attach(sock, reader, writer, tty=ex.tty, raw=raw, want_stdout=ex.attach_stdout,
                                     want_stderr=ex.attach_stderr and not raw, want_stdin=ex.attach_stdin,
                                     detach_keys=parse_detach_keys(ex.detach_keys or "ctrl-p,ctrl-q"),
                                     close_stdin=True)
        if not detached:
            try:
                await asyncio.wait_for(ex.done.wait(), _EXIT_GRACE)
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        if sock is not None:
            sock.close()
        try:
            writer.close()
        except Exception:
            pass


@route("POST", "/exec/{id}/resize")
async def resize(req: Request):
    ex = req.daemon.execs.get(req.match["id"])
    h, w = req.int_param("h"), req.int_param("w")
    if h is None or w is None:
        raise InvalidParameter("resize requires h and w")
    req.daemon.execs.resize(ex, h, w)
    return Response(200, b"", content_type="text/plain")


@route("GET", "/exec/{id}/json")
async def inspect(req: Request):
    out = req.daemon.execs.get(req.match["id"]).to_api()
    out["DetachKeys"] = detach_keys_json(out.get("DetachKeys") or "")
    return out


def detach_keys_json(spec: str) -> str:
    """moby keeps an exec's detach keys as bytes (term.ToBytes), so inspect
    shows them as Go marshals a []byte: base64 ("ctrl-x" -> "GA==", none -> "")."""
    import base64

    from .streams import parse_detach_keys
    try:
        return base64.b64encode(parse_detach_keys(spec) if spec else b"").decode()
    except ValueError:
        return ""

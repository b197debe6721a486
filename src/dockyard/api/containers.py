"""Container routes: translate HTTP to the daemon's verbs and back, nothing else."""
from __future__ import annotations

import asyncio
import json
import time

from .. import filters
from ..daemon import container_filters, networking
from ..daemon import logs as logfile
from ..daemon.start import Trace
from ..errors import Conflict, InvalidParameter, NoSuchContainer
from . import container_views as views
from .server import Request, Response, StreamResponse, json_response, route
from .streams import (RAW, STDERR, STDOUT, content_type, frame, parse_detach_keys, pump_attach,
                      wait_client_read_head)


def _lookup(req: Request, trace: Trace | None = None):
    t0 = time.perf_counter()
    c = req.daemon.containers.get(req.match["id"])
    if trace is not None:
        trace.record("lookup", time.perf_counter() - t0)
    return c


@route("GET", "/containers/json")
async def list_containers(req: Request):
    d = req.daemon
    f = filters.parse(req.param("filters"), container_filters.LIST_FILTERS)
    lookups = container_filters.Lookups(d)
    found = container_filters.select(d, f, show_all=req.bool_param("all"), limit=req.int_param("limit", -1),
                                     lookups=lookups)
    if not req.bool_param("size"):
        return Response(200, views.encoded_summaries(d, found, lookups))
    entries = views.summaries(d, found, lookups)
    await asyncio.to_thread(views.add_sizes, d, found, entries)
    return entries


@route("POST", "/containers/create")
async def create(req: Request):
    body = await req.json(default=None)
    if body is None:
        raise InvalidParameter("Config cannot be empty in order to create a container")
    c = req.daemon.lifecycle.create(body, req.param("name"), api_before_1_44=not req.api_at_least("1.44"))
    return json_response({"Id": c.id, "Warnings": getattr(c, "create_warnings", None) or []}, 201)


@route("GET", "/containers/{id}/json")
async def inspect(req: Request):
    out = views.inspect(req.daemon, _lookup(req), size=req.bool_param("size"))
    if not req.api_at_least("1.45"):
        views.add_legacy_aliases(out)
    return out


@route("POST", "/containers/{id}/start")
async def start(req: Request):
    trace = Trace()
    c = _lookup(req, trace)
    await req.body()  # Docker < 1.24 sent a HostConfig here; ignored now
    if req.param("checkpoint"):
        from ..daemon import checkpoint
        await checkpoint.restore(req.daemon, c, req.match["id"], req.param("checkpoint"),
                                 req.param("checkpoint-dir"), trace)
        return Response(204)
    await req.daemon.lifecycle.start(c, trace)
    return Response(204)


@route("POST", "/containers/{id}/stop")
async def stop(req: Request):
    c = _lookup(req)
    await req.daemon.lifecycle.stop(c, req.int_param("t"), req.param("signal"))
    return Response(204)


@route("POST", "/containers/{id}/kill")
async def kill(req: Request):
    c = _lookup(req)
    await req.daemon.lifecycle.kill(c, req.param("signal"), req.match["id"])
    return Response(204)


@route("POST", "/containers/{id}/restart")
async def restart(req: Request):
    c = _lookup(req)
    await req.daemon.lifecycle.restart(c, req.int_param("t"), req.param("signal"))
    return Response(204)


@route("POST", "/containers/{id}/wait")
async def wait(req: Request):
    c = _lookup(req)
    cond = req.param("condition") or "not-running"
    if cond not in ("not-running", "next-exit", "removed"):
        raise InvalidParameter(f"invalid condition: {cond!r}")
    d = req.daemon

    async def body():
        code = await d.lifecycle.wait(c, cond)
        err = {"Message": c.state.error} if c.state.error else None
        yield json.dumps({"StatusCode": code, "Error": err}).encode() + b"\n"
    return StreamResponse(body(), end_on_close=True)


@route("DELETE", "/containers/{id}")
async def remove(req: Request):
    c = _lookup(req)
    if req.bool_param("link"):
        # moby's words; its 500 is a 409 here: a conflict the client made, not a failure (README)
        raise Conflict("Conflict, cannot remove the default link name of the container")
    await req.daemon.lifecycle.remove(c, force=req.bool_param("force"), volumes=req.bool_param("v"))
    return Response(204)


@route("DELETE", "/containers/{id}/{alias}")
@route("DELETE", "/containers//{id}/{alias}")   # docker-py keeps the link name's leading slash
async def remove_link(req: Request):
    """A legacy link's name "/linking/alias": link=1 removes the link; without it, dockerd
    removes the linked container the name stands for."""
    d, alias = req.daemon, req.match["alias"]
    c = d.containers.find(req.match["id"])
    if c is None:
        raise NoSuchContainer(f"{req.match['id']}/{alias}")
    if req.bool_param("link"):
        await networking.remove_link(d, c, alias)
    else:
        await d.lifecycle.remove(networking.link_target(d, c, alias), force=req.bool_param("force"),
                                 volumes=req.bool_param("v"))
    return Response(204)


@route("POST", "/containers/{id}/rename")
async def rename(req: Request):
    c = _lookup(req)
    new = req.param("name")
    if not new:
        raise InvalidParameter("Neither old nor new names may be empty")
    await req.daemon.lifecycle.rename(c, new)
    return Response(204)


@route("POST", "/containers/prune")
async def prune(req: Request):
    f = filters.parse(req.param("filters"), container_filters.PRUNE_FILTERS)
    return await req.daemon.lifecycle.prune(container_filters.prune_keep(f))


@route("GET", "/containers/{id}/logs")
async def logs(req: Request):
    c = _lookup(req)
    stdout, stderr = req.bool_param("stdout"), req.bool_param("stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")   # moby 28's router
    tail = req.param("tail") or "all"
    try:
        n = -1 if tail == "all" else int(tail)
    except ValueError:
        n = -1
    stamps = req.bool_param("timestamps")
    tty = c.tty
    d = req.daemon
    if (c.host_config.get("LogConfig") or {}).get("Type") == "none":
        from ..errors import NotImplementedYet
        raise NotImplementedYet("configured logging driver does not support reading")
    since, until = logfile.parse_since(req.param("since")), logfile.parse_since(req.param("until"))
    details = b""
    if req.bool_param("details"):
        from ..daemon.logattrs import for_container as log_details
        details = log_details(d, c)   # "k=v,… " before each line, as Docker's --details
    fast = since is None and until is None and not stamps and not details
    batches = logfile.batches(d.paths(c).log_path, stdout=stdout, stderr=stderr, tail=n, since=since, until=until,
                              follow=req.bool_param("follow"), running=lambda: c.state.running,
                              exited=lambda: c.exit_event, raw=fast)

    async def body():
        if fast:
            async for data in batches:
                yield logfile.render(data, stdout=stdout, stderr=stderr, framed=not tty)
            return
        # one write per batch (up to a read block): a 100 MB log is not a million tiny chunks
        async for batch in batches:
            out = []
            for e in batch:
                data = details + e.data if details else e.data
                if stamps:
                    data = e.docker_time().encode() + b" " + data
                out.append(data if tty else frame(STDOUT if e.stream == "stdout" else STDERR, data))
            yield b"".join(out)
    ctype = content_type(tty, req.api_at_least("1.42"))
    return StreamResponse(body(), content_type=ctype)


@route("POST", "/containers/{id}/attach")
async def attach(req: Request):
    d = req.daemon
    from ..errors import Conflict, DockyardError
    try:      # moby's ContainerAttach: the keys, the container, then its state (named as the client did)
        try:
            detach_keys = parse_detach_keys(req.param("detachKeys") or "ctrl-p,ctrl-q")
        except ValueError:
            raise InvalidParameter(f"Invalid detach keys ({req.param('detachKeys')}) provided") from None
        c = _lookup(req)
        ref = req.match["id"]
        if c.state.status == "paused":
            raise Conflict(f"container {ref} is paused, unpause the container before attach")
        if c.state.status in ("removing", "dead"):
            raise Conflict(f"container {c.id} is marked for removal and cannot be attached")
    except DockyardError as e:
        # moby's router writes a refused attach's error as text on the connection it took over
        # (its status, a raw-stream type, the message and CRLF), never as a JSON body
        return Response(e.status, (e.message + "\r\n").encode(), content_type=RAW)
    want_stdin = req.bool_param("stdin") and bool(c.config.get("OpenStdin"))
    want_out, want_err = req.bool_param("stdout"), req.bool_param("stderr")
    stream, with_logs = req.bool_param("stream"), req.bool_param("logs")
    tty = c.tty
    reader, writer, _early = await req.hijack(content_type(tty, req.api_at_least("1.42")))
    await wait_client_read_head(writer)
    d.event(c, "attach")
    try:
        if with_logs:
            async for e in logfile.follow(d.paths(c).log_path, stdout=want_out, stderr=want_err):
                writer.write(e.data if tty else frame(STDOUT if e.stream == "stdout" else STDERR, e.data))
            await writer.drain()
        if not stream:
            return
        sock = None
        if c.state.running:
            try:
                sock = d.attach.connect(c, d.paths(c))
            except OSError:
                sock = None
        elif c.state.status in ("created", "exited", "restarting"):
            # Wait for start. A client EOF here is a half-close (the docker CLI
            # closes its write side at once without -i), not a hang-up.
            fut = d.attach.wait_for_start(c.id)
            try:
                sock = await fut
            except Exception:
                sock = None
            finally:
                d.attach.cancel(c.id, fut)
        if sock is None:
            return
        if _early and want_stdin:
            await asyncio.get_running_loop().sock_sendall(sock, _early)
        detached = await pump_attach(sock, reader, writer, tty=tty, want_stdout=want_out, want_stderr=want_err,
                          want_stdin=want_stdin, detach_keys=detach_keys,
                          close_stdin=bool(c.config.get("StdinOnce")) and not tty)
        if detached:
            d.event(c, "detach")
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


@route("POST", "/containers/{id}/resize")
async def resize(req: Request):
    from ..daemon.tty import resize_container
    h, w = req.int_param("h"), req.int_param("w")
    if h is None or w is None:
        raise InvalidParameter("resize requires h and w")
    resize_container(req.daemon, _lookup(req), h, w)
    return Response(200, b"", content_type="text/plain")

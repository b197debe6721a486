"""Attach to a container, start it if asked, stream until the stream
ends, return its exit code: `run`, `start -a` and `attach`.

The order is docker's: the attach stream hijacked and `wait` registered
(its head read) before the start, so neither early output nor a fast exit
is missed. Docker makes the two calls one after the other; here both are
in flight at once (one round trip for both), the attach on the connection
`create` left open when there is one. The streaming itself is pumps.session.
"""
from __future__ import annotations

from .pumps import SignalProxy, session


def wait_exit_code(result: object, err) -> int:
    """Exit status from wait's body; docker exits 125 when waiting failed."""
    if not isinstance(result, dict):
        err("Error waiting for container: no exit status received")
        return 125
    error = result.get("Error") or {}
    message = error.get("Message") if isinstance(error, dict) else str(error)
    if message:
        err(f"Error waiting for container: {message}")
        return 125
    return int(result.get("StatusCode", 0))


def attach_and_wait(cli, container_id: str, *, tty: bool, stdin: bool, sig_proxy: bool,
                    auto_remove: bool = False, detach_keys: str | None = None, start=None) -> int:
    """Stream a container's I/O until its stream ends; returns its exit status.

    With `start`, it is called once attached and waiting (raising
    DaemonError; its errors propagate after the streams are closed, so
    callers choose the exit code). Without it the container already runs
    (`dockyard attach`), and a stream that ends while the container still
    runs means we detached with the detach keys: status 0."""
    client = cli.client
    query = {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1, "stderr": 1,
             "detachKeys": detach_keys or None}
    attaching = client.send_hijack(f"/containers/{container_id}/attach", query, reuse=True)
    condition = "removed" if auto_remove else "next-exit"
    try:
        waiting = client.send("POST", f"/containers/{container_id}/wait", {"condition": condition})
    except BaseException:
        attaching.sock.close()
        raise
    sock = waiter = None
    try:
        sock, leftover, _ = attaching.upgraded(f"/containers/{container_id}/attach")
        waiter = client.checked(waiting.response())
        if start is not None:
            start()
        session(cli, sock, leftover, tty=tty, stdin=stdin,
                resize=lambda h, w: client.call("POST", f"/containers/{container_id}/resize",
                                                {"h": h, "w": w}).close(),
                signal_proxy=SignalProxy(client, container_id, cli.err) if sig_proxy else None)
        sock.close()
        if start is None and (client.get(f"/containers/{container_id}/json").get("State") or {}).get("Running"):
            return 0   # detached with the detach keys
        return wait_exit_code(waiter.json(), cli.err)
    finally:
        if sock is not None:
            sock.close()
        if waiter is not None:
            waiter.close()
        else:
            waiting.sock.close()

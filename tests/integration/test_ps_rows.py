"""`GET /containers/json` encodes each row once and reuses it while nothing it
shows has changed (api/container_views.py encoded_summaries): the listing
must follow every change all the same (state, name, networks, a network
made again under the same name, the clock in Status) and be the same JSON
as the uncached `size=1` listing without its two size fields."""
from __future__ import annotations

import json
import secrets
import time


def _rows(daemon, query: str = "all=1") -> dict[str, dict]:
    st, body = daemon.api("GET", f"/containers/json?{query}")
    assert st == 200, body
    return {r["Id"]: r for r in json.loads(body)}


def test_rows_follow_every_change(daemon, bb_image):
    tag = secrets.token_hex(3)
    name, net = f"psr-{tag}", f"psrn-{tag}"
    daemon.docker("network", "create", net)
    cid = daemon.docker("create", "--name", name, "--network", net, bb_image, "sleep", "1000").stdout.strip()
    try:
        row = _rows(daemon)[cid]
        assert row["State"] == "created" and row["Status"] == "Created"
        first_id = row["NetworkSettings"]["Networks"][net]["NetworkID"]
        # the network made again under the same name: the row shows the new one's id
        daemon.docker("network", "rm", net)
        daemon.docker("network", "create", net)
        new_id = _rows(daemon)[cid]["NetworkSettings"]["Networks"][net]["NetworkID"]
        assert new_id and new_id != first_id
        daemon.docker("start", cid)
        row = _rows(daemon)[cid]
        assert row["State"] == "running" and row["Status"].startswith("Up ")
        assert row["NetworkSettings"]["Networks"][net]["IPAddress"]
        time.sleep(2.1)
        assert _rows(daemon)[cid]["Status"] != row["Status"]       # the clock moves, the row follows
        daemon.docker("rename", cid, name + "-b")
        assert _rows(daemon)[cid]["Names"] == [f"/{name}-b"]
        daemon.docker("network", "connect", "bridge", cid)        # running: an endpoint more
        assert set(_rows(daemon)[cid]["NetworkSettings"]["Networks"]) == {net, "bridge"}
        daemon.docker("network", "disconnect", "bridge", cid)
        assert set(_rows(daemon)[cid]["NetworkSettings"]["Networks"]) == {net}
        daemon.docker("stop", "-t", "0", cid)
        row = _rows(daemon)[cid]
        assert row["State"] == "exited" and row["Status"].startswith("Exited (")
        assert row["NetworkSettings"]["Networks"][net]["IPAddress"] == ""
        # the cached listing is the uncached one, less its sizes
        sized = _rows(daemon, "all=1&size=1")[cid]
        assert sized.pop("SizeRw") is not None and sized.pop("SizeRootFs") is not None
        assert sized == _rows(daemon)[cid]
    finally:
        daemon.docker("rm", "-f", cid, check=False)
        daemon.docker("network", "rm", net, check=False)
    assert cid not in _rows(daemon)


def test_a_label_cannot_pass_for_the_status(daemon, bb_image):
    name = f"psl-{secrets.token_hex(3)}"
    cid = daemon.docker("create", "--name", name, "-l", 'Status="x"', "-l", "Status=null",
                        bb_image, "true").stdout.strip()
    try:
        row = _rows(daemon)[cid]
        assert row["Status"] == "Created" and row["Labels"]["Status"] == "null"
    finally:
        daemon.docker("rm", "-f", cid, check=False)

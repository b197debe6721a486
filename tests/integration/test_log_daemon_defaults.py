"""`dockyardd --log-driver local --log-opt ...`: the daemon's default log
driver and options, merged into each container's LogConfig as moby does,
rotation by them, and Docker's option validation per driver (issue 4)."""
from __future__ import annotations

import json
import os
import secrets

import pytest

from conftest import running_daemon


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    """This module's own dockyardd, with a non-default log driver and options."""
    yield from running_daemon(request, tmp_path_factory, label="dockyardd-logdefaults",
                              extra_args=("--log-driver", "local", "--log-opt", "max-size=64k",
                                          "--log-opt", "max-file=2"))


def _log_config(daemon, name: str) -> dict:
    return json.loads(daemon.docker("inspect", name).stdout)[0]["HostConfig"]["LogConfig"]


def test_daemon_default_driver_and_opts_rotate(daemon, bb_image):
    assert daemon.docker("info", "--format", "{{.LoggingDriver}}").stdout.strip() == "local"
    name = "ld-" + secrets.token_hex(3)
    # ~400 KB through 64 KB files, at most 2 kept: 8 bursts of ~50 KB with pauses, since the
    # daemon rotates after the fact (a burst written at once may overshoot max-size, see README)
    script = ("for b in 0 1 2 3 4 5 6 7; do awk -v b=$b "
              "'BEGIN{for(i=b*4000;i<(b+1)*4000;i++) printf \"line %d\\n\", i}'; sleep 0.3; done")
    daemon.docker("run", "--name", name, bb_image, "sh", "-c", script, timeout=60)
    try:
        assert _log_config(daemon, name) == {"Type": "local", "Config": {"max-size": "64k", "max-file": "2"}}
        log_path = json.loads(daemon.docker("inspect", name).stdout)[0]["LogPath"]
        base = os.path.basename(log_path)
        kept = [f for f in os.listdir(os.path.dirname(log_path))
                if f == base or (f.startswith(base + ".") and f[len(base) + 1:].isdigit())]
        assert 1 <= len(kept) <= 2
        nums = [int(l.split()[1]) for l in daemon.docker("logs", name).stdout.splitlines()]
        assert nums[-1] == 31999 and nums == list(range(nums[0], 32000))
        assert nums[0] > 0                          # the oldest lines were rotated away
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_container_opts_merge_with_the_daemons(daemon, bb_image):
    made = []
    try:
        def create(*args: str) -> dict:
            cid = daemon.docker("create", *args, bb_image, "true").stdout.strip()
            made.append(cid)
            return _log_config(daemon, cid)
        # the daemon's driver, named or not: its options fill in what the container leaves out
        assert create("--log-opt", "max-file=3") == {"Type": "local", "Config": {"max-size": "64k", "max-file": "3"}}
        assert create("--log-driver", "local") == {"Type": "local", "Config": {"max-size": "64k", "max-file": "2"}}
        # another driver gets none of them
        assert create("--log-driver", "json-file") == {"Type": "json-file", "Config": {}}
        # moby's options for every driver
        assert create("--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=1m")["Config"] == {
            "max-size": "64k", "max-file": "2", "mode": "non-blocking", "max-buffer-size": "1m"}
        # the daemon validates no option of `none` (the docker CLI refuses them itself)
        st, body = daemon.api("POST", "/containers/create", {
            "Image": bb_image, "Cmd": ["true"], "HostConfig": {"LogConfig": {"Type": "none", "Config": {"k": "v"}}}})
        assert st == 201, body
        made.append(json.loads(body)["Id"])
        assert _log_config(daemon, made[-1]) == {"Type": "none", "Config": {"k": "v"}}
    finally:
        for cid in made:
            daemon.docker("rm", "-f", cid, check=False)
    for args, message in (
            (("--log-opt", "tag=x"), "unknown log opt 'tag' for log driver local"),
            (("--log-opt", "mode=fast"), "logger: logging mode not supported: fast"),
            (("--log-opt", "max-buffer-size=1m"), "max-buffer-size option is only supported with 'mode=non-blocking'")):
        r = daemon.docker("create", *args, bb_image, "true", check=False)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)

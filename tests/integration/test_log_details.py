"""`docker logs --details` with the json-file options labels, labels-regex,
env, env-regex and tag (daemon/logattrs.py), through the real docker CLI."""
from __future__ import annotations

import json
import re
import secrets


def uname(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def test_details_print_the_chosen_labels_env_and_tag(daemon, bb_image):
    name = uname("det")
    daemon.docker("run", "--name", name, "--log-opt", "labels=foo,absent", "--label", "foo=bar",
                  "--label", "unlisted=1", "--log-opt", "env=E", "-e", "E=x y", "-e", "F=no",
                  "--log-opt", "tag={{.Name}}/{{.ImageName}}", bb_image,
                  "sh", "-c", "echo hi; echo oops >&2; echo bye")
    try:
        r = daemon.docker("logs", "--details", name)
        # sorted by key, values query-escaped (space is +, / is %2F), one space before the line
        want = f"E=x+y,foo=bar,tag={name}%2Fbb "
        assert r.stdout == f"{want}hi\n{want}bye\n"
        assert r.stderr == f"{want}oops\n"
        assert daemon.docker("logs", name).stdout == "hi\nbye\n"   # only with --details
        r = daemon.docker("logs", "--details", "-t", name)   # the time first, then the attributes
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z "
        assert re.fullmatch(f"{stamp}{re.escape(want)}hi\n{stamp}{re.escape(want)}bye\n", r.stdout), r.stdout
        opts = json.loads(daemon.docker("inspect", name).stdout)[0]["HostConfig"]["LogConfig"]["Config"]
        assert opts == {"labels": "foo,absent", "env": "E", "tag": "{{.Name}}/{{.ImageName}}"}
    finally:
        daemon.docker("rm", "-f", name)


def test_details_regex_options_tty_and_no_attributes(daemon, bb_image):
    plain, rx = uname("detp"), uname("detr")
    daemon.docker("run", "--name", plain, bb_image, "echo", "hi")
    daemon.docker("run", "--name", rx, "-t", "--log-opt", "env-regex=^APP_", "--log-opt", "labels-regex=^com\\.",
                  "-e", "APP_A=1", "-e", "APP_B=2", "-e", "OTHER=3", "--label", "com.x=y", "--label", "org.z=w",
                  bb_image, "echo", "tty")
    try:
        assert daemon.docker("logs", "--details", plain).stdout == " hi\n"   # Docker's lone space
        out = daemon.docker("logs", "--details", rx).stdout   # (text mode: a pty's \r\n reads as \n)
        assert out == "APP_A=1,APP_B=2,com.x=y tty\n"
    finally:
        daemon.docker("rm", "-f", plain, rx)


def test_bad_regex_or_tag_is_refused_at_create_and_leaves_nothing(daemon, bb_image):
    before = daemon.docker("ps", "-aq").stdout
    for opt, words in (("env-regex=(", "env-regex"), ("tag={{.Nope}}", "can't evaluate field Nope")):
        r = daemon.docker("run", "--log-opt", opt, bb_image, "true", check=False)
        assert r.returncode != 0 and words in r.stderr, r.stderr
    assert daemon.docker("ps", "-aq").stdout == before

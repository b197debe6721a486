"""Log attributes for `docker logs --details` (daemon/logattrs.py): moby's
ExtraAttributes, the tag template and attrsByteSlice's formatting."""
import socket

import pytest

from dockyard.daemon import logattrs
from dockyard.daemon.logconfig import resolve
from dockyard.errors import InvalidParameter

CID = "0123456789abcdef" * 4


def info(**opts):
    return logattrs.Info(opts=opts, container_id=CID, container_name="/web", entrypoint="sh",
                         args=["-c", "echo hi"], image_id="sha256:" + "fe" * 32, image_name="bb",
                         env=["E=x", "PATH=/bin", "EMPTY=", "BARE", "EQ=a=b"],
                         labels={"foo": "bar", "team": "x y", "other": "o"}, log_path="/l/ctr.log")


def test_prefix_is_sorted_query_escaped_and_ends_with_a_space():
    assert logattrs.details_prefix({"foo": "bar", "E": "x"}) == b"E=x,foo=bar "
    # Go's url.QueryEscape: space is "+", everything but [A-Za-z0-9-_.~] is %XX
    assert logattrs.details_prefix({"a b": "c/d,e=f~_.-"}) == b"a+b=c%2Fd%2Ce%3Df~_.- "
    assert logattrs.details_prefix({"k": "é"}) == b"k=%C3%A9 "
    assert logattrs.details_prefix({}) == b" "   # Docker prints a lone space without attributes


def test_labels_and_env_pick_only_what_exists():
    assert logattrs.attributes(info(labels="foo,missing,team", env="E,NOPE,EMPTY,BARE,EQ")) == \
        {"foo": "bar", "team": "x y", "E": "x", "EMPTY": "", "EQ": "a=b"}
    assert logattrs.attributes(info()) == {}
    assert logattrs.attributes(info(labels="", env="")) == {}


def test_regex_options_search_unanchored_and_env_wins_over_labels():
    assert logattrs.attributes(info(**{"labels-regex": "^t"})) == {"team": "x y"}
    assert logattrs.attributes(info(**{"env-regex": "E"})) == {"E": "x", "EMPTY": "", "EQ": "a=b"}
    i = info(labels="foo", env="foo")
    i.env.append("foo=from-env")
    assert logattrs.attributes(i) == {"foo": "from-env"}


def test_tag_template_fields_and_literal_text():
    assert logattrs.attributes(info(tag="{{.ID}}")) == {"tag": CID[:12]}
    assert logattrs.attributes(info(tag="app/{{.Name}}/{{ .ImageName }}:{{.ImageID}}")) == \
        {"tag": "app/web/bb:" + "fe" * 6}
    assert logattrs.render_tag("{{.FullID}} {{.Command}} {{.DaemonName}}", info()) == f"{CID} sh -c echo hi docker"
    assert logattrs.render_tag("{{.Hostname}}", info()) == socket.gethostname()
    assert logattrs.render_tag("{{.ContainerName}}", info()) == "/web"
    assert logattrs.render_tag("plain", info()) == "plain"
    assert logattrs.details_prefix(logattrs.attributes(info(tag="{{.Name}}", labels="foo"))) == b"foo=bar,tag=web "


def test_bad_regex_and_tag_are_refused_at_create():
    with pytest.raises(InvalidParameter, match="env-regex"):
        resolve({"Type": "json-file", "Config": {"env-regex": "("}})
    with pytest.raises(InvalidParameter, match="labels-regex"):
        resolve({"Type": "json-file", "Config": {"labels-regex": "[a"}})
    with pytest.raises(InvalidParameter, match="can't evaluate field Nope"):
        resolve({"Type": "json-file", "Config": {"tag": "{{.Nope}}"}})
    with pytest.raises(InvalidParameter, match="unsupported template action"):
        resolve({"Type": "json-file", "Config": {"tag": "{{json .Name}}"}})
    ok = {"labels": "a,b", "env": "E", "env-regex": "^X", "labels-regex": "x", "tag": "{{.Name}}"}
    assert resolve({"Type": "json-file", "Config": ok})["Config"] == ok


def test_created_env_is_the_request_then_the_image_it_did_not_set():
    assert logattrs.created_env(["A=1", "P=mine"], ["P=/bin", "Z=2"]) == ["A=1", "P=mine", "Z=2"]
    assert logattrs.created_env(None, None) == []

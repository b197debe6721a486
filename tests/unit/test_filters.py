"""dockyard.filters: the `filters` query as moby reads it (every malformed
form a 400 `invalid filter`), MatchKVList, bool values, until."""
from __future__ import annotations

import time

import pytest

from dockyard import filters
from dockyard.errors import InvalidParameter


@pytest.mark.parametrize("text", [
    "1", "1e100", "true", "false", "null0", "[1]", "[]", '"label"', "{", "{'a': 1}", "NaN",
    '{"label": "a=b"}', '{"label": 1}', '{"label": [1]}', '{"label": {"a": 1}}', '{"label": {"a": "yes"}}',
    '{"label": ["a"], "name": {"x": true}}',          # the two forms mixed: neither decodes in Go
])
def test_malformed_is_invalid_filter(text):
    with pytest.raises(InvalidParameter) as e:
        filters.parse(text)
    assert str(e.value) == "invalid filter" and e.value.status == 400


def test_both_forms_and_empty():
    assert filters.parse(None) == {} and filters.parse("") == {} and filters.parse("null") == {}
    assert filters.parse("{}") == {}
    assert filters.parse('{"label": {"a=b": true, "c": true}}') == {"label": ["a=b", "c"]}
    assert filters.parse('{"label": ["a=b", "c", "c"]}') == {"label": ["a=b", "c"]}
    assert filters.parse('{"label": null, "name": {"x": null}}') == {"label": [], "name": ["x"]}
    # moby's Get lists a set's keys whatever their bool
    assert filters.parse('{"name": {"x": false}}') == {"name": ["x"]}
    assert filters.normalize({"label": ["a"]}) == {"label": ["a"]}


def test_unknown_key_is_named():
    with pytest.raises(InvalidParameter, match="^invalid filter 'bogus'$"):
        filters.parse('{"bogus": ["x"]}', {"label"})
    assert filters.parse('{"label": ["x"]}', {"label"}) == {"label": ["x"]}


@pytest.mark.parametrize("wanted, labels, ok", [
    ([], {}, True),
    ([], {"a": "1"}, True),
    (["a"], {}, False),
    (["a"], None, False),
    (["a"], {"a": ""}, True),
    (["a="], {"a": ""}, True),
    (["a="], {"a": "1"}, False),
    (["a=1"], {"a": "1"}, True),
    (["a=1"], {"a": "2"}, False),
    (["a=1=2"], {"a": "1=2"}, True),
    (["a", "b=2"], {"a": "x", "b": "2"}, True),
    (["a", "b=2"], {"a": "x"}, False),
    (["b"], {"a": "x"}, False),
])
def test_match_kv_list(wanted, labels, ok):
    assert filters.match_kv_list(wanted, labels) is ok


def test_labels_and_prune_labels():
    assert filters.labels_match({}, None)
    assert filters.labels_match({"label": ["a"]}, {"a": "1"})
    f = {"label": ["keep"], "label!": ["x=1", "y"]}
    assert filters.prune_labels_match(f, {"keep": "", "x": "1"})          # not every label! holds
    assert not filters.prune_labels_match(f, {"keep": "", "x": "1", "y": ""})
    assert not filters.prune_labels_match(f, {"x": "1"})                  # label fails
    assert filters.prune_labels_match({"label!": ["x"]}, {})
    assert not filters.prune_labels_match({"label!": ["x"]}, {"x": "2"})


def test_bool_value():
    assert filters.bool_value({}, "dangling") is None
    assert filters.bool_value({"dangling": ["true"]}, "dangling") is True
    assert filters.bool_value({"dangling": ["1"]}, "dangling") is True
    assert filters.bool_value({"dangling": ["false"]}, "dangling") is False
    assert filters.bool_value({"dangling": ["0", "false"]}, "dangling") is False
    with pytest.raises(InvalidParameter, match="^invalid filter 'dangling=maybe'$"):
        filters.bool_value({"dangling": ["maybe"]}, "dangling")
    with pytest.raises(InvalidParameter, match="^invalid filter 'dangling=true,0'$"):
        filters.bool_value({"dangling": ["true", "0"]}, "dangling")
    with pytest.raises(InvalidParameter, match="^invalid filter 'dangling'$"):
        filters.bool_value({"dangling": []}, "dangling")


def test_until_limits():
    assert filters.until_limits({}) == []
    assert filters.until_limits({"until": ["1700000000"]}) == [1_700_000_000 * 10 ** 9]
    assert filters.until_limits({"until": ["2023-11-14T22:13:20Z"]}) == [1_700_000_000 * 10 ** 9]
    (ns,) = filters.until_limits({"until": ["1h"]})
    assert abs(ns - (time.time_ns() - 3600 * 10 ** 9)) < 5 * 10 ** 9
    with pytest.raises(InvalidParameter, match="^invalid until filter: soon$"):
        filters.until_limits({"until": ["soon"]})

"""cri/cnitemplate.py: the text/template subset UpdateRuntimeConfig renders
containerd-style CNI config templates with, and containerd's routes."""
from __future__ import annotations

import json

import pytest

from dockyard.cri.cnitemplate import TemplateError, render, routes_for, template_data, write_conf

# containerd's own example template (docs/cni.md shape): ranges and routes by index
CONTAINERD_STYLE = """{{- /*gotype: github.com/containerd/cri/pkg/server.cniConfigTemplate*/ -}}
{
  "name": "k8s-pod-network", "cniVersion": "0.3.1",
  "plugins": [{"type": "ptp", "ipam": {"type": "host-local",
    "ranges": [
      {{range $i, $range := .PodCIDRRanges}}{{if $i}},
      {{end}}[{"subnet": "{{$range}}"}]
      {{end}}
    ],
    "routes": [
      {{range $i, $route := .Routes}}{{if $i}},
      {{end}}{"dst": "{{$route}}"}
      {{end}}
    ]}}, {"type": "portmap", "capabilities": {"portMappings": true}}]
}"""


def test_containerd_style_template_renders_valid_json():
    conf = json.loads(render(CONTAINERD_STYLE, template_data("10.1.0.0/24,fd00::/64")))
    ipam = conf["plugins"][0]["ipam"]
    assert ipam["ranges"] == [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]
    assert ipam["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]


def test_fields_dot_else_and_trims():
    data = template_data(" 10.2.0.0/16 ")
    assert data == {"PodCIDR": "10.2.0.0/16", "PodCIDRRanges": ["10.2.0.0/16"], "Routes": ["0.0.0.0/0"]}
    assert render("a {{- .PodCIDR -}} b", data) == "a10.2.0.0/16b"
    assert render("{{.Routes}}", template_data("10.0.0.0/8,fd00::/8")) == "[0.0.0.0/0 ::/0]"   # Go's %v of a slice
    assert render("{{range .Routes}}<{{.}}>{{end}}", data) == "<0.0.0.0/0>"
    assert render("{{range $r := .Routes}}{{$r}}{{$.PodCIDR}}{{end}}", data) == "0.0.0.0/010.2.0.0/16"
    assert render("{{range .Nope}}x{{else}}none{{end}}", {"Nope": []}) == "none"
    assert render("{{if .PodCIDR}}y{{else}}n{{end}}", data) == "y"


@pytest.mark.parametrize("bad", ["{{.Missing}}", "{{range .PodCIDR}}{{end}}", "{{if .PodCIDR}}", "{{end}}",
                                 "{{printf \"%s\" .PodCIDR}}", "{{$x}}", "{{ .PodCIDR"])
def test_what_the_subset_does_not_have_is_an_error(bad):
    with pytest.raises(TemplateError):
        render(bad, template_data("10.0.0.0/8"))


def test_routes_as_containerd():
    assert routes_for(["10.0.0.0/8"]) == ["0.0.0.0/0"]
    assert routes_for(["fd00::/8"]) == ["::/0"]
    with pytest.raises(ValueError):
        routes_for(["10.0.0.0/33"])


def test_write_conf_replaces_atomically(tmp_path):
    tpl = tmp_path / "t.tmpl"
    tpl.write_text('{"subnet": "{{.PodCIDR}}"}')
    conf_dir = tmp_path / "net.d"
    path = write_conf(str(tpl), str(conf_dir), "10.3.0.0/24")
    assert path == str(conf_dir / "10-dockyard-net.conflist")
    assert json.loads(open(path).read()) == {"subnet": "10.3.0.0/24"}
    write_conf(str(tpl), str(conf_dir), "10.4.0.0/24")
    assert json.loads(open(path).read()) == {"subnet": "10.4.0.0/24"}
    assert sorted(p.name for p in conf_dir.iterdir()) == ["10-dockyard-net.conflist"]
    tpl.write_text("{{.Nope}}")
    with pytest.raises(TemplateError, match="failed to parse cni config template"):
        write_conf(str(tpl), str(conf_dir), "10.5.0.0/24")
    assert sorted(p.name for p in conf_dir.iterdir()) == ["10-dockyard-net.conflist"]

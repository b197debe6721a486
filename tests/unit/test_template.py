"""The Go text/template subset behind --format."""
import pytest

from dockyard.cli.template import TemplateError, go_float, render

CONTAINER = {
    "Id": "abc123",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0, "Error": ""},
    "Config": {"Labels": {"com.example": "yes", "tier": "front"}, "Env": ["A=1", "B=2"], "Tty": False},
    "Mounts": [{"Source": "/src", "Destination": "/dst"}, {"Source": "/a", "Destination": "/b"}],
    "StartTrace": {"Started": "2025-01-01T00:00:00Z", "TotalMs": 12.3, "Ok": True,
                   "Steps": [{"Step": "lookup", "Ms": 0.1, "Ok": True, "Error": ""}],
                   "FailedStep": "", "Error": ""},
    "Nothing": None,
}


@pytest.mark.parametrize("text, expected", [
    ("{{.Name}}", "/web"),
    ("{{ .Name }}", "/web"),
    ("{{.State.Pid}}", "4242"),
    ("{{.State.Running}}", "true"),
    ("id={{.Id}} pid={{.State.Pid}}\n", "id=abc123 pid=4242\n"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Missing.Deeper}}", "<no value>"),
    ("{{.Nothing}}", "<no value>"),
    ("{{.State.Error}}", ""),
    ("{{json .Config.Env}}", '["A=1","B=2"]'),
    ("{{json .Nothing}}", "null"),
    ("{{json .Name}}", '"/web"'),
    ('{{index .Config.Labels "tier"}}', "front"),
    ('[{{index .Config.Labels "absent"}}]', "[]"),
    ("{{index .Mounts 1}}", "map[Destination:/b Source:/a]"),
    ("{{(index .Mounts 1).Source}}", "/a"),
    ("{{range .Mounts}}{{.Source}}->{{.Destination}};{{end}}", "/src->/dst;/a->/b;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "com.example=yes tier=front "),
    ("{{range $m := .Mounts}}{{$m.Destination}}{{end}}", "/dst/b"),
    ("{{range .Mounts}}{{$.Name}}{{end}}", "/web/web"),
    ("{{range .Missing}}x{{else}}empty{{end}}", "empty"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ('{{if eq .State.Status "exited"}}e{{else if eq .State.Status "running"}}r{{else}}?{{end}}', "r"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{lower .State.Status | upper}}", "RUNNING"),
    ("{{upper .Name}}", "/WEB"),
    ('{{join .Config.Env ","}}', "A=1,B=2"),
    ('{{split "a:b" ":"}}', "[a b]"),
    ("{{len .Mounts}}", "2"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Labels}}", "map[com.example:yes tier:front]"),
    ('{{printf "%s/%d" .Name .State.Pid}}', "/web/4242"),
    ("{{range .Mounts -}}\n  {{.Source}}\n{{- end}}", "/src/a"),
    ("a {{/* a comment */}}b", "a b"),
    ("{{$n := .Name}}{{$n}}", "/web"),
    ("{{.StartTrace.TotalMs}}", "12.3"),
    ("{{not .State.Running}}", "false"),
])
def test_render(text, expected):
    assert render(text, CONTAINER) == expected


def test_json_of_a_nested_object_keeps_its_key_order_and_is_compact():
    assert render("{{json .StartTrace}}", CONTAINER) == (
        '{"Started":"2025-01-01T00:00:00Z","TotalMs":12.3,"Ok":true,'
        '"Steps":[{"Step":"lookup","Ms":0.1,"Ok":true,"Error":""}],"FailedStep":"","Error":""}')


def test_json_of_dot_is_the_whole_object():
    import json
    assert json.loads(render("{{json .}}", CONTAINER)) == CONTAINER


def test_json_does_not_escape_html_like_docker():
    assert render("{{json .}}", {"a": "<&>"}) == '{"a":"<&>"}'


def test_methods_on_the_data_can_take_arguments():
    class Row(dict):
        def Label(self, key):  # noqa: N802
            return {"k": "v"}.get(key, "")
    assert render('{{.Label "k"}}|{{.Label "x"}}', Row()) == "v|"


@pytest.mark.parametrize("text, message", [
    ("{{.Name", "unclosed action"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{if .Name}}x", "unexpected EOF"),
    ("{{nosuch .Name}}", 'function "nosuch" not defined'),
    ("{{.Mounts.Source}}", "can't evaluate field Source"),
    ("{{$undefined}}", 'undefined variable "$undefined"'),
])
def test_errors(text, message):
    with pytest.raises(TemplateError, match=message.replace("$", r"\$").replace("{", r"\{").replace("}", r"\}")):
        render(text, CONTAINER)


@pytest.mark.parametrize("value, expected", [
    (12.3, "12.3"), (5.0, "5"), (0.0, "0"), (0.0001, "0.0001"), (1e-05, "1e-05"),
    (999999.0, "999999"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (-0.5, "-0.5"),
    (123456.7, "123456.7"), (1.5e16, "1.5e+16"),
])
def test_floats_print_like_go(value, expected):
    assert go_float(value) == expected

"""UpdateRuntimeConfig's pod CIDR, as containerd takes it: the kubelet's
pod_cidr ("10.88.0.0/16" or a comma-separated v4,v6 pair) is parsed, and
when a CNI config template is configured (containerd's
`cni.conf_template`; dockyard's --cni-conf-template / daemon.json
"cni-conf-template") and the CNI has no usable network yet, the template is
rendered into the conf dir as 10-dockyard-net.conflist (containerd:
10-containerd-net.conflist). The CNI client reads the conf dir on every
call, so the next RunPodSandbox uses it (containerd's "reload").

containerd renders with Go's text/template and these fields: .PodCIDR (the
first CIDR), .PodCIDRRanges (all of them), .Routes (0.0.0.0/0 and/or ::/0,
one per address family present). This is the subset of text/template such
templates use: {{.Field}}, {{$var}}, {{.}}, {{range .Field}} and
{{range $i, $v := .Field}} with {{else}}, {{if EXPR}} / {{else}} / {{end}},
{{/* comments */}} and the {{- -}} whitespace trims; anything else is
refused as a template error."""
from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from typing import Any

CONF_NAME = "10-dockyard-net.conflist"


class TemplateError(ValueError):
    pass


def routes_for(cidrs: list[str]) -> list[str]:
    """containerd's getRoutes: a default route per family of the CIDRs
    (ValueError for a CIDR that does not parse)."""
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    out = []
    if any(n.version == 4 for n in nets):
        out.append("0.0.0.0/0")
    if any(n.version == 6 for n in nets):
        out.append("::/0")
    return out


def template_data(pod_cidr: str) -> dict:
    cidrs = [c.strip() for c in pod_cidr.split(",")]
    return {"PodCIDR": cidrs[0], "PodCIDRRanges": cidrs, "Routes": routes_for(cidrs)}


# ---------------------------------------------------------------- the template subset

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_RANGE = re.compile(r"range\s+(?:(\$\w+)\s*(?:,\s*(\$\w+)\s*)?:=\s*)?(\S+)$")


def _tokens(text: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", body)], the trims applied."""
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        out.append(("text", chunk))
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            out.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    chunk = text[pos:]
    out.append(("text", chunk.lstrip() if trim_next else chunk))
    if "{{" in "".join(t for k, t in out if k == "text"):
        raise TemplateError("unclosed action")
    return out


def _parse(tokens: list[tuple[str, str]], i: int, closers: tuple[str, ...]) -> tuple[list, int, str]:
    """Nodes up to one of `closers` ("end", "else"): (nodes, next index, closer)."""
    nodes: list = []
    while i < len(tokens):
        kind, body = tokens[i]
        i += 1
        if kind == "text":
            if body:
                nodes.append(("text", body))
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("end", "else") and body == word:
            if word not in closers:
                raise TemplateError(f"unexpected {{{{{word}}}}}")
            return nodes, i, word
        if word in ("range", "if"):
            if word == "range":
                m = _RANGE.match(body)
                if not m:
                    raise TemplateError(f"bad range: {body!r}")
                head = ("range", m.group(2) and m.group(1), m.group(2) or m.group(1), m.group(3))
            else:
                head = ("if", body[2:].strip())
            inner, i, closer = _parse(tokens, i, ("end", "else"))
            other: list = []
            if closer == "else":
                other, i, _ = _parse(tokens, i, ("end",))
            nodes.append((*head, inner, other))
            continue
        nodes.append(("print", body))
    if closers:
        raise TemplateError("unexpected EOF: missing {{end}}")
    return nodes, i, ""


def _value(expr: str, dot: Any, root: dict, scope: dict) -> Any:
    if expr == ".":
        return dot
    if expr == "$":
        return root
    base, path = dot, expr
    if expr.startswith("$"):
        name, _, path = expr.partition(".")
        if name == "$":
            base = root
        elif name in scope:
            base = scope[name]
        else:
            raise TemplateError(f'undefined variable "{name}"')
        if not path:
            return base
        path = "." + path
    if not re.fullmatch(r"(\.\w+)+", path):
        raise TemplateError(f"unsupported expression {expr!r}")
    for name in path[1:].split("."):
        if not isinstance(base, dict) or name not in base:
            raise TemplateError(f"can't evaluate field {name}")
        base = base[name]
    return base


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_text(x) for x in v) + "]"
    return str(v)


def _render(nodes: list, dot: Any, root: dict, scope: dict, out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "print":
            out.append(_text(_value(node[1], dot, root, scope)))
        elif kind == "if":
            _, expr, body, other = node
            _render(body if _value(expr, dot, root, scope) else other, dot, root, scope, out)
        else:
            _, ivar, vvar, expr, body, other = node
            seq = _value(expr, dot, root, scope)
            if not isinstance(seq, (list, tuple)):
                raise TemplateError(f"range can't iterate over {_text(seq)}")
            if not seq:
                _render(other, dot, root, scope, out)
            for i, item in enumerate(seq):
                inner = dict(scope)
                if ivar:
                    inner[ivar] = i
                if vvar:
                    inner[vvar] = item
                _render(body, item, root, inner, out)


def render(text: str, data: dict) -> str:
    nodes, _, _ = _parse(_tokens(text), 0, ())
    out: list[str] = []
    _render(nodes, data, data, {}, out)
    return "".join(out)


def write_conf(template_path: str, conf_dir: str, pod_cidr: str) -> str:
    """Render the template for pod_cidr into conf_dir (atomically, 0644);
    the file's path. OSError / TemplateError / ValueError on failure."""
    with open(template_path) as f:
        text = f.read()
    try:
        rendered = render(text, template_data(pod_cidr))
    except TemplateError as e:
        raise TemplateError(f"failed to parse cni config template {template_path!r}: {e}") from None
    os.makedirs(conf_dir, mode=0o755, exist_ok=True)
    path = os.path.join(conf_dir, CONF_NAME)
    fd, tmp = tempfile.mkstemp(dir=conf_dir, prefix="." + CONF_NAME)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(rendered)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path

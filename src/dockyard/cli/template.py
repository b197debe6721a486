"""A subset of Go's text/template, enough for docker's `--format`.

Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and
`{{/* comments */}}`; fields `.A.B` on the data (JSON-shaped dicts/lists)
and on `$` (the root) or range variables; pipelines `a | f`; parenthesised
pipelines; string/number/bool literals; `if`/`else if`/`else`, `range`
(with `$v :=` / `$k, $v :=`), `with`, `end`; and docker's function set
(json, join, split, lower, upper, title, pad, truncate) plus Go's index,
len, print/printf/println, eq/ne/lt/le/gt/ge, and/or/not.

Printing follows Go: a missing field prints `<no value>`, maps print as
`map[k:v]`, lists as `[a b]`, whole floats without a fraction.
"""
from __future__ import annotations

import re


class TemplateError(Exception):
    pass


class _Missing:
    """A field that is not there (Go's invalid reflect.Value)."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


# ---------------------------------------------------------------- printing

def go_float(value: float) -> str:
    """fmt's %v for float64 (strconv 'g', shortest digits): exponent form
    when the decimal exponent is below -4 or at least 6, like Go."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    mantissa, _, exp_text = text.partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # decimal exponent of the first significant digit
    exp = int(exp_text or 0) + len(whole) - 1
    if whole.strip("0") == "":
        exp = int(exp_text or 0) - (len(frac) - len(frac.lstrip("0"))) - 1
    digits = digits.rstrip("0") or "0"
    if digits == "0":
        return sign + "0"
    if exp < -4 or exp >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return sign + "0." + "0" * (-exp - 1) + digits
    if len(digits) <= exp + 1:
        return sign + digits + "0" * (exp + 1 - len(digits))
    return sign + digits[:exp + 1] + "." + digits[exp + 1:]


def go_str(value: object, top: bool = True) -> str:
    """Go's fmt %v of a JSON value."""
    if value is MISSING or value is None:
        return "<no value>" if top else "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict):
        items = " ".join(f"{k}:{go_str(value[k], False)}" for k in sorted(value))
        return f"map[{items}]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v, False) for v in value) + "]"
    return str(value)


def to_json(value: object) -> str:
    """docker's `json` function: compact, no HTML escaping."""
    import json
    if value is MISSING:
        value = None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def truthy(value: object) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


# ---------------------------------------------------------------- functions

def _index(container: object, *keys: object) -> object:
    for key in keys:
        if isinstance(container, dict):
            if key in container:
                container = container[key]
            elif container and all(isinstance(v, str) for v in container.values()):
                container = ""  # a Go map[string]string yields "" for a missing key
            else:
                container = MISSING
        elif isinstance(container, (list, tuple, str)):
            try:
                container = container[int(key)]
            except (IndexError, ValueError, TypeError):
                raise TemplateError(f"error calling index: index out of range: {key}") from None
        elif container is MISSING or container is None:
            return MISSING
        else:
            raise TemplateError(f"can't index item of type {type(container).__name__}")
    return container


def _printf(fmt: str, *args: object) -> str:
    values = iter(args)

    def verb(match: re.Match) -> str:
        spec = match.group(0)
        if spec == "%%":
            return "%"
        value = next(values, MISSING)
        kind = spec[-1]
        if kind == "q":
            return to_json(go_str(value))
        if kind == "d" and isinstance(value, (int, float)):
            return ("%" + spec[1:-1] + "d") % value
        if kind == "f" and isinstance(value, (int, float)):
            return ("%" + spec[1:-1] + "f") % value
        return ("%" + spec[1:-1] + "s") % go_str(value)
    return re.sub(r"%[-+# 0]*\d*(?:\.\d+)?[vsdqfgtx%]", verb, fmt)


def _compare(op):
    def compare(a: object, *others: object) -> bool:
        if op is _eq_any:
            return any(_eq_any(a, b) for b in others)
        try:
            return op(a, others[0])
        except TypeError:
            raise TemplateError("incompatible types for comparison") from None
    return compare


def _eq_any(a: object, b: object) -> bool:
    return a == b


def _and(*args: object) -> object:
    for arg in args:
        if not truthy(arg):
            return arg
    return args[-1]


def _or(*args: object) -> object:
    for arg in args:
        if truthy(arg):
            return arg
    return args[-1]


def _pad(text: object, left: int, right: int) -> str:
    return " " * left + go_str(text) + " " * right


def _truncate(text: object, length: int) -> str:
    text = go_str(text)
    return text[:length]


def _len(value: object) -> int:
    if value is MISSING or value is None:
        raise TemplateError("error calling len: len of nil pointer")
    try:
        return len(value)
    except TypeError:
        raise TemplateError(f"error calling len: len of type {type(value).__name__}") from None


FUNCTIONS = {
    "json": to_json,
    "join": lambda items, sep: sep.join(go_str(i, False) for i in (items or [])),
    "split": lambda text, sep: go_str(text).split(sep),
    "lower": lambda text: go_str(text).lower(),
    "upper": lambda text: go_str(text).upper(),
    "title": lambda text: go_str(text).title(),
    "pad": _pad,
    "truncate": _truncate,
    "index": _index,
    "len": _len,
    "print": lambda *a: "".join(go_str(v) for v in a),
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
    "printf": _printf,
    "eq": _compare(_eq_any),
    "ne": lambda a, b: a != b,
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    "and": _and,
    "or": _or,
    "not": lambda v: not truthy(v),
}


# ---------------------------------------------------------------- lexing

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<var>\$\w*(?:\.\w+)*)
  | (?P<field>(?:\.\w+)+|\.)
  | (?P<ident>[A-Za-z_]\w*(?:\.\w+)*)
  | (?P<punct>[|(),])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])


def _tokens(action: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(action):
        match = _TOKEN.match(action, pos)
        if not match:
            raise TemplateError(f"unexpected {action[pos]!r} in command")
        pos = match.end()
        out.append((match.lastgroup, match.group(0)))  # spaces kept: `(x).F` vs `(x) .F`
    return out


def _split_actions(text: str) -> list[tuple[str, str]]:
    """The template as [("text", s) | ("action", body)], trimming applied."""
    parts: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip()
        if start >= 0 and text.startswith("{{- ", start):
            chunk = chunk.rstrip()
        if chunk:
            parts.append(("text", chunk))
        if start < 0:
            return parts
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError("unclosed action")
        body = text[start + 2:end]
        if body.startswith("- "):
            body = body[2:]
        trim_next = body.endswith(" -")
        if trim_next:
            body = body[:-2]
        body = body.strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            parts.append(("action", body))
        pos = end + 2


# ---------------------------------------------------------------- parsing

class _Pipe:
    """`$a, $b := cmd arg | cmd`: variable names and commands (lists of operands)."""

    def __init__(self, decls: list[str], commands: list[list[tuple]]):
        self.decls = decls
        self.commands = commands


def _parse_pipe(tokens: list[tuple[str, str]]) -> _Pipe:
    decls: list[str] = []
    tokens = tokens + [("space", " ")]
    for i, (kind, _) in enumerate(tokens):
        if kind == "declare" or kind == "assign":
            names = [value for k, value in tokens[:i] if k == "var"]
            if not names or any(k not in ("var", "punct", "space") for k, _ in tokens[:i]):
                raise TemplateError("bad variable declaration")
            decls = names
            tokens = tokens[i + 1:]
            break
    commands, rest = _parse_commands(tokens, 0)
    if rest != len(tokens):
        raise TemplateError("unexpected ')' in command")
    if not commands or not all(commands):
        raise TemplateError("missing value for command")
    return _Pipe(decls, commands)


def _parse_commands(tokens: list[tuple[str, str]], pos: int) -> tuple[list[list[tuple]], int]:
    commands: list[list[tuple]] = [[]]
    while pos < len(tokens):
        kind, value = tokens[pos]
        if value == ")" and kind == "punct":
            break
        pos += 1
        if kind == "space":
            continue
        if kind == "punct" and value == "|":
            commands.append([])
        elif kind == "punct" and value == "(":
            inner, pos = _parse_commands(tokens, pos)
            if pos >= len(tokens) or tokens[pos][1] != ")":
                raise TemplateError("unclosed left paren")
            pos += 1
            chain: list[str] = []
            if pos < len(tokens) and tokens[pos][0] == "field":  # `(index .X 0).Field`
                chain = tokens[pos][1].split(".")[1:]
                pos += 1
            commands[-1].append(("pipe", (_Pipe([], inner), chain)))
        elif kind == "punct":
            raise TemplateError(f"unexpected {value!r} in command")
        elif kind == "string":
            commands[-1].append(("const", _unquote(value)))
        elif kind == "raw":
            commands[-1].append(("const", value[1:-1]))
        elif kind == "number":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            commands[-1].append(("const", number))
        elif kind == "field":
            commands[-1].append(("field", ("", value.split(".")[1:] if value != "." else [])))
        elif kind == "var":
            name, *chain = value.split(".")
            commands[-1].append(("field", (name, chain)))
        elif value in ("true", "false"):
            commands[-1].append(("const", value == "true"))
        elif value == "nil":
            commands[-1].append(("const", None))
        elif value in FUNCTIONS:
            commands[-1].append(("func", value))
        else:
            raise TemplateError(f'function "{value}" not defined')
    return commands, pos


_BLOCKS = ("if", "range", "with")


def _parse_nodes(parts: list[tuple[str, str]], pos: int, stop: tuple[str, ...]) -> tuple[list, int, str]:
    """Nodes until one of `stop` ("end", "else"); returns (nodes, next pos, stopper)."""
    nodes: list = []
    while pos < len(parts):
        kind, body = parts[pos]
        pos += 1
        if kind == "text":
            nodes.append(("text", body))
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in stop:
            return nodes, pos, body
        if word in _BLOCKS:
            pipe = _parse_pipe(_tokens(body[len(word):]))
            then, pos, stopper = _parse_nodes(parts, pos, ("end", "else"))
            otherwise: list = []
            if stopper.startswith("else"):
                rest = stopper[4:].strip()
                if rest.startswith("if ") and word == "if":
                    # `{{else if x}}` is a nested if that shares our {{end}}
                    otherwise, pos = _parse_else_if(parts, pos, rest)
                else:
                    otherwise, pos, stopper = _parse_nodes(parts, pos, ("end",))
                    if stopper != "end":
                        raise TemplateError(f"unexpected EOF: missing {{{{end}}}} for {word}")
            elif stopper != "end":
                raise TemplateError(f"unexpected EOF: missing {{{{end}}}} for {word}")
            nodes.append((word, pipe, then, otherwise))
            continue
        if word in ("end", "else"):
            raise TemplateError(f"unexpected {{{{{word}}}}}")
        nodes.append(("action", _parse_pipe(_tokens(body))))
    if stop != ("__top__",):
        raise TemplateError("unexpected EOF")
    return nodes, pos, ""


def _parse_else_if(parts: list[tuple[str, str]], pos: int, condition: str) -> tuple[list, int]:
    pipe = _parse_pipe(_tokens(condition[2:]))
    then, pos, stopper = _parse_nodes(parts, pos, ("end", "else"))
    otherwise: list = []
    if stopper.startswith("else"):
        rest = stopper[4:].strip()
        if rest.startswith("if "):
            otherwise, pos = _parse_else_if(parts, pos, rest)
        else:
            otherwise, pos, stopper = _parse_nodes(parts, pos, ("end",))
    elif stopper != "end":
        raise TemplateError("unexpected EOF: missing {{end}} for if")
    return [("if", pipe, then, otherwise)], pos


# ---------------------------------------------------------------- execution

class Template:
    def __init__(self, text: str):
        self.text = text
        self.nodes, _, _ = _parse_nodes(_split_actions(text), 0, ("__top__",))

    def execute(self, data: object) -> str:
        out: list[str] = []
        _run(self.nodes, data, [("$", data)], out)
        return "".join(out)


def _lookup(value: object, chain: list[str]) -> object:
    for name in chain:
        if isinstance(value, dict):
            if name in value:
                value = value[name]
            elif not name.startswith("_") and callable(getattr(value, name, None)):
                value = getattr(value, name)  # a method on a dict subclass, e.g. ps's .Label
            else:
                value = MISSING
        elif value is MISSING or value is None:
            return MISSING
        elif hasattr(value, name) and not name.startswith("_"):
            value = getattr(value, name)
        else:
            kind = "[]interface {}" if isinstance(value, list) else type(value).__name__
            raise TemplateError(f"can't evaluate field {name} in type {kind}")
    return value


def _variable(scope: list[tuple[str, object]], name: str) -> object:
    for var, value in reversed(scope):
        if var == name:
            return value
    raise TemplateError(f'undefined variable "{name}"')


def _eval_operand(operand: tuple, dot: object, scope: list) -> object:
    kind, value = operand
    if kind == "const":
        return value
    if kind == "field":
        base_name, chain = value
        base = dot if not base_name else _variable(scope, base_name)
        return _lookup(base, chain)
    if kind == "pipe":
        pipe, chain = value
        return _lookup(_eval_pipe(pipe, dot, scope), chain)
    raise TemplateError(f"can't use function {value!r} as a value")


def _eval_pipe(pipe: _Pipe, dot: object, scope: list) -> object:
    result: object = MISSING
    for n, command in enumerate(pipe.commands):
        head, args = command[0], command[1:]
        piped = [result] if n > 0 else []
        if head[0] == "func":
            values = [_eval_operand(a, dot, scope) for a in args] + piped
            try:
                result = FUNCTIONS[head[1]](*values)
            except TemplateError:
                raise
            except TypeError:
                raise TemplateError(f"wrong number of args for {head[1]}") from None
        else:
            value = _eval_operand(head, dot, scope)
            if callable(value):
                value = value(*([_eval_operand(a, dot, scope) for a in args] + piped))
            elif args or piped:
                raise TemplateError("can't give argument to non-function")
            result = value
    return result


def _iterate(value: object) -> list[tuple[object, object]]:
    if value is MISSING or value is None:
        return []
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value)]
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    raise TemplateError(f"range can't iterate over {go_str(value)}")


def _run(nodes: list, dot: object, scope: list, out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "action":
            pipe = node[1]
            value = _eval_pipe(pipe, dot, scope)
            if pipe.decls:
                scope.append((pipe.decls[0], value))
            else:
                out.append(go_str(value))
        elif kind == "if":
            _, pipe, then, otherwise = node
            _run(then if truthy(_eval_pipe(pipe, dot, scope)) else otherwise, dot, scope, out)
        elif kind == "with":
            _, pipe, then, otherwise = node
            value = _eval_pipe(pipe, dot, scope)
            if truthy(value):
                _run(then, value, scope + [(pipe.decls[0], value)] if pipe.decls else scope, out)
            else:
                _run(otherwise, dot, scope, out)
        elif kind == "range":
            _, pipe, body, otherwise = node
            items = _iterate(_eval_pipe(pipe, dot, scope))
            if not items:
                _run(otherwise, dot, scope, out)
            for key, item in items:
                inner = list(scope)
                if len(pipe.decls) == 1:
                    inner.append((pipe.decls[0], item))
                elif len(pipe.decls) == 2:
                    inner += [(pipe.decls[0], key), (pipe.decls[1], item)]
                _run(body, item, inner, out)


_CACHE: dict[str, Template] = {}


def parse(text: str) -> Template:
    template = _CACHE.get(text)
    if template is None:
        template = _CACHE[text] = Template(text)
    return template


def render(text: str, data: object) -> str:
    return parse(text).execute(data)

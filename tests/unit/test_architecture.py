"""The house rules, checked on the source: floors only import downwards, no
module uses another module's private names, no import cycle, and runtime
verbs are spoken only inside runtime/."""
from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dockyard"

# higher number = higher floor; a module may import its own floor or lower ones
FLOORS = {"cli": 4, "client": 4, "dockyardd": 5, "api": 4, "cri": 4, "daemon": 3,
          "images": 2, "network": 2, "runtime": 2, "volumes": 2,
          "store": 1, "errors": 1, "linux": 1, "fsutil": 1, "units": 1, "inroot": 1, "filters": 1,
          "durations": 1, "times": 1, "rfc3339": 1, "daemonjson": 1, "listeners": 1, "endpoints": 1}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = ast.parse(p.read_text(), str(p))
    return out


def _resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mods: dict[str, ast.Module]):
    """(importer, imported module, names taken, top-level?) for every import in src/dockyard."""
    for mod, tree in mods.items():
        is_pkg = (SRC.parent / Path(*mod.split("."))).is_dir()
        top = set(id(n) for n in tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(mod, node, is_pkg)
                if not target.startswith("dockyard"):
                    continue
                names = [a.name for a in node.names]
                # `from . import x` imports module x
                sub = [f"{target}.{n}" for n in names if f"{target}.{n}" in mods]
                if sub:
                    for s in sub:
                        yield mod, s, [], id(node) in top
                else:
                    yield mod, target, names, id(node) in top
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("dockyard"):
                        yield mod, a.name, [], id(node) in top


def _floor(mod: str) -> tuple[str, int]:
    if mod == "dockyard":
        return mod, 0           # the package's face (__version__)
    part = mod.split(".")[1]
    return part, FLOORS.get(part, 1)


def test_floors_import_only_downwards():
    mods = _modules()
    bad = []
    for src, dst, _names, _top in _imports(mods):
        (_sp, sf), (_dp, df) = _floor(src), _floor(dst)
        if df > sf:
            bad.append(f"{src} (floor {sf}) -> {dst} (floor {df})")
    assert not bad, "\n".join(bad)


def test_no_private_name_used_across_modules():
    mods = _modules()
    bad = []
    for src, dst, names, _top in _imports(mods):
        for n in names:
            if n.startswith("_") and not n.startswith("__"):
                bad.append(f"{src} imports {dst}.{n}")
    # module._name attribute access on an imported module
    for mod, tree in mods.items():
        imported = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("dockyard")):
                for a in node.names:
                    imported[a.asname or a.name] = a.name
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("dockyard"):
                        imported[(a.asname or a.name).split(".")[0]] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and f"{_pkg(mod)}.{imported[node.value.id]}" in mods):
                bad.append(f"{mod} uses {node.value.id}.{node.attr}")
    assert not bad, "\n".join(sorted(set(bad)))


def _pkg(mod: str) -> str:
    return mod.rsplit(".", 1)[0]


def test_no_import_cycle_at_module_level():
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for src, dst, _names, top in _imports(mods):
        if top and dst in mods and dst != src and not src.startswith(dst + "."):
            graph[src].add(dst)
    # Tarjan's strongly connected components
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not out, out


RUNTIME_VERB = re.compile(r"""\.(run|argv)\(\s*["'](create|start|kill|pause|resume|update|exec|checkpoint|restore|delete|state)["']""")


def test_runtime_verbs_only_inside_runtime():
    bad = []
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC)
        if rel.parts[0] == "runtime":
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if RUNTIME_VERB.search(line):
                bad.append(f"{rel}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)


def _daemon_members() -> set[str]:
    """What a Daemon has: its methods and what __init__ assigns to self."""
    tree = ast.parse((SRC / "daemon" / "daemon.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Daemon")
    out = {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id == "self":
            out.add(node.attr)
    return out


def _protocol_members(cls: ast.ClassDef) -> set[str]:
    return ({n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
            | {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})


def _daemon_names(fn: ast.AST) -> set[str]:
    """The names a function holds the daemon under: a parameter typed `_Daemon`,
    or (in the start steps) a name bound to `ctx.daemon`."""
    names = {a.arg for a in fn.args.args + fn.args.kwonlyargs
             if isinstance(a.annotation, ast.Name) and a.annotation.id == "_Daemon"}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            pairs = []
            for t in node.targets:
                if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs += zip(t.elts, node.value.elts)
                else:
                    pairs.append((t, node.value))
            for t, v in pairs:
                if isinstance(t, ast.Name) and isinstance(v, ast.Attribute) and v.attr == "daemon" \
                        and isinstance(v.value, ast.Name) and v.value.id == "ctx":
                    names.add(t.id)
    return names


def test_narrow_daemon_interfaces_name_what_is_used():
    """A module that takes the daemon declares what it uses of it (a `_Daemon`
    Protocol); it uses nothing else, and the daemon has all of it."""
    daemon = _daemon_members()
    context = ast.parse((SRC / "daemon" / "start" / "context.py").read_text())
    start_protocol = _protocol_members(next(n for n in context.body
                                            if isinstance(n, ast.ClassDef) and n.name == "_Daemon"))
    bad, seen = [], 0
    for p in sorted(SRC.rglob("*.py")):
        tree = ast.parse(p.read_text())
        rel = p.relative_to(SRC)
        protos = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "_Daemon"]
        members = _protocol_members(protos[0]) if protos else None
        if members is not None:
            seen += 1
            bad += [f"{rel}: the daemon has no {m}" for m in sorted(members - daemon)]
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            names = _daemon_names(fn)
            for node in ast.walk(fn):
                attr = None
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
                    attr = node.attr
                    allowed = members if any(a.arg == node.value.id for a in fn.args.args) else start_protocol
                elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                      and node.value.attr == "daemon" and isinstance(node.value.value, ast.Name)
                      and node.value.value.id == "ctx"):
                    attr, allowed = node.attr, start_protocol
                if attr is not None and attr not in (allowed or ()):
                    bad.append(f"{rel}:{node.lineno}: uses daemon.{attr}, not in its _Daemon")
    assert seen >= 15
    assert not bad, "\n".join(bad)

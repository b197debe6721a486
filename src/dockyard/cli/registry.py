"""`pull`, `push`, `login`, `logout`."""
from __future__ import annotations

import sys

from .flags import STRING, Command, Flag

PULL = Command("[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", [
    Flag("all-tags", "a", help="Download all tagged images in the repository"),
    Flag("platform", kind=STRING, help="Set platform if server is multi-platform capable"),
    Flag("quiet", "q", help="Suppress verbose output"),
], min_args=1, max_args=1, aliases="dockyard image pull, dockyard pull")
PUSH = Command("[OPTIONS] NAME[:TAG]", "Upload an image to a registry", [
    Flag("all-tags", "a", help="Push all tags of an image to the repository"),
    Flag("quiet", "q", help="Suppress verbose output"),
], min_args=1, max_args=1, aliases="dockyard image push, dockyard push")
LOGIN = Command("[OPTIONS] [SERVER]", "Log in to a registry", [
    Flag("username", "u", STRING, help="Username"),
    Flag("password", "p", STRING, help="Password"),
    Flag("password-stdin", help="Take the password from stdin"),
], max_args=1)
LOGOUT = Command("[SERVER]", "Log out from a registry", max_args=1)


def _ref(name: str):
    from ..images.reference import parse_normalized
    return parse_normalized(name)


def _auth_header(domain: str) -> dict:
    from .credentials import header_for
    return {"X-Registry-Auth": header_for(domain)}


def _stream(cli, method: str, path: str, query: dict, headers: dict, quiet: bool, aux=None) -> int:
    import io

    from .progress import follow, render
    return follow(cli, lambda resp: render(resp, io.StringIO() if quiet else None, aux=aux),
                  method, path, query, None, headers)


def pull(cli, argv: list[str]) -> int:
    opts, args = PULL.parse(argv, cli.command_path)
    ref = _ref(args[0])
    if ref.tag is None and ref.digest is None and not opts.all_tags:
        if not opts.quiet:
            cli.out("Using default tag: latest")
        ref = ref.with_default_tag()
    query = {"fromImage": ref.name, "tag": ref.digest or ref.tag, "platform": opts.platform}
    code = _stream(cli, "POST", "/images/create", query, _auth_header(ref.domain), opts.quiet)
    if code == 0:
        cli.out(str(ref))
    return code


def push(cli, argv: list[str]) -> int:
    opts, args = PUSH.parse(argv, cli.command_path)
    ref = _ref(args[0])
    if ref.tag is None and not opts.all_tags:
        if not opts.quiet:
            cli.out("Using default tag: latest")
        ref = ref.with_default_tag()
    pushed = []
    code = _stream(cli, "POST", f"/images/{ref.name}/push", {"tag": ref.tag}, _auth_header(ref.domain),
                   opts.quiet, aux=pushed.append)
    if code == 0 and opts.quiet:
        cli.out(str(ref))
    return code


def login(cli, argv: list[str]) -> int:
    from ..client import DaemonError
    from . import credentials
    opts, args = LOGIN.parse(argv, cli.command_path)
    server = args[0] if args else credentials.INDEX_SERVER
    user, password = opts.username, opts.password
    if opts.password_stdin:
        if password:
            cli.err("--password and --password-stdin are mutually exclusive")
            return 1
        if not user:
            cli.err("Must provide --username with --password-stdin")
            return 1
        password = sys.stdin.read().rstrip("\r\n")
    if not user:
        user = input("Username: ").strip()
    if not password:
        import getpass
        password = getpass.getpass("Password: ")
    try:
        reply = cli.client.post("/auth", None, {"username": user, "password": password,
                                                "serveraddress": server}) or {}
    except DaemonError as err:
        cli.err(f"Error response from daemon: {err.message}")
        return 1
    credentials.store(server, user, password)
    cli.out(reply.get("Status") or "Login Succeeded")
    return 0


def logout(cli, argv: list[str]) -> int:
    from . import credentials
    _, args = LOGOUT.parse(argv, cli.command_path)
    server = args[0] if args else credentials.INDEX_SERVER
    if not credentials.remove(server):
        cli.out(f"Not logged in to {credentials.server_key(server)}")
        return 0
    cli.out(f"Removing login credentials for {credentials.server_key(server)}")
    return 0

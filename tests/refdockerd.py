"""A private reference dockerd for differential tests and benches.

    from refdockerd import start_private_dockerd, unavailable_reason
    d = start_private_dockerd(image_tar="busybox.tar")   # imported as `bb`
    try:
        d.docker("run", "--rm", "bb", "true")
    finally:
        problems = d.stop()          # [] when nothing was left on the host

The project's rule (DEVELOPERS guide): a dockerd is only ever one this code
started, on its own roots, socket and bridge, and everything it made goes
away with it. Never the host's /var/run/docker.sock, never the host's
docker0. What one start does:

- a temp base /tmp/rdXXXXXX (the run's id, `rd` + 6 hex: also the bridge's
  name and the --cgroup-parent `refdockerd-rdXXXXXX`) holding data/, exec/,
  the sockets, logs, a pidfile, its own daemon.json (so a host
  /etc/docker/daemon.json is never read) naming the trust key's path there
  (dockerd 20.10 writes /etc/docker/key.json otherwise; the setting exists
  only as the daemon.json key `deprecated-key-path`);
- its own containerd, started here with a config of its own (root, state,
  grpc socket and the `opt` plugin's directory under the base; the CRI
  plugin off) and handed to dockerd with --containerd. Left to itself,
  dockerd 20.10 spawns one under its exec root, but only when
  /run/containerd/containerd.sock does not exist: with a system containerd
  running, it would put its containers into that one. The managed one also
  creates /opt/containerd;
- a bridge made here (`-b rdXXXXXX`, an unused 10.200-255.x.1/24): never
  --bridge=none, which makes dockerd delete the host's docker0;
- --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false:
  no iptables chain, rule or sysctl of the host changes. Port publishing
  still works through docker-proxy (the userland proxy, on by default),
  e.g. `-p 127.0.0.1:8080:80`; what needs NAT (a container reaching out
  through the host, hairpin to a published port) does not;
- --default-address-pool: user-defined networks get /24s of an unused
  10.100-199.0.0/16, never the 172.x pools other engines on the host use;
- --exec-opt native.cgroupdriver=cgroupfs, --cgroup-parent of its own.

stop(): kill the containers, SIGTERM dockerd (SIGKILL after a while), then
its containerd; kill whatever is left (shims naming our containerd socket,
processes whose root is under the base, docker-proxy children); unmount
everything under the base; delete the bridge and its veths; rmdir the
cgroups; remove the shim sockets containerd 1.6 always puts in
/run/containerd/s/ (and /run/containerd, /run/docker/plugins when this run
made them and no other engine uses them); compare the host with the
snapshot taken before the start (tests/leaks.py, plus dockerd's own
objects: DOCKER* iptables chains, refdockerd-* cgroups, the paths above)
and return what is still there.

Quirks of dockerd 20.10 on the development host (cgroup v1 hybrid, a
sandbox whose bounding set lacks CAP_SYS_RESOURCE):
- `--privileged` fails: runc asks for every capability it knows and gets
  `unable to apply caps: operation not permitted`; so does `--cap-add
  SYS_RESOURCE` (or ALL). Tests that need them skip on dockerd's side.
- "Your kernel does not support cgroup blkio weight(_device)" at start;
  CgroupVersion 1, cgroupfs driver, overlay2 on ext4 (so --storage-opt
  size= is refused: it needs xfs with pquota).
- The container's masked files are bind mounts of the host's /dev/null,
  whose filesystem here is tmpfs (devtmpfs on an ordinary host).
- dockerd 20.10 speaks API 1.41 (min 1.12); the docker CLI 28 negotiates.
- It bind-mounts its data root on itself (shared propagation) and leaves
  exec/unmount-on-shutdown; on SIGTERM it undoes that, after a crash
  stop() does.
- /run/docker/plugins (its plugin exec root) is hard-coded: created, and
  removed by stop() only when this run made it and no other engine runs.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import leaks

DOCKERD_NAMESPACE = "moby"        # dockerd's default --containerd-namespace
START_TIMEOUT = 60.0
_FOREIGN_ENV = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "DOCKER_HOST")
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Paths outside its roots that dockerd 20.10 / containerd 1.6 may create
# whatever their flags: removed when this run made them and nobody else
# uses them.
SHIM_SOCKET_DIR = "/run/containerd/s"
HOST_PATHS = ("/run/containerd/s", "/run/containerd", "/run/docker/plugins", "/run/docker",
              "/etc/docker/key.json", "/opt/containerd", "/var/lib/docker", "/var/lib/containerd",
              "/var/run/docker.sock", "/run/containerd/containerd.sock")


# leaks.py kinds that can hold this dockerd's objects (its cgroups are
# refdockerd-*, checked apart; it never uses /run/netns), filtered by own().
OWN_KINDS = ("processes", "mounts", "nsfs", "links", "nft", "iptables", "runtime_state")


class CommandFailed(subprocess.CalledProcessError):
    """A docker CLI call that failed; its message shows the output."""

    def __str__(self) -> str:
        def tail(x: Any) -> str:
            x = x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
            return x[-2000:].strip()
        return (f"{' '.join(map(str, self.cmd))} exited {self.returncode}\n"
                f"--- stdout ---\n{tail(self.stdout)}\n--- stderr ---\n{tail(self.stderr)}")


class Unavailable(RuntimeError):
    """dockerd cannot be used here (not installed, not root, failed to start)."""


def _read(path: str, mode: str = "r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def _which(name: str) -> str | None:
    return shutil.which(name, path=_SBIN_PATH)


def unavailable_reason() -> str | None:
    """Why a private dockerd cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    missing = [b for b in ("dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker-proxy")
               if _which(b) is None]
    if missing:
        return (f"dockerd not installed ({', '.join(missing)} missing: Debian's docker.io provides "
                "them; scripts/install.sh installs it where the release has it)")
    if docker_cli() is None:
        return "no docker CLI on PATH"
    return None


def docker_cli() -> str | None:
    """The docker CLI the tests use (the newest first on PATH: /usr/local/bin)."""
    return shutil.which("docker")


def dockerd_version() -> str:
    r = subprocess.run([_which("dockerd") or "dockerd", "--version"], capture_output=True, text=True)
    return r.stdout.strip()


# ------------------------------------------------------------- host state

def used_ipv4_nets() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    out += subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    nets = []
    for m in re.finditer(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)\b", out):
        try:
            nets.append(ipaddress.ip_network(m.group(1), strict=False))
        except ValueError:
            pass
    return [n for n in nets if n.prefixlen > 0]


def free_net(second: range, prefix: int) -> ipaddress.IPv4Network:
    """A 10.<second>.x.0/prefix (x random for /24) that overlaps nothing on the host."""
    used = used_ipv4_nets()
    for _ in range(300):
        third = secrets.randbelow(256) if prefix > 16 else 0
        net = ipaddress.ip_network(f"10.{second.start + secrets.randbelow(len(second))}.{third}.0/{prefix}")
        if not any(net.overlaps(u) for u in used):
            return net
    raise Unavailable(f"no free 10.{second.start}-{second.stop - 1}.x.0/{prefix} on this host")


def _proc_children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pids: list[int]) -> set[tuple[int, str, str]]:
    """(pid, comm, cmdline) of every live descendant of pids (leaks'
    process tuple, so leaks.kill_processes can kill them safely)."""
    kids = _proc_children()
    out: set[tuple[int, str, str]] = set()
    todo = list(pids)
    while todo:
        for k in kids.get(todo.pop(), ()):
            raw = _read(f"/proc/{k}/cmdline", "rb")
            comm = (_read(f"/proc/{k}/comm") or "?").strip()
            if raw:
                out.add((k, comm, leaks.cmdline_text(raw)[:300]))
            todo.append(k)
    return out


def other_engines(exclude: set[int]) -> list[int]:
    """pids of dockerd/containerd/shim processes that are not ours."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in exclude:
            continue
        comm = (_read(f"/proc/{d}/comm") or "").strip()
        if comm in ("dockerd", "containerd") or comm.startswith("containerd-shim"):
            found.append(int(d))
    return found


def cgroup_mountpoints() -> list[str]:
    return leaks.cgroup_mountpoints()


def iptables_docker_lines() -> set[tuple[str, str]]:
    """DOCKER* chains and rules in iptables/ip6tables (none expected: --iptables=false)."""
    found = set()
    for cmd in ("iptables-save", "ip6tables-save"):
        if not shutil.which(cmd):
            continue
        out = subprocess.run([cmd], capture_output=True, text=True).stdout
        found |= {(cmd, line) for _t, line in leaks.parse_iptables_save(out) if "DOCKER" in line}
    return found


# ------------------------------------------------------------------ engine

CONTAINERD_CONFIG = """\
version = 2
root = "{base}/ctd-root"
state = "{base}/ctd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
oom_score = 0

[grpc]
  address = "{base}/ctd/c.sock"

[ttrpc]
  address = ""

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{base}/ctd-opt"
"""


class RefDockerd:
    """One private dockerd (+ its containerd) on its own base, socket and bridge."""

    def __init__(self, parent_dir: str | os.PathLike = "/tmp", log_dir: str | os.PathLike | None = None):
        while True:
            self.id = "rd" + secrets.token_hex(3)
            self.base = Path(parent_dir) / self.id
            try:
                self.base.mkdir(mode=0o711, parents=False)
                break
            except FileExistsError:
                continue
        self.bridge = self.id
        self.data_root = self.base / "data"
        self.exec_root = self.base / "exec"
        self.sock = str(self.base / "d.sock")
        self.host = "unix://" + self.sock
        self.pidfile = self.base / "d.pid"
        self.containerd_sock = str(self.base / "ctd" / "c.sock")
        self.cgroup_parent = f"refdockerd-{self.id}"
        # Logs outside the base (which stop() removes) when log_dir is given.
        logs = Path(log_dir) if log_dir else self.base
        self.log_path = logs / f"dockerd-{self.id}.log"
        self.containerd_log = logs / f"containerd-{self.id}.log"
        self.docker_config = self.base / "docker-config"
        self.docker_config.mkdir()
        self.scope = leaks.Scope(roots=(str(self.base),), bridge=self.bridge, link_prefixes=())
        self.bip: str | None = None
        self.pool: str | None = None
        self.proc: subprocess.Popen | None = None
        self.containerd: subprocess.Popen | None = None
        self._before: leaks.Snapshot | None = None
        self._before_paths: set[str] = set()
        self._before_docker_lines: set[tuple[str, str]] = set()
        self._container_ids: set[str] = set()
        self._clients: list[Any] = []
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.docker_config), DOCKER_CLI_HINTS="false")
        self.env = env

    def __repr__(self) -> str:
        return f"<RefDockerd {self.host} bridge={self.bridge} pid={self.proc.pid if self.proc else None}>"

    # -- lifecycle

    def dockerd_argv(self) -> list[str]:
        return [_which("dockerd") or "dockerd",
                "-H", self.host, "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "--config-file", str(self.base / "daemon.json"),
                "--containerd", self.containerd_sock,
                "-b", self.bridge, "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--ip-forward=false", "--default-address-pool", f"base={self.pool},size=24",
                "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", self.cgroup_parent,
                "--shutdown-timeout", "5", "--log-level", "info"]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        reason = unavailable_reason()
        if reason:
            raise Unavailable(reason)
        self._before = leaks.snapshot(self.scope, OWN_KINDS)
        self._before_paths = {p for p in HOST_PATHS if os.path.lexists(p)}
        self._before_docker_lines = iptables_docker_lines()
        self.bip = str(free_net(range(200, 256), 24).network_address + 1) + "/24"
        self.pool = str(free_net(range(100, 200), 16))
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True, capture_output=True)
        subprocess.run(["ip", "addr", "add", self.bip, "dev", self.bridge], check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True, capture_output=True)
        # dockerd 20.10 has no flag for the trust key's path, only this key.
        (self.base / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(self.base / "key.json")}))
        (self.base / "containerd.toml").write_text(CONTAINERD_CONFIG.format(base=self.base))
        env = {**self.env, "PATH": _SBIN_PATH}
        with open(self.containerd_log, "ab") as log:
            self.containerd = subprocess.Popen(
                [_which("containerd") or "containerd", "--config", str(self.base / "containerd.toml")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.containerd_sock):
            if self.containerd.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"containerd did not start (exit {self.containerd.poll()}):\n"
                                  + self.log_tail(self.containerd_log))
            time.sleep(0.05)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.dockerd_argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, env=env)
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.proc.poll() is not None:
                raise Unavailable(f"dockerd exited {self.proc.returncode} before /_ping answered:\n"
                                  + self.log_tail())
            time.sleep(0.1)
        raise Unavailable(f"dockerd did not answer /_ping within {timeout:.0f} s:\n" + self.log_tail())

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ping(self, timeout: float = 2.0) -> bool:
        try:
            return self.api("GET", "/_ping", timeout=timeout)[0] == 200
        except OSError:
            return False

    def log_tail(self, path: Path | None = None, lines: int = 40) -> str:
        try:
            return "\n".join((path or self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- talking to it

    def api(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 60.0) -> tuple[int, bytes]:
        """A raw Engine API request: (status, body bytes). A dict/list body is JSON."""
        import http.client

        class Conn(http.client.HTTPConnection):
            def connect(conn) -> None:   # noqa: N805
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(timeout)
                s.connect(self.sock)
                conn.sock = s

        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        c = Conn("localhost", timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def docker(self, *args: str, check: bool = True, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
        """The docker CLI (the tests' one) against this dockerd."""
        kw.setdefault("text", True)
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        cmd = [docker_cli() or "docker", "-H", self.host, *map(str, args)]
        r = subprocess.run(cmd, env=kw.pop("env", self.env), capture_output=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise CommandFailed(r.returncode, cmd, r.stdout, r.stderr)
        return r

    def client(self, **kw: Any):
        """A docker-py client on this dockerd (closed at stop)."""
        import docker
        kw.setdefault("version", "auto")
        kw.setdefault("timeout", 60)
        c = docker.DockerClient(base_url=self.host, **kw)
        self._clients.append(c)
        return c

    def import_image(self, tar: str | os.PathLike, name: str = "bb") -> str:
        """`docker import` a rootfs tar (the tests' busybox) unless name exists."""
        if self.api("GET", f"/images/{name}/json")[0] != 200:
            self.docker("import", str(tar), name)
        return name

    # -- teardown

    def _remember_containers(self) -> None:
        try:
            self._container_ids |= set(os.listdir(self.data_root / "containers"))
        except OSError:
            pass

    def _network_bridges(self) -> set[str]:
        """The bridges of this dockerd's user-defined networks. dockerd keeps
        them at shutdown (they are its networks' state, reused at its next
        start), so with its data root gone they would stay on the host."""
        try:
            status, body = self.api("GET", "/networks", timeout=10)
        except OSError:
            return set()
        if status != 200:
            return set()
        return {(n.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{n['Id'][:12]}"
                for n in json.loads(body) if n.get("Driver") == "bridge" and n.get("Name") != "bridge"}

    def _kill_containers(self) -> None:
        try:
            status, body = self.api("GET", "/containers/json", timeout=10)
            if status == 200:
                for c in json.loads(body):
                    self._container_ids.add(c["Id"])
                    self.api("POST", f"/containers/{c['Id']}/kill", timeout=10)
        except OSError:
            pass

    def _stop_proc(self, proc: subprocess.Popen | None, timeout: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop(self) -> list[str]:
        """Stop everything and clean up; returns what was left behind (and
        removed, where possible) or could not be removed: [] is a clean stop."""
        problems: list[str] = []
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients.clear()
        ours = [p.pid for p in (self.proc, self.containerd) if p is not None]
        user_bridges = self._network_bridges() if self.running else set()
        if self.running:
            self._kill_containers()
        self._remember_containers()
        family = descendants(ours)
        if self.running:
            self._stop_proc(self.proc, 30)
            family |= descendants([self.containerd.pid] if self.containerd else [])
        self._stop_proc(self.containerd, 15)
        self._remember_containers()
        # Processes: shims naming our containerd socket, container processes
        # (their root is under the base), docker-proxy and other children.
        left = (leaks.find_processes(self.scope.needles) | self.proxies()
                | {p for p in family if os.path.exists(f"/proc/{p[0]}")})
        left = {p for p in left if (st := _read(f"/proc/{p[0]}/stat"))
                and leaks.proc_state(st) not in ("Z", "X")}
        if left:
            problems.append("processes left after stop (killed): " + "; ".join(f"{p} {c}" for p, c, _ in sorted(left)))
            problems += leaks.kill_processes(left)
        problems += leaks.unmount_under(self.scope.roots)
        # The bridge (veths enslaved to it go with their netns or here).
        for name, _is_bridge, master in leaks.parse_ip_link_json(
                subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout):
            if master == self.bridge:
                subprocess.run(["ip", "link", "delete", name], capture_output=True)
        for name in user_bridges:       # dockerd's user networks' bridges (see _network_bridges)
            subprocess.run(["ip", "link", "delete", name], capture_output=True)
        r = subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, text=True)
        if r.returncode != 0 and "Cannot find device" not in r.stderr:
            problems.append(f"ip link delete {self.bridge}: {r.stderr.strip()}")
        problems += self._remove_cgroups()
        problems += self._remove_host_paths(exclude=set(ours))
        if self._before is not None:
            found = self.own(leaks.check(self._before, self.scope, kinds=OWN_KINDS))
            if found:
                problems.append(leaks.format_leaks(found, self.scope).replace("dockyardd", "dockerd", 1))
                problems += leaks.reap(found, self.scope)
            docker_lines = iptables_docker_lines() - self._before_docker_lines
            if docker_lines:
                problems.append("DOCKER iptables lines left: " + "; ".join(f"{c}: {l}" for c, l in sorted(docker_lines)))
        if leaks.mounts_under(self.scope.roots):
            problems.append(f"not removing {self.base}: mounts are left under it")
        else:
            problems += leaks.remove_tree(str(self.base))
        return problems

    def own(self, found: dict[str, list]) -> dict[str, list]:
        """Of what leaks.check found, only what is certainly this dockerd's:
        other engines run beside it (dockyard test daemons, other private
        dockerds), and their objects must be neither reported nor reaped
        here. nsfs mounts under the base; links that are the bridge or
        enslaved to it; nft items naming the bridge."""
        out = dict(found)
        if "nsfs" in out:
            out["nsfs"] = [it for it in out["nsfs"] if leaks.is_under(it[0], self.scope.roots)]
        if "links" in out:
            text = subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout
            mine = {n for n, _b, master in leaks.parse_ip_link_json(text) if n == self.bridge or master == self.bridge}
            out["links"] = [it for it in out["links"] if it[0] in mine]
        if "nft" in out:
            out["nft"] = [it for it in out["nft"] if self.bridge in " ".join(map(str, it))]
        return {k: v for k, v in out.items() if v}

    def proxies(self) -> set[tuple[int, str, str]]:
        """docker-proxy processes forwarding to an address of ours (after a
        crash of dockerd they are orphans whose command line names no path
        of ours, only the container's address)."""
        nets = [ipaddress.ip_network(n, strict=False) for n in (self.bip, self.pool) if n]
        found = set()
        for d in os.listdir("/proc"):
            if not d.isdigit() or (_read(f"/proc/{d}/comm") or "").strip() != "docker-proxy":
                continue
            raw = _read(f"/proc/{d}/cmdline", "rb") or b""
            args = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
            try:
                ip = ipaddress.ip_address(args[args.index("-container-ip") + 1])
            except (ValueError, IndexError):
                continue
            if any(ip in n for n in nets):
                found.add((int(d), "docker-proxy", leaks.cmdline_text(raw)[:300]))
        return found

    def cgroup_dirs(self) -> list[str]:
        out = []
        for mp in cgroup_mountpoints():
            top = os.path.join(mp, self.cgroup_parent)
            if os.path.isdir(top):
                out += [dp for dp, _d, _f in os.walk(top)]
        return out

    def _remove_cgroups(self) -> list[str]:
        problems = []
        for d in sorted(self.cgroup_dirs(), key=len, reverse=True):
            deadline = time.monotonic() + 3
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        problems.append(f"rmdir {d}: {e}")
                        break
                    time.sleep(0.05)
        return problems

    def shim_sockets(self) -> list[str]:
        """The sockets containerd 1.6's shims make for our containers: always
        in /run/containerd/s, named sha256(<containerd address>/<ns>/<id>)."""
        self._remember_containers()
        return [os.path.join(SHIM_SOCKET_DIR, hashlib.sha256(
                    os.path.join(self.containerd_sock, DOCKERD_NAMESPACE, cid).encode()).hexdigest())
                for cid in self._container_ids]

    def _remove_host_paths(self, exclude: set[int]) -> list[str]:
        problems = []
        for s in self.shim_sockets():
            if os.path.lexists(s):
                problems.append(f"shim socket left (removed): {s}")
                try:
                    os.unlink(s)
                except OSError as e:
                    problems.append(f"rm {s}: {e}")
        made = [p for p in HOST_PATHS if os.path.lexists(p) and p not in self._before_paths]
        if not made:
            return problems
        if other_engines(exclude):
            return problems    # another engine may be using them now: leave them
        for p in made:
            if p in ("/run/containerd/s", "/run/containerd", "/run/docker/plugins", "/run/docker"):
                try:
                    os.rmdir(p)     # only when empty
                except OSError:
                    problems.append(f"{p}: made by this run and not empty")
            else:
                problems.append(f"{p}: made by this run (left alone)")
        return problems


def start_private_dockerd(parent_dir: str | os.PathLike = "/tmp", *, image_tar: str | os.PathLike | None = None,
                          image: str = "bb", log_dir: str | os.PathLike | None = None,
                          timeout: float = START_TIMEOUT) -> RefDockerd:
    """Start a private dockerd under parent_dir/rdXXXXXX (see the module doc;
    keep parent_dir short: unix socket paths are limited to 108 bytes); with
    image_tar, `docker import` it as `image`; logs in log_dir if given (they
    outlive stop()), else in the base. Raises Unavailable (after
    cleaning up) when dockerd is missing or does not start."""
    d = RefDockerd(parent_dir, log_dir)
    try:
        d.start(timeout)
        if image_tar is not None:
            d.import_image(image_tar, image)
    except BaseException as e:
        problems = d.stop()
        if isinstance(e, Unavailable):
            raise Unavailable(str(e) + ("\ncleanup: " + "; ".join(problems) if problems else "")) from None
        if isinstance(e, subprocess.CalledProcessError):
            raise Unavailable(f"{e}: {e.stderr}") from e
        raise
    return d


__all__ = ["RefDockerd", "Unavailable", "start_private_dockerd", "unavailable_reason", "dockerd_version"]

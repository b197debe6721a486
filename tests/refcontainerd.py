"""A private reference containerd with its CRI plugin, for critest runs and
benches beside dockyardd (issue 19's reference: Debian's containerd 1.6).

    from refcontainerd import RefContainerd
    c = RefContainerd(mirrors={"registry.k8s.io": "http://127.0.0.1:5000"},
                      sandbox_image="registry.k8s.io/pause:3.9")
    try:
        c.start()
        cri = c.cri()               # .rt (RuntimeService), .img (ImageService)
    finally:
        problems = c.stop()         # [] when nothing was left on the host

Never the host's containerd (Debian's /usr/bin/containerd is installed, not
running, and stays so): one started here on a temp base /tmp/rdXXXXXX (the
run's id, `rd` + 6 hex as tests/refdockerd.py's, which tests/leaks.py takes
for a reference engine's run beside a test daemon's; also the name of its
CNI bridge) holding

- its config.toml (version 2): tests/refdockerd.py's containerd config
  (root ctd-root/, state ctd/, the grpc socket ctd/c.sock, the `opt`
  plugin's directory, all under the base; no ttrpc/debug/metrics
  listeners) with the CRI plugin with cni bin_dir /usr/lib/cni (Debian's
  containernetworking-plugins) and conf_dir net.d/ in the base, holding a
  bridge network of its own (bridge `rdXXXXXX`, a free 10.x/24, host-local
  IPAM with its dataDir in the base, portmap); network namespaces under its
  state dir (netns_mounts_under_state_dir), not /run/netns;
  registry.mirrors for the given hosts (plain http to a loopback
  registry); sandbox_image; restrict_oom_score_adj = true (this host's
  bounding set lacks CAP_SYS_RESOURCE: a pod's negative oom_score_adj
  cannot be set); snapshotter overlayfs; runtime io.containerd.runc.v2
  with Debian's runc, cgroupfs, runc's state root under the base;
- the logs (or in log_dir, so they outlive stop()).

stop(): stop and remove every pod through the CRI while containerd runs
(so CNI DEL removes veths, IPAM leases and portmap's per-pod chains), then
SIGTERM containerd (SIGKILL after a while); kill what is left (shims naming
our socket, processes whose root is under the base); unmount everything
under the base (rootfs, shm, netns pins); delete the bridge and what is
enslaved to it; rmdir the container cgroups runc's state names (and the
/k8s.io parent cgroups pods without a cgroup_parent go under, when this run
made them and they are empty); remove the
shim sockets containerd 1.6 always puts in /run/containerd/s (and
/run/containerd/s, /run/containerd when this run made them and no other
engine runs), and libcni's result cache entries of our network in
/var/lib/cni (go-cni has no cache dir setting); compare with the snapshot
taken before the start (tests/leaks.py) and return what was still there.
The CNI-HOSTPORT-* chains portmap shares between all pods of the host are
the caller's: it knows which existed before (tests/integration/test_cni.py
remove_shared_chains)."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import types
from pathlib import Path

import leaks
from refdockerd import CONTAINERD_CONFIG, SHIM_SOCKET_DIR, Unavailable, descendants, free_net, other_engines

CRI_NAMESPACE = "k8s.io"
CNI_BIN = "/usr/lib/cni"
START_TIMEOUT = 60.0
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CNI_CACHE = "/var/lib/cni"
# Host paths containerd 1.6 or libcni create whatever the config says:
# removed when this run made them and they are empty (containerd's while no
# other engine runs).
HOST_DIRS = ("/run/containerd/s", "/run/containerd", f"{CNI_CACHE}/results", CNI_CACHE)
OWN_KINDS = ("processes", "mounts", "nsfs", "links", "netns", "runtime_state")

# refdockerd's containerd config (root, state, socket, opt under the base)
# with the CRI plugin on, and its settings
CRI_CONFIG = """\
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{sandbox_image}"
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{cni_bin}"
      conf_dir = "{cni_conf_dir}"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "{runc}"
          Root = "{base}/runc"
          SystemdCgroup = false
{mirrors}"""

MIRROR = """    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]
      endpoint = ["{endpoint}"]
"""


def unavailable_reason() -> str | None:
    """Why a private containerd with the CRI cannot run here, or None."""
    if os.geteuid() != 0:
        return "a private containerd needs root"
    missing = [b for b in ("containerd", "containerd-shim-runc-v2", "runc") if not shutil.which(b, path=SBIN_PATH)]
    missing += [f"{CNI_BIN}/{p}" for p in ("bridge", "host-local", "portmap", "loopback")
                if not os.path.exists(f"{CNI_BIN}/{p}")]
    if missing:
        return f"not installed: {', '.join(missing)} (Debian's containerd, runc, containernetworking-plugins)"
    return None


def containerd_version() -> str:
    r = subprocess.run([shutil.which("containerd", path=SBIN_PATH) or "containerd", "--version"],
                       capture_output=True, text=True)
    return r.stdout.strip()


def write_bridge_conflist(conf_dir: str | os.PathLike, network: str, bridge: str, subnet: str,
                          ipam_dir: str | os.PathLike) -> None:
    """A CNI conflist (bridge + host-local IPAM on subnet, dataDir ipam_dir, + portmap for
    hostPorts), as in tests/integration/test_cri_cni.py, in conf_dir."""
    os.makedirs(conf_dir, exist_ok=True)
    bridge_conf = {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
                   "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(ipam_dir)}}
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    Path(conf_dir, "10-pods.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": network, "plugins": [bridge_conf, portmap]}))


def cri_client(sock: str, timeout: float = 10.0) -> types.SimpleNamespace:
    """A CRI v1 client on a unix socket: .rt, .img (the generated stubs of dockyard.cri.proto), .channel."""
    import grpc

    from dockyard.cri.proto import grpc_pb
    ch = grpc.insecure_channel("unix:" + sock)
    grpc.channel_ready_future(ch).result(timeout=timeout)
    return types.SimpleNamespace(rt=grpc_pb.RuntimeServiceStub(ch), img=grpc_pb.ImageServiceStub(ch), channel=ch)


class RefContainerd:
    """One private containerd (CRI on) on its own base, socket and CNI bridge."""

    def __init__(self, parent_dir: str | os.PathLike = "/tmp", *, mirrors: dict[str, str] | None = None,
                 sandbox_image: str = "registry.k8s.io/pause:3.9", log_dir: str | os.PathLike | None = None):
        while True:
            self.id = "rd" + secrets.token_hex(3)   # as refdockerd's: leaks.other_test_roots knows rdXXXXXX
            self.base = Path(parent_dir) / self.id
            try:
                self.base.mkdir(mode=0o711)
                break
            except FileExistsError:
                continue
        self.sock = str(self.base / "ctd" / "c.sock")       # CONTAINERD_CONFIG's
        self.endpoint = "unix://" + self.sock
        self.state = self.base / "ctd"
        self.runc_root = self.base / "runc"
        self.cni_conf_dir = self.base / "net.d"
        self.ipam_dir = self.base / "ipam"
        self.bridge = self.id
        self.cni_network = f"pods-{self.id}"
        self.subnet: str | None = None
        self.mirrors = dict(mirrors or {})
        self.sandbox_image = sandbox_image
        self.log_path = Path(log_dir or self.base) / f"containerd-{self.id}.log"
        self.scope = leaks.Scope(roots=(str(self.base),), bridge=self.bridge, link_prefixes=())
        self.proc: subprocess.Popen | None = None
        self._before: leaks.Snapshot | None = None
        self._before_dirs: set[str] = set()
        self._task_ids: set[str] = set()
        self._cgroups: set[str] = set()
        self._clients: list[types.SimpleNamespace] = []

    def __repr__(self) -> str:
        return f"<RefContainerd {self.endpoint} bridge={self.bridge} pid={self.proc.pid if self.proc else None}>"

    # -- lifecycle

    def config(self) -> str:
        mirrors = "".join(MIRROR.format(host=h, endpoint=e) for h, e in sorted(self.mirrors.items()))
        base = CONTAINERD_CONFIG.replace('"io.containerd.grpc.v1.cri", ', "").format(base=self.base)
        return base + CRI_CONFIG.format(base=self.base, sandbox_image=self.sandbox_image, cni_bin=CNI_BIN,
                                        cni_conf_dir=self.cni_conf_dir, mirrors=mirrors,
                                        runc=shutil.which("runc", path=SBIN_PATH) or "runc")

    def start(self, timeout: float = START_TIMEOUT) -> None:
        reason = unavailable_reason()
        if reason:
            raise Unavailable(reason)
        self._before = leaks.snapshot(self.scope, OWN_KINDS)
        self._before_dirs = {p for p in (*HOST_DIRS, *self.namespace_cgroups()) if os.path.lexists(p)}
        self.subnet = str(free_net(range(200, 256), 24))
        write_bridge_conflist(self.cni_conf_dir, self.cni_network, self.bridge, self.subnet, self.ipam_dir)
        (self.base / "config.toml").write_text(self.config())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [shutil.which("containerd", path=SBIN_PATH) or "containerd", "--config", str(self.base / "config.toml")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PATH": SBIN_PATH})
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(self.sock):
                try:
                    self._clients.append(cri_client(self.sock, timeout=max(1.0, deadline - time.monotonic())))
                    break
                except Exception:
                    pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"containerd did not start (exit {self.proc.poll()}):\n{self.log_tail()}")
            time.sleep(0.05)
        # the CRI plugin answers once it has loaded; NetworkReady follows the conf dir
        from dockyard.cri.proto import pb
        while time.monotonic() < deadline:
            try:
                conds = self._clients[0].rt.Status(pb.StatusRequest(), timeout=5).status.conditions
                if all(c.status for c in conds) and conds:
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise Unavailable(f"containerd's CRI not ready within {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cri(self) -> types.SimpleNamespace:
        """A CRI client of this containerd (closed at stop)."""
        c = cri_client(self.sock)
        self._clients.append(c)
        return c

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- teardown

    def _remember(self) -> None:
        """Task ids (for the shim sockets) and the cgroups runc's state names."""
        try:
            self._task_ids |= set(os.listdir(self.state / "io.containerd.runtime.v2.task" / CRI_NAMESPACE))
        except OSError:
            pass
        self._cgroups |= leaks.container_cgroups(leaks.find_state_files([str(self.runc_root)]))

    def _remove_pods(self) -> list[str]:
        from dockyard.cri.proto import pb
        problems = []
        try:
            c = self._clients[0] if self._clients else self.cri()
            for p in c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items:
                try:
                    c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
                    c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
                except Exception as e:
                    problems.append(f"pod {p.id[:12]}: {type(e).__name__}: {e}")
        except Exception as e:
            problems.append(f"removing pods through the CRI: {type(e).__name__}: {e}")
        return problems

    def stop(self) -> list[str]:
        """Stop everything and clean up; returns what was left behind (and
        removed, where possible) or could not be removed: [] is a clean stop."""
        problems: list[str] = []
        self._remember()
        if self.running:
            problems += self._remove_pods()
        for c in self._clients:
            c.channel.close()
        self._clients.clear()
        self._remember()
        family = descendants([self.proc.pid]) if self.proc else set()
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        left = leaks.find_processes(self.scope.needles) | {p for p in family if os.path.exists(f"/proc/{p[0]}")}
        if left:
            problems.append("processes left after stop (killed): " + "; ".join(f"{p} {c}" for p, c, _ in sorted(left)))
            problems += leaks.kill_processes(left)
        problems += leaks.unmount_under(self.scope.roots)
        for name, _is_bridge, master in leaks.parse_ip_link_json(
                subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout):
            if master == self.bridge:
                problems.append(f"veth {name} left on {self.bridge} (deleted)")
                subprocess.run(["ip", "link", "delete", name], capture_output=True)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
        problems += leaks.remove_cgroups(self._cgroups)
        problems += self._remove_host_paths()
        if self._before is not None:
            found = self.own(leaks.check(self._before, self.scope, kinds=OWN_KINDS))
            if found:
                problems.append(leaks.format_leaks(found, self.scope).replace("dockyardd", "containerd", 1))
                problems += leaks.reap(found, self.scope)
        if leaks.mounts_under(self.scope.roots):
            problems.append(f"not removing {self.base}: mounts are left under it")
        else:
            problems += leaks.remove_tree(str(self.base))
        return problems

    def own(self, found: dict[str, list]) -> dict[str, list]:
        """Of what leaks.check found, only what is certainly ours (other engines
        run beside this one): nsfs under the base, links that are our bridge or
        enslaved to it. /run/netns is not used (netns_mounts_under_state_dir):
        anything new there is reported, never reaped."""
        out = dict(found)
        if "nsfs" in out:
            out["nsfs"] = [it for it in out["nsfs"] if leaks.is_under(it[0], self.scope.roots)]
        if "links" in out:
            text = subprocess.run(["ip", "-d", "-j", "link", "show"], capture_output=True, text=True).stdout
            mine = {n for n, _b, master in leaks.parse_ip_link_json(text) if self.bridge in (n, master)}
            out["links"] = [it for it in out["links"] if it[0] in mine]
        if "netns" in out:
            out["netns"] = [it for it in out["netns"] if it[0].startswith("cni-")]
        return {k: v for k, v in out.items() if v}

    @staticmethod
    def namespace_cgroups() -> list[str]:
        """The cgroup a pod without cgroup_parent goes under (/k8s.io/<id>: the namespace) in each hierarchy."""
        return [os.path.join(mp, CRI_NAMESPACE) for mp in leaks.cgroup_mountpoints()]

    def shim_sockets(self) -> list[str]:
        """containerd 1.6's shim sockets: /run/containerd/s/sha256(<address>/<ns>/<id>)."""
        return [os.path.join(SHIM_SOCKET_DIR, hashlib.sha256(
                    os.path.join(self.sock, CRI_NAMESPACE, tid).encode()).hexdigest()) for tid in self._task_ids]

    def _remove_host_paths(self) -> list[str]:
        problems = []
        for s in self.shim_sockets():
            if os.path.lexists(s):
                problems.append(f"shim socket left (removed): {s}")
                os.unlink(s)
        results = Path(CNI_CACHE, "results")
        if results.is_dir():
            for f in results.iterdir():
                if f.name.startswith(self.cni_network + "-"):
                    problems.append(f"CNI result cache left (removed): {f}")
                    f.unlink()
        # libcni makes its cache dirs before it writes, runc its cgroups: an empty
        # one may go whoever runs; containerd's shim socket dir only when no other engine does
        engines = other_engines({self.proc.pid} if self.proc else set())
        for p in (*HOST_DIRS, *self.namespace_cgroups()):
            if p in self._before_dirs or not os.path.lexists(p) or (engines and p.startswith("/run/containerd")):
                continue
            try:
                os.rmdir(p)     # only when empty
            except OSError:
                problems.append(f"{p}: made by this run and not empty")
        return problems


__all__ = ["RefContainerd", "Unavailable", "containerd_version", "cri_client", "unavailable_reason",
           "write_bridge_conflist"]

"""Run critest (kubernetes-sigs/cri-tools' conformance suite) against a
dockyardd on a temp root, or against a private containerd (Debian's 1.6,
the reference of issue 19), with the same stand-in images: a development
check, not part of the test suite (CI has no cri-tools).

    PYTHONPATH=src python tests/integration/critest_run.py [--containerd | --both] \
        [--critest /work/tools/critest] [-- critest flags]

It starts a loopback registry, builds stand-ins for critest's test images
from the busybox rootfs on a dockyardd and pushes them under their own
paths, then runs critest against
- dockyard (default, and first with --both): that dockyardd, whose CRI
  pulls of registry.k8s.io, k8s.gcr.io and gcr.io images come from the
  registry (--cri-registry-mirror), with a CNI bridge network of its own in
  its temp base (as tests/integration/test_cri_cni.py);
- containerd (--containerd, then with --both): after that dockyardd is gone,
  a private containerd (tests/refcontainerd.py) whose registry.mirrors send
  the same hosts to the same registry, sandbox_image the pause stand-in, a
  CNI bridge network of its own;
one after the other, never at once. For each it prints critest's summary
and the failed specs, and removes everything (the engine's roots, its CNI
bridge, portmap's shared chains) with a leak check.

Stand-ins that cannot be faithful:
- test-image-digest@sha256:9700f9...: critest pins the digest of the real
  image's manifest; no image built here has it (its spec fails on both);
- the MaskedPaths spec masks /bin/ls and expects `sh -c ls` to fail with
  "Permission denied": Debian's busybox-static is built with
  FEATURE_SH_STANDALONE, so its sh runs `ls` as an applet without exec and
  the mask cannot matter (the real busybox image's sh execs /bin/ls);
- nonewprivs:1.3 needs gcc and a static libc (libc6-dev) to build its
  setuid-root helper; without them it is left out (its specs fail); so
  does pause:3.9's /pause (a process named pause that exits on SIGTERM and
  reaps), which falls back to a script named pause with a `sleep` child
  (critest's `pgrep sleep` in a pod's shared PID namespace then sees it)."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]     # tests/integration's conftest, then tests/leaks.py

from registry_util import LocalRegistry  # noqa: E402
from test_cni import chains, iptables_text, remove_shared_chains  # noqa: E402
from test_cri_cni import CniDaemon  # noqa: E402

import leaks  # noqa: E402
import refcontainerd  # noqa: E402

E2E = "registry.k8s.io/e2e-test-images"
CRI_TOOLS = "gcr.io/k8s-staging-cri-tools"
MIRRORED = ("registry.k8s.io", "k8s.gcr.io", "gcr.io")
PAUSE = "registry.k8s.io/pause:3.9"

# nginx's stand-in: a shell script named nginx (the kernel names the process
# after the script: `pidof nginx` finds it) that writes nginx's pidfile with
# its own pid and stays the parent of busybox httpd; its command line says
# "master process", and it logs a line that names httpd: critest looks for all of them
NGINX = """#!/bin/sh
echo $$ > /var/run/nginx.pid
echo httpd stand-in serving /www
httpd -f -p {port} -h /www &
wait
"""
WEB = ('COPY nginx /usr/sbin/nginx\n'
       'RUN chmod 755 /usr/sbin/nginx && mkdir -p /www /var/run && '
       'echo "<h1>Welcome to nginx!</h1>" > /www/index.html\nEXPOSE {port}\n'
       'CMD ["/usr/sbin/nginx", "-g", "daemon off;", "master process"]')
PREDEFINED = ("RUN echo 'default-user:x:1000:1000::/home/default-user:/bin/sh' >> /etc/passwd && "
              "echo 'default-user:x:1000:' >> /etc/group && "
              "echo 'group-defined-in-image:x:50000:default-user' >> /etc/group\nUSER 1000")
# nonewprivs' helper: setuid root, run as a non-root user, says its effective uid
NNP_C = '#include <stdio.h>\n#include <unistd.h>\n' \
        'int main(void) { printf("Effective uid: %d\\n", (int)geteuid()); return 0; }\n'
NNP = 'COPY nnp /usr/local/bin/nnp\nRUN chmod 4755 /usr/local/bin/nnp\nENTRYPOINT ["/usr/local/bin/nnp"]'
# pause: as the real one, a process named pause (critest's `pgrep sleep` in a
# pod's shared PID namespace must not find the sandbox) that exits on
# SIGTERM/SIGINT and reaps children; without gcc, a script named pause
PAUSE_C = """#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
static void quit(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction q = {.sa_handler = quit}, r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigaction(SIGINT, &q, 0); sigaction(SIGTERM, &q, 0); sigaction(SIGCHLD, &r, 0);
    for (;;) pause();
}
"""
PAUSE_SH = "#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 2147483647 & wait $!; done\n"

# The base of every stand-in: bb with its applets as hard links (as the real
# busybox image has them: masking /bin/ls must not mask the shell), and the
# two tools critest runs that Debian's busybox-static lacks, as scripts; a
# default command (busybox's sh), as the images critest pulls have one
BASE = """RUN cd /bin && for f in *; do if [ -L "$f" ]; then ln -f busybox "$f"; fi; done
RUN printf '#!/bin/sh\\nfor p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"; done\\n' \\
    > /bin/pgrep && chmod 755 /bin/pgrep
RUN printf '#!/bin/sh\\ncat /proc/sysvipc/shm\\n' > /bin/ipcs && chmod 755 /bin/ipcs
CMD ["sh"]"""


def web_files(port: int):
    def prepare(ctx: str) -> str | None:
        Path(ctx, "nginx").write_text(NGINX.format(port=port))
        return None
    return prepare


def static_program(name: str, source: str, fallback: str = ""):
    """A build-context preparer: `name`, compiled from C source with gcc -static (the stand-ins have no
    libc); without gcc or libc.a, the shell script `fallback` under that name, or (none) why not."""
    def prepare(ctx: str) -> str | None:
        src = os.path.join(ctx, name + ".c")
        Path(src).write_text(source)
        r = (subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(ctx, name), src], capture_output=True,
                            text=True) if shutil.which("gcc") else None)
        if r is not None and r.returncode == 0:
            return None
        if fallback:
            Path(ctx, name).write_text(fallback)
            return None
        return "no gcc" if r is None else f"gcc -static failed (libc6-dev's libc.a missing?): {r.stderr[-300:]}"
    return prepare


# (Dockerfile body after FROM the base, [paths in the registry], files for the
# build context: prepare(ctx) -> None, or why this stand-in cannot be made here)
STANDINS = [
    ('CMD ["sh"]', [f"{E2E}/busybox:1.29-2"], None),
    (WEB.format(port=80), [f"{E2E}/nginx:1.14-2", f"{E2E}/httpd:2.4.39-4"], web_files(80)),
    (WEB.format(port=12003), [f"{CRI_TOOLS}/hostnet-nginx-amd64:latest"],
     web_files(12003)),     # critest's hostnet-nginx listens on 12003
    ('COPY pause /pause\nRUN chmod 755 /pause\nENTRYPOINT ["/pause"]\nCMD []', [PAUSE],
     static_program("pause", PAUSE_C, PAUSE_SH)),
    (NNP, [f"{E2E}/nonewprivs:1.3"], static_program("nnp", NNP_C)),
    ("LABEL critest=latest", [f"{CRI_TOOLS}/test-image-latest:latest"], None),
    ("LABEL critest=tag", [f"{CRI_TOOLS}/test-image-tag:test", f"{CRI_TOOLS}/test-image-tag:all"], None),
    ("LABEL critest=1", [f"{CRI_TOOLS}/test-image-1:latest"], None),
    ("LABEL critest=2", [f"{CRI_TOOLS}/test-image-2:latest"], None),
    ("LABEL critest=3", [f"{CRI_TOOLS}/test-image-3:latest"], None),
    ("LABEL critest=tags", [f"{CRI_TOOLS}/test-image-tags:{i}" for i in (1, 2, 3)], None),
    ("USER 1002", [f"{CRI_TOOLS}/test-image-user-uid:latest"], None),
    ("USER www-data", [f"{CRI_TOOLS}/test-image-user-username:latest"], None),
    ("USER 1003:1003", [f"{CRI_TOOLS}/test-image-user-uid-group:latest"], None),
    ("USER www-data:www-data", [f"{CRI_TOOLS}/test-image-user-username-group:latest"], None),
    (PREDEFINED, [f"{CRI_TOOLS}/test-image-predefined-group:latest"], None),
]


def registry_path(name: str) -> str:
    """registry.k8s.io/e2e-test-images/busybox:1.29-2 -> e2e-test-images/busybox:1.29-2"""
    return name.split("/", 1)[1]


def build_standins(d, reg: LocalRegistry, tar: str, only: tuple[str, ...] = ()) -> list[str]:
    """Build the stand-ins on dockyardd d (those for the images in `only`, when given) and push them to
    reg; returns what was left out and why."""
    left_out = []
    d.docker("import", tar, "bb")
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(f"FROM bb\n{BASE}\n")
        d.docker("build", "-q", "-t", "critest-base", ctx, timeout=300)
    for i, (body, names, prepare) in enumerate(STANDINS):
        if only and not set(only) & set(names):
            continue
        with tempfile.TemporaryDirectory() as ctx:
            why = prepare(ctx) if prepare else None
            if why:
                left_out.append(f"{', '.join(names)}: {why}")
                continue
            Path(ctx, "Dockerfile").write_text(f"FROM critest-base\n{body}\n")
            local = f"critest-standin-{i}"
            d.docker("build", "-q", "-t", local, ctx, timeout=300)
        for name in names:
            ref = f"{reg.host}/{registry_path(name)}"
            d.docker("tag", local, ref)
            d.docker("push", ref, timeout=300)
            d.docker("rmi", ref)
        d.docker("rmi", local)
    return left_out


def summarize(text: str) -> dict:
    """critest's counts and failed specs from its output."""
    m = re.search(r"^(?:SUCCESS|FAIL)! -- (\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped", text, re.M)
    ran = re.search(r"^Ran (\d+) of (\d+) Specs.*$", text, re.M)
    return {"passed": int(m[1]) if m else None, "failed": int(m[2]) if m else None,
            "skipped": int(m[4]) if m else None, "ran": ran[0] if ran else None,
            "failed_specs": sorted(set(re.findall(r"^\s*\[FAIL\] (.*)$", text, re.M)))}


def spec_states(report_path: str) -> dict[str, tuple[str, str]]:
    """{spec name: (state, the failure's message, shortened)} from ginkgo's JSON report (empty when there is none)."""
    try:
        suites = json.loads(Path(report_path).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for suite in suites:
        for r in suite.get("SpecReports") or ():
            if r.get("LeafNodeType") != "It":
                continue
            name = " ".join([*(r.get("ContainerHierarchyTexts") or ()), r.get("LeafNodeText", "")])
            msg = " ".join(((r.get("Failure") or {}).get("Message") or "").split())
            out[name] = (r.get("State", "?"), msg[:300])
    return out


def run_critest(args: argparse.Namespace, engine: str, endpoint: str, out_path: str, cwd: str) -> dict:
    """critest against endpoint (runtime and image service), its output in out_path and ginkgo's JSON
    report in out_path.json; prints and returns the summary."""
    argv = [args.critest, f"--runtime-endpoint={endpoint}", f"--image-endpoint={endpoint}", "--ginkgo.no-color",
            f"--ginkgo.json-report={os.path.abspath(out_path)}.json",
            *([f"--parallel={args.parallel}"] if args.parallel > 1 else []), *args.critest_args]
    with open(out_path, "w") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd).returncode
    text = Path(out_path).read_text(errors="replace")
    res = {"engine": engine, "exit": rc, **summarize(text), "specs": spec_states(out_path + ".json")}
    summary = re.findall(r"^(?:Ran \d+ of \d+ Specs.*|(?:SUCCESS|FAIL)! -- .*)$", text, re.M)
    print(f"== {engine}: " + ("\n".join(summary) or text[-3000:]))
    failed = {n: m for n, (st, m) in res["specs"].items() if st not in ("passed", "skipped", "pending")}
    if failed or res["failed_specs"]:
        print("failed specs (and why):")
        for n in sorted(failed) or res["failed_specs"]:
            print(f"  {n}" + (f"\n      {failed[n]}" if failed.get(n) else ""))
    print(f"critest exit status {rc}", flush=True)
    return res


def print_differences(a: dict, b: dict) -> None:
    """The specs whose state differs between two engines' runs."""
    names = sorted(set(a["specs"]) | set(b["specs"]))
    diff = [(n, a["specs"].get(n, ("-", ""))[0], b["specs"].get(n, ("-", ""))[0]) for n in names]
    diff = [d for d in diff if d[1] != d[2]]
    if diff:
        print(f"\nspecs that differ ({a['engine']} / {b['engine']}):")
        for n, x, y in diff:
            print(f"  {x:>8} / {y:<8} {n}")


@contextlib.contextmanager
def dockyardd(reg: LocalRegistry, log_copy: str, runtime: str = "crun"):
    """A dockyardd with a CNI bridge network and the registry as mirror of MIRRORED; torn down with a leak check."""
    ipt_before = {cmd: chains(iptables_text(cmd)) for cmd in ("iptables", "ip6tables")}
    mirror = f"http://{reg.host}"
    d = CniDaemon(runtime=runtime, extra_args=tuple(a for h in MIRRORED for a in ("--cri-registry-mirror", f"{h}={mirror}")))
    before = leaks.snapshot(d.scope)
    try:
        d.start()
        yield d
    finally:
        try:
            d.stop()
            shutil.copy(d.log_path, log_copy)
        except OSError:
            pass
        d.cleanup()
        subprocess.run(["ip", "link", "del", d.cni_bridge], capture_output=True)
        remove_shared_chains(ipt_before)
        left = leaks.check(before, d.scope)
        if left:
            print(leaks.format_leaks(left, d.scope))
        d.remove()


@contextlib.contextmanager
def containerd(reg: LocalRegistry, log_dir: str):
    """A private containerd (tests/refcontainerd.py) whose mirrors of MIRRORED are the registry and whose
    sandbox image is the pause stand-in; torn down (with portmap's shared chains) and its leftovers printed."""
    ipt_before = {cmd: chains(iptables_text(cmd)) for cmd in ("iptables", "ip6tables")}
    c = refcontainerd.RefContainerd(mirrors={h: f"http://{reg.host}" for h in MIRRORED}, sandbox_image=PAUSE,
                                    log_dir=log_dir)
    try:
        c.start()
        yield c
    finally:
        problems = c.stop()
        remove_shared_chains(ipt_before)
        for p in problems:
            print(f"containerd cleanup: {p}", file=sys.stderr)


def run_containerd(args: argparse.Namespace, reg: LocalRegistry, out_path: str, cwd: str) -> dict:
    with containerd(reg, os.path.dirname(out_path)) as c:
        print(f"containerd {c.base} ({refcontainerd.containerd_version()}), CRI {c.endpoint}; "
              f"critest output: {out_path}", flush=True)
        return run_critest(args, "containerd", c.endpoint, out_path, cwd)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--critest", default="/work/tools/critest")
    ap.add_argument("--parallel", type=int, default=1)
    eng = ap.add_mutually_exclusive_group()
    eng.add_argument("--containerd", action="store_true", help="run against a private containerd instead")
    eng.add_argument("--both", action="store_true", help="dockyard, then a private containerd")
    ap.add_argument("--out", default="", help="where critest's output goes (default: a temp file; "
                                              "with --both, .containerd is appended for containerd's)")
    ap.add_argument("critest_args", nargs="*")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("critest_run: needs root")
    if (args.containerd or args.both) and (why := refcontainerd.unavailable_reason()):
        raise SystemExit(f"critest_run: {why}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "busybox.tar")
        subprocess.run(["bash", str(HERE.parent.parent / "scripts" / "make-busybox-image.sh"), tar], check=True)
        reg = LocalRegistry()
        out_path = args.out or os.path.join(tmp, "critest.out")
        try:
            with dockyardd(reg, out_path + ".dockyardd.log") as d:
                for why in build_standins(d, reg, tar):
                    print(f"stand-in left out: {why}")
                if not args.containerd:
                    print(f"dockyardd {d.base}, CRI {d.cri_sock}, registry {reg.host}; critest output: {out_path}",
                          flush=True)
                    results.append(run_critest(args, "dockyard", f"unix://{d.cri_sock}", out_path, tmp))
            if args.containerd or args.both:
                results.append(run_containerd(args, reg, out_path + (".containerd" if args.both else ""), tmp))
        finally:
            reg.stop()
    if len(results) > 1:
        print("\n" + "\n".join(f"{r['engine']:<11} passed {r['passed']}  failed {r['failed']}  skipped {r['skipped']}"
                               for r in results))
        print_differences(*results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run critest (kubernetes-sigs/cri-tools' conformance suite) against a
dockyardd on a temp root: a development check, not part of the test suite
(CI has no cri-tools).

    PYTHONPATH=src python tests/integration/critest_run.py --critest /work/tools/critest [-- critest flags]

It starts a loopback registry and a dockyardd whose CRI pulls of
registry.k8s.io, k8s.gcr.io and gcr.io images come from that registry
(--cri-registry-mirror), with a CNI bridge network of its own in its temp
base (as tests/integration/test_cri_cni.py), builds stand-ins for critest's
test images from the busybox rootfs and pushes them under their own paths,
runs critest, prints its summary and the failed specs, and removes
everything (the daemon's roots, the CNI bridge, portmap's shared chains).

Stand-ins that cannot be made: test-image-digest@sha256:9700f9... (a fixed
digest) and nonewprivs:1.3 (a setuid helper); their specs fail."""
from __future__ import annotations

import argparse
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

E2E = "registry.k8s.io/e2e-test-images"
CRI_TOOLS = "gcr.io/k8s-staging-cri-tools"
# nginx's stand-in: busybox httpd under a shell that writes nginx's pidfile and
# whose command line says "master process", logging a line that names httpd: critest looks for all three
WEB = ('RUN mkdir -p /www /var/run && echo "<h1>Welcome to nginx!</h1>" > /www/index.html\nEXPOSE 80\n'
       'CMD ["sh", "-c", "echo $$ > /var/run/nginx.pid; echo httpd stand-in serving /www; httpd -f -p 80 -h /www & wait",'
       ' "nginx: master process"]')
PREDEFINED = ("RUN echo 'default-user:x:1000:1000::/home/default-user:/bin/sh' >> /etc/passwd && "
              "echo 'default-user:x:1000:' >> /etc/group && "
              "echo 'group-defined-in-image:x:50000:default-user' >> /etc/group\nUSER 1000")

# The base of every stand-in: bb with its applets as hard links (as the real
# busybox image has them: masking /bin/ls must not mask the shell), and the
# two tools critest runs that Debian's busybox-static lacks, as scripts; a
# default command (busybox's sh), as the images critest pulls have one
BASE = """RUN cd /bin && for f in *; do if [ -L "$f" ]; then ln -f busybox "$f"; fi; done
RUN printf '#!/bin/sh\\nfor p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"; done\\n' \\
    > /bin/pgrep && chmod 755 /bin/pgrep
RUN printf '#!/bin/sh\\ncat /proc/sysvipc/shm\\n' > /bin/ipcs && chmod 755 /bin/ipcs
CMD ["sh"]"""

# (Dockerfile body after FROM the base, [paths in the registry])
STANDINS = [
    ('CMD ["sh"]', [f"{E2E}/busybox:1.29-2"]),
    (WEB, [f"{E2E}/nginx:1.14-2", f"{E2E}/httpd:2.4.39-4"]),
    (WEB.replace("-p 80 ", "-p 12003 ").replace("EXPOSE 80", "EXPOSE 12003"),
     [f"{CRI_TOOLS}/hostnet-nginx-amd64:latest"]),      # critest's hostnet-nginx listens on 12003
    ('CMD ["sleep", "2147483647"]', ["registry.k8s.io/pause:3.9"]),
    ("LABEL critest=latest", [f"{CRI_TOOLS}/test-image-latest:latest"]),
    ("LABEL critest=tag", [f"{CRI_TOOLS}/test-image-tag:test", f"{CRI_TOOLS}/test-image-tag:all"]),
    ("LABEL critest=1", [f"{CRI_TOOLS}/test-image-1:latest"]),
    ("LABEL critest=2", [f"{CRI_TOOLS}/test-image-2:latest"]),
    ("LABEL critest=3", [f"{CRI_TOOLS}/test-image-3:latest"]),
    ("LABEL critest=tags", [f"{CRI_TOOLS}/test-image-tags:{i}" for i in (1, 2, 3)]),
    ("USER 1002", [f"{CRI_TOOLS}/test-image-user-uid:latest"]),
    ("USER www-data", [f"{CRI_TOOLS}/test-image-user-username:latest"]),
    ("USER 1003:1003", [f"{CRI_TOOLS}/test-image-user-uid-group:latest"]),
    ("USER www-data:www-data", [f"{CRI_TOOLS}/test-image-user-username-group:latest"]),
    (PREDEFINED, [f"{CRI_TOOLS}/test-image-predefined-group:latest"]),
]


def registry_path(name: str) -> str:
    """registry.k8s.io/e2e-test-images/busybox:1.29-2 -> e2e-test-images/busybox:1.29-2"""
    return name.split("/", 1)[1]


def build_standins(d, reg: LocalRegistry, tar: str) -> None:
    d.docker("import", tar, "bb")
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(f"FROM bb\n{BASE}\n")
        d.docker("build", "-q", "-t", "critest-base", ctx, timeout=300)
    for i, (body, names) in enumerate(STANDINS):
        with tempfile.TemporaryDirectory() as ctx:
            Path(ctx, "Dockerfile").write_text(f"FROM critest-base\n{body}\n")
            local = f"critest-standin-{i}"
            d.docker("build", "-q", "-t", local, ctx, timeout=300)
        for name in names:
            ref = f"{reg.host}/{registry_path(name)}"
            d.docker("tag", local, ref)
            d.docker("push", ref, timeout=300)
            d.docker("rmi", ref)
        d.docker("rmi", local)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--critest", default="/work/tools/critest")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--out", default="", help="where critest's output goes (default: a temp file)")
    ap.add_argument("critest_args", nargs="*")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("critest_run: needs root")
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "busybox.tar")
        subprocess.run(["bash", str(HERE.parent.parent / "scripts" / "make-busybox-image.sh"), tar], check=True)
        reg = LocalRegistry()
        ipt_before = {cmd: chains(iptables_text(cmd)) for cmd in ("iptables", "ip6tables")}
        mirror = f"http://{reg.host}"
        d = CniDaemon(extra_args=("--cri-registry-mirror", f"registry.k8s.io={mirror}",
                                  "--cri-registry-mirror", f"k8s.gcr.io={mirror}",
                                  "--cri-registry-mirror", f"gcr.io={mirror}"))
        before = leaks.snapshot(d.scope)
        out_path = args.out or os.path.join(tmp, "critest.out")
        try:
            d.start()
            build_standins(d, reg, tar)
            print(f"dockyardd {d.base}, CRI {d.cri_sock}, registry {reg.host}; critest output: {out_path}",
                  flush=True)
            argv = [args.critest, f"--runtime-endpoint=unix://{d.cri_sock}",
                    f"--image-endpoint=unix://{d.cri_sock}", "--ginkgo.no-color",
                    *([f"--parallel={args.parallel}"] if args.parallel > 1 else []), *args.critest_args]
            with open(out_path, "w") as out:
                rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp).returncode
            text = Path(out_path).read_text(errors="replace")
            summary = re.findall(r"^(?:Ran \d+ of \d+ Specs.*|(?:SUCCESS|FAIL)! -- .*)$", text, re.M)
            print("\n".join(summary) or text[-3000:])
            failed = sorted(set(re.findall(r"^\s*\[FAIL\] (.*)$", text, re.M)))
            if failed:
                print("failed specs:")
                print("\n".join(f"  {f}" for f in failed))
            print(f"critest exit status {rc}")
        finally:
            try:
                d.stop()
                shutil.copy(d.log_path, out_path + ".dockyardd.log")
            except OSError:
                pass
            d.cleanup()
            subprocess.run(["ip", "link", "del", d.cni_bridge], capture_output=True)
            remove_shared_chains(ipt_before)
            left = leaks.check(before, d.scope)
            if left:
                print(leaks.format_leaks(left, d.scope))
            d.remove()
            reg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""crun gets the seccomp filter precompiled (annotation run.oci.seccomp_bpf_data)
and the container is filtered exactly as when crun compiles linux.seccomp."""
import base64
import json
import os
import uuid

import pytest

from dockyard.runtime import seccomp_bpf
from dockyard.runtime.runtimes import private_crun

ANN = seccomp_bpf.ANNOTATION


def _crun_libseccomp() -> str:
    """The libseccomp the daemons' crun links: a private crun's (scripts/
    install-crun.sh, newer: it builds a different program) or the system's."""
    pc = private_crun()
    for d in (pc.library_path.split(":") if pc else ()):
        if os.path.exists(os.path.join(d, "libseccomp.so.2")):
            return os.path.join(d, "libseccomp.so.2")
    return seccomp_bpf.DEFAULT_LIBRARY


LIBSECCOMP = _crun_libseccomp()


@pytest.fixture
def crun_daemon(daemon):
    if daemon.runtime != "crun":
        pytest.skip("the precompiled filter is a crun feature")
    return daemon


def _config(daemon, cid: str) -> dict:
    with open(os.path.join(daemon.exec_root, "c", cid, "config.json")) as f:
        return json.load(f)


def _crun_bpf(daemon, cid: str) -> bytes:
    """The program crun installed: it keeps it in its state dir for `exec`."""
    with open(os.path.join(daemon.exec_root, "runtime", "crun", cid, "seccomp.bpf"), "rb") as f:
        return f.read()


def _run_detached(daemon, image, *flags) -> str:
    name = f"sbpf-{uuid.uuid4().hex[:8]}"
    daemon.docker("run", "-d", "--name", name, *flags, image, "sleep", "60")
    return daemon.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()


def test_default_profile_is_precompiled_and_enforced(crun_daemon, bb_image):
    d = crun_daemon
    cid = _run_detached(d, bb_image)
    try:
        spec = _config(d, cid)
        section = spec["linux"]["seccomp"]            # kept for readers; crun ignores it then
        bpf = base64.b64decode(spec["annotations"][ANN])
        assert bpf == seccomp_bpf.compile_section(section, LIBSECCOMP)
        assert _crun_bpf(d, cid) == bpf               # what crun installed is ours
        st = d.docker("exec", cid, "grep", "Seccomp:", "/proc/self/status").stdout
        assert st.split() == ["Seccomp:", "2"]
        r = d.docker("exec", cid, "sh", "-c", "unshare -U true 2>&1; echo rc=$?", check=False)
        assert "rc=0" not in r.stdout
        r = d.docker("exec", cid, "sh", "-c", "(echo child) & wait")
        assert r.stdout == "child\n"
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_same_program_as_crun_compiles(crun_daemon, bb_image, tmp_path):
    """A custom profile with sub-architectures, per-rule errno and args (one
    index twice, a masked compare): crun's own compilation (forced by its
    strict-names annotation, which makes us step aside) is byte for byte ours."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
               "syscalls": [
                   {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
                   {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                             {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]},
                   {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
                    "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"},
                             {"index": 1, "value": 0xF, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}]}
    if os.uname().machine != "x86_64":
        profile.pop("architectures")
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    ours = _run_detached(crun_daemon, bb_image, "--security-opt", f"seccomp={path}")
    theirs = _run_detached(crun_daemon, bb_image, "--security-opt", f"seccomp={path}",
                           "--annotation", "run.oci.seccomp_fail_unknown_syscall=1")
    try:
        assert ANN in _config(crun_daemon, ours)["annotations"]
        assert ANN not in (_config(crun_daemon, theirs).get("annotations") or {})
        assert _crun_bpf(crun_daemon, ours) == _crun_bpf(crun_daemon, theirs)
        # the custom profile is honoured: mkdir gets EROFS (30)
        r = crun_daemon.docker("exec", ours, "sh", "-c", "mkdir /x 2>&1; echo rc=$?", check=False)
        assert "rc=1" in r.stdout and "read-only" in r.stdout.lower()
    finally:
        crun_daemon.docker("rm", "-f", ours, theirs, check=False)


def test_unconfined_gets_no_annotation(crun_daemon, bb_image):
    cid = _run_detached(crun_daemon, bb_image, "--security-opt", "seccomp=unconfined")
    try:
        spec = _config(crun_daemon, cid)
        assert "seccomp" not in spec["linux"] and ANN not in (spec.get("annotations") or {})
        r = crun_daemon.docker("exec", cid, "grep", "Seccomp:", "/proc/self/status")
        assert r.stdout.split() == ["Seccomp:", "0"]
    finally:
        crun_daemon.docker("rm", "-f", cid, check=False)


def test_runc_is_unchanged(crun_daemon, bb_image):
    r = crun_daemon.docker("run", "-d", "--runtime", "runc", bb_image, "sleep", "60", check=False)
    if r.returncode:
        pytest.skip(f"runc not usable here: {r.stderr.strip()}")
    cid = r.stdout.strip()
    try:
        spec = _config(crun_daemon, cid)
        assert "seccomp" in spec["linux"] and ANN not in (spec.get("annotations") or {})
    finally:
        crun_daemon.docker("rm", "-f", cid, check=False)


def _known_to_libseccomp(profile: dict) -> dict:
    """`profile` less the syscall names crun's libseccomp lacks (both compilers
    skip them; crun's strict mode would refuse them)."""
    out = json.loads(json.dumps(profile))
    for rule in out["syscalls"]:
        rule["names"] = [n for n in rule["names"] if seccomp_bpf.syscall_known(n, LIBSECCOMP)]
    out["syscalls"] = [r for r in out["syscalls"] if r["names"]]
    return out


def test_default_profile_same_program_as_crun_compiles(crun_daemon, bb_image, tmp_path):
    from dockyard.runtime import seccomp
    path = tmp_path / "default.json"
    path.write_text(json.dumps(_known_to_libseccomp(seccomp.default_profile())))
    ours = _run_detached(crun_daemon, bb_image)
    theirs = _run_detached(crun_daemon, bb_image, "--security-opt", f"seccomp={path}",
                           "--annotation", "run.oci.seccomp_fail_unknown_syscall=1")
    try:
        assert ANN not in (_config(crun_daemon, theirs).get("annotations") or {})
        assert _crun_bpf(crun_daemon, ours) == _crun_bpf(crun_daemon, theirs)
    finally:
        crun_daemon.docker("rm", "-f", ours, theirs, check=False)

"""runtime/seccomp_bpf: the compiled program, installed in a forked child,
does what the OCI section says (errno per rule, default action, args)."""
import ctypes
import errno
import os

import pytest

from dockyard.runtime import seccomp, seccomp_bpf

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/libseccomp.so.2")
                                and not os.path.exists("/usr/lib/aarch64-linux-gnu/libseccomp.so.2"),
                                reason="libseccomp.so.2 not installed")

PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER = 1
NR_SECCOMP = {"x86_64": 317, "aarch64": 277}[os.uname().machine]


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _run_filtered(bpf: bytes, probe) -> int:
    """Fork; the child installs `bpf` and exits with probe()'s result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # child: no pytest machinery past this point
        code = 100
        try:
            os.close(r)
            libc = ctypes.CDLL(None, use_errno=True)
            buf = ctypes.create_string_buffer(bpf, len(bpf))
            prog = _Fprog(len(bpf) // 8, ctypes.addressof(buf))
            if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or \
                    libc.syscall(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(prog)):
                code = 101
            else:
                code = probe()
        finally:
            os._exit(code)
    os.close(w)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _errno_of(fn) -> int:
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def test_rules_errno_default_and_allowed(tmp_path):
    section = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
               "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EROFS},
                            {"names": ["getcwd"], "action": "SCMP_ACT_ALLOW"},   # == default: skipped
                            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}   # EPERM by default
    bpf = seccomp_bpf.compile_section(section)
    assert len(bpf) % 8 == 0 and len(bpf) > 8
    assert _run_filtered(bpf, lambda: _errno_of(lambda: os.mkdir(tmp_path / "x"))) == errno.EROFS
    (tmp_path / "d").mkdir()
    assert _run_filtered(bpf, lambda: _errno_of(lambda: os.rmdir(tmp_path / "d"))) == errno.EPERM
    assert _run_filtered(bpf, lambda: _errno_of(lambda: os.listdir(tmp_path))) == 0
    assert (tmp_path / "d").exists() and not (tmp_path / "x").exists()


def test_default_errno_and_args():
    # deny everything (ENOSYS) except what the interpreter needs to exit, and
    # personality(0xffffffff) only: the arg comparison decides
    needed = ["exit", "exit_group", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "getpid",
              "munmap", "brk", "mmap", "futex", "close", "write"]
    section = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS,
               "syscalls": [{"names": needed, "action": "SCMP_ACT_ALLOW"},
                            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                             "args": [{"index": 0, "value": 0xFFFFFFFF, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}
    bpf = seccomp_bpf.compile_section(section)
    libc = ctypes.CDLL(None, use_errno=True)

    def personality(arg):
        def call():
            if libc.personality(ctypes.c_ulong(arg)) == -1:
                return ctypes.get_errno()
            return 0
        return call
    assert _run_filtered(bpf, personality(0xFFFFFFFF)) == 0
    assert _run_filtered(bpf, personality(0)) == errno.ENOSYS
    assert _run_filtered(bpf, lambda: 0 if os.getpid() else 1) == 0


def test_repeated_arg_index_is_an_or():
    # two comparisons on arg 0: crun adds one rule each (either matches), not one AND-rule
    section = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
                             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"},
                                      {"index": 0, "value": 16, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}
    bpf = seccomp_bpf.compile_section(section)
    libc = ctypes.CDLL(None, use_errno=True)

    def personality(arg):
        return lambda: ctypes.get_errno() if libc.personality(ctypes.c_ulong(arg)) == -1 else 0
    assert _run_filtered(bpf, personality(8)) == errno.EACCES
    assert _run_filtered(bpf, personality(16)) == errno.EACCES
    assert _run_filtered(bpf, personality(0xFFFFFFFF)) == 0


def test_default_profile_compiles_and_is_cached():
    profile = seccomp.default_profile()
    if not profile:
        pytest.skip("no default seccomp profile on this host")
    section = seccomp.to_oci(profile, ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"])
    first = seccomp_bpf.annotation_for(section)
    assert first and seccomp_bpf.annotation_for(dict(section)) is first
    # unshare without CAP_SYS_ADMIN is refused (the profile's default errno)
    bpf = seccomp_bpf.compile_section(section)
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUTS = 0x04000000
    assert _run_filtered(bpf, lambda: ctypes.get_errno() if libc.unshare(CLONE_NEWUTS) else 0) == \
        section.get("defaultErrnoRet", errno.EPERM)
    assert _run_filtered(bpf, lambda: _errno_of(os.getcwd)) == 0


@pytest.mark.parametrize("section", [
    {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock", "syscalls": []},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
    {"defaultAction": "SCMP_ACT_BOGUS"},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]},
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]},
])
def test_unsupported_leaves_it_to_crun(section):
    assert seccomp_bpf.annotation_for(section) is None
    assert seccomp_bpf.annotation_for(None) is None

"""Docker's default seccomp profile, built from moby's rules.

moby keeps its default profile as rules in Go (profiles/seccomp/default_linux.go,
now the github.com/moby/profiles/seccomp module) and ships them rendered as
profiles/seccomp/default.json; dockerd embeds it and answers
`name=seccomp,profile=builtin` in /info. `profile()` renders the same rules in
the same format, as they are in Docker 28.2 – 28.5 (API 1.50/1.51, the API
dockyard speaks): `defaultErrnoRet` EPERM for every syscall not listed; one
unconditional allow list; `ptrace` and `process_vm_*` from kernel 4.8;
`socket` for every family but AF_VSOCK; five `personality` values; a few
per-architecture calls; the calls a capability unlocks (CAP_SYS_ADMIN: mount,
namespaces, the new mount API, bpf, perf_event_open, ...); without
CAP_SYS_ADMIN `clone` only without namespace flags and `clone3` ENOSYS (so
glibc falls back to clone). Not listed, hence EPERM: io_uring_* (blocked since
Docker 25), keyctl/add_key/request_key, kexec_*, *_module without
CAP_SYS_MODULE, userfaultfd, reboot without CAP_SYS_BOOT, ...

The rules are moby's (Apache-2.0, Copyright Docker, Inc.); this rendering of
them is dockyard's own. `MOBY_VERSION` says which Docker they match; the unit
tests compare them with Debian's copy of moby's profile where installed
(golang-github-docker-docker-dev), allowing only the changes moby made since.
"""
from __future__ import annotations

MOBY_VERSION = "28.5"

EPERM = 1
ENOSYS = 38
AF_VSOCK = 40
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone without them
CLONE_NAMESPACE_FLAGS = 0x7E020000

# libseccomp arch → its sub-architectures (moby's archMap)
ARCH_MAP = (
    ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    ("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
    ("SCMP_ARCH_MIPS64N32", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64")),
    ("SCMP_ARCH_MIPSEL64", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")),
    ("SCMP_ARCH_MIPSEL64N32", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64")),
    ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
    ("SCMP_ARCH_RISCV64", None),
)

# Allowed for every container, whatever its capabilities (moby's order)
ALLOWED = tuple("""
    accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
    chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
    exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
    fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
    flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
    fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv
    futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid
    geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
    getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32
    getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid
    gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init
    inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
    io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
    listen listmount listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr
    lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore
    mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr
    mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
    mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
    munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2
    pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll
    ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
    pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
    recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat
    rename renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq rt_sigaction
    rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
    sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
    sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
    sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
    setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
    setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
    setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd
    signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
    statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
    timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
    timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
    timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
    uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid
    write writev
""".split())

# personality(2) personas a container may switch to: PER_LINUX, UNAME26,
# PER_LINUX32, PER_LINUX32|UNAME26, and 0xffffffff (query only)
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# (Go architecture names, syscalls) allowed only there
BY_ARCH = (
    (("ppc64le",), ("sync_file_range2", "swapcontext")),
    (("arm", "arm64"), ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                        "cacheflush", "set_tls")),
    (("amd64", "x32"), ("arch_prctl",)),
    (("amd64", "x32", "x86"), ("modify_ldt",)),
    (("s390", "s390x"), ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr")),
    (("riscv64",), ("riscv_flush_icache",)),
)

SYS_ADMIN_CALLS = (
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
    "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
    "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
    "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
)

# (capability, syscalls it unlocks), after the CAP_SYS_ADMIN group and clone's rules
BY_CAP = (
    ("CAP_SYS_BOOT", ("reboot",)),
    ("CAP_SYS_CHROOT", ("chroot",)),
    ("CAP_SYS_MODULE", ("delete_module", "init_module", "finit_module")),
    ("CAP_SYS_PACCT", ("acct",)),
    ("CAP_SYS_PTRACE", ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                        "process_vm_writev", "ptrace")),
    ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_TIME", ("settimeofday", "stime", "clock_settime", "clock_settime64")),
    ("CAP_SYS_TTY_CONFIG", ("vhangup",)),
    ("CAP_SYS_NICE", ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node")),
    ("CAP_SYSLOG", ("syslog",)),
    ("CAP_BPF", ("bpf",)),
    ("CAP_PERFMON", ("perf_event_open",)),
)

_ALLOW = "SCMP_ACT_ALLOW"


def _allow(names, **extra) -> dict:
    return {"names": list(names), "action": _ALLOW, **extra}


def _arg(index: int, value: int, op: str) -> dict:
    return {"index": index, "value": value, "op": op}


def profile() -> dict:
    """moby's default profile, in its JSON format (what `docker run` without
    --security-opt seccomp gets before the per-container selection)."""
    syscalls = [
        _allow(ALLOWED),
        _allow(("process_vm_readv", "process_vm_writev", "ptrace"), includes={"minKernel": "4.8"}),
        _allow(("socket",), args=[_arg(0, AF_VSOCK, "SCMP_CMP_NE")]),
    ]
    syscalls += [_allow(("personality",), args=[_arg(0, p, "SCMP_CMP_EQ")]) for p in PERSONAS]
    syscalls += [_allow(names, includes={"arches": list(arches)}) for arches, names in BY_ARCH]
    syscalls += [
        _allow(("open_by_handle_at",), includes={"caps": ["CAP_DAC_READ_SEARCH"]}),
        _allow(SYS_ADMIN_CALLS, includes={"caps": ["CAP_SYS_ADMIN"]}),
        _allow(("clone",), args=[_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
               excludes={"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}),
        _allow(("clone",), args=[_arg(1, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
               comment="s390 parameter ordering for clone is different",
               includes={"arches": ["s390", "s390x"]}, excludes={"caps": ["CAP_SYS_ADMIN"]}),
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    ]
    syscalls += [_allow(names, includes={"caps": [cap]}) for cap, names in BY_CAP]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [{"architecture": a, "subArchitectures": list(s) if s is not None else None}
                    for a, s in ARCH_MAP],
        "syscalls": syscalls,
    }

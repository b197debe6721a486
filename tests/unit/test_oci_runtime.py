"""The OCI runtime interface: Runtime (crun, runc) has every verb of
oci.OCIRuntime with its signature; conmon's command line comes from one
helper for containers and execs alike; Runtimes.for_name falls back."""
from __future__ import annotations

import inspect

from dockyard.runtime import conmon, oci
from dockyard.runtime.runtimes import Runtime, Runtimes


def test_runtime_has_every_verb_of_the_interface_with_its_signature():
    verbs = [n for n, v in vars(oci.OCIRuntime).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert set(verbs) >= {"create", "start", "kill", "pause", "resume", "update", "exec", "exec_sync",
                          "checkpoint", "restore", "state", "delete", "delete_exited"}
    for name in verbs:
        want = inspect.signature(getattr(oci.OCIRuntime, name))
        got = inspect.signature(getattr(Runtime, name))
        assert list(got.parameters) == list(want.parameters), name
        assert inspect.iscoroutinefunction(getattr(Runtime, name)), name
    rt = Runtime("crun", "/usr/bin/crun", "/usr/bin/crun", "/run/x/runtime/crun")
    assert isinstance(rt.name, str) and isinstance(rt.binary, str)


def test_one_conmon_command_line_for_containers_and_execs():
    common = dict(pidfile="/b/pidfile", conmon_pidfile="/b/conmon.pid", exit_dir="/e", socket_dir="/s")
    ctr = conmon.argv("/usr/bin/crun", "/run/rt", "c" * 64, "c" * 12, "web", bundle="/b", log="k8s-file:/l",
                      tty=True, stdin=True, leave_stdin_open=True, no_pivot=True, **common)
    assert ctr[:3] == [conmon.CONMON, "--api-version", "1"]
    pairs = dict(zip(ctr[3::2], ctr[4::2]))
    assert pairs["-c"] == "c" * 64 and pairs["-u"] == "c" * 12 and pairs["-r"] == "/usr/bin/crun"
    assert pairs["--persist-dir"] == "/b" and pairs["-l"] == "k8s-file:/l"
    assert ctr[ctr.index("--runtime-arg"):ctr.index("--runtime-arg") + 4] == \
        ["--runtime-arg", "--root", "--runtime-arg", "/run/rt"]
    assert {"-t", "-i", "--leave-stdin-open", "--no-pivot"} <= set(ctr) and "-e" not in ctr
    ex = conmon.argv("/usr/bin/crun", "/run/rt", "c" * 64, "e" * 64, "web", bundle="/b", log="none",
                     exec_spec="/b/process.json", stdin=True, exec_attach=True, **common)
    assert ex[ex.index("-e"):ex.index("-e") + 3] == ["-e", "--exec-process-spec", "/b/process.json"]
    assert "--exec-attach" in ex and "-i" in ex and "--leave-stdin-open" not in ex and "-t" not in ex
    rs = conmon.argv("/usr/bin/runc", "/run/rt", "c" * 64, "c" * 12, "web", bundle="/b", log="none",
                     restore="/ck/images", runtime_args=["--criu", "/opt/criu"],
                     runtime_opts=["--tcp-established"], **common)
    assert rs[rs.index("--restore") + 1] == "/ck/images" and "--runtime-opt=--tcp-established" in rs
    assert "/opt/criu" in rs


def test_for_name_is_the_containers_runtime_or_the_default():
    crun = Runtime("crun", "/c", "/c", "/r/crun")
    runs = Runtimes.__new__(Runtimes)      # without probing this host's binaries
    runs.available, runs.default = {"crun": crun}, "crun"
    assert runs.for_name("crun") is crun
    assert runs.for_name("runc") is crun       # gone from this host: the default
    assert runs.for_name(None) is crun

import os
import shutil
import subprocess

import pytest

from dockyard.runtime import runtimes


@pytest.mark.skipif(not shutil.which("crun") or not (shutil.which("cc") or shutil.which("gcc")),
                    reason="needs crun and a C compiler")
def test_compiled_crun_hybrid_helper_runs_crun(tmp_path):
    out = runtimes._compile_crun_hybrid(shutil.which("crun"), str(tmp_path))
    assert out and os.access(out, os.X_OK)
    assert runtimes._compile_crun_hybrid(shutil.which("crun"), str(tmp_path)) == out   # cached
    if os.geteuid() != 0:
        pytest.skip("the helper needs root (unshare of the mount namespace)")
    r = subprocess.run([out, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "crun version" in r.stdout
    if runtimes.hybrid_needs_mask():
        # inside, the unified controllers file reads empty; outside it does not change
        probe = subprocess.run([out, "--version"], capture_output=True, text=True)
        assert probe.returncode == 0
        with open(runtimes.HYBRID_CONTROLLERS) as f:
            assert f.read().strip()


def test_state_pid_reads_crun_and_runc_state(tmp_path):
    crun = tmp_path / "a"
    crun.mkdir()
    (crun / "status").write_text('{"pid": 123, "cgroup-path": "/x"}')
    runc = tmp_path / "b"
    runc.mkdir()
    (runc / "state.json").write_text('{"init_process_pid": 456}')
    assert runtimes._state_pid(str(crun)) == 123
    assert runtimes._state_pid(str(runc)) == 456
    assert runtimes._state_pid(str(tmp_path / "none")) is None
    assert runtimes._alive(os.getpid())


@pytest.mark.skipif(os.geteuid() != 0 or not runtimes.hybrid_needs_mask() or not shutil.which("unshare"),
                    reason="needs root on a cgroup-v1 hybrid host")
def test_shell_wrapper_masks_the_controllers_file_only_inside(tmp_path, monkeypatch):
    """The no-compiler fallback: `cat` in place of crun reads the file empty
    inside the wrapper's namespace, while the host's copy is unchanged."""
    monkeypatch.setattr(runtimes, "_compile_crun_hybrid", lambda crun, bin_dir: None)
    rt = runtimes.Runtimes.__new__(runtimes.Runtimes)
    rt.exec_root, rt.notes = str(tmp_path), []
    wrapper = rt._write_crun_wrapper(shutil.which("cat"), shutil.which("unshare"))
    r = subprocess.run([wrapper, runtimes.HYBRID_CONTROLLERS], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    with open(runtimes.HYBRID_CONTROLLERS) as f:
        assert f.read().strip()


def _fake_prefix(tmp_path, *, version="crun version 1.28\n+CRIU\n"):
    """A private prefix as scripts/install-crun.sh lays it out, with shell
    scripts for the loader and the binary: the loader script runs its 4th
    argument (the binary) with the rest, as the real loader would."""
    p = tmp_path / "prefix"
    lib = p / "usr" / "lib"
    (p / "bin").mkdir(parents=True)
    lib.mkdir(parents=True)
    loader, binary = lib / "ld.so", p / "usr" / "crun"
    loader.write_text('#!/bin/sh\n[ "$1" = --library-path ] || exit 9\nshift 2\nexec "$@"\n')
    binary.write_text(f'#!/bin/sh\nprintf "{version}"\necho "args:$*"\n')
    (lib / "libseccomp.so.2").write_text("")
    wrapper = p / "bin" / "crun"
    wrapper.write_text(f'#!/bin/sh\nexec {loader} --library-path {lib} {binary} "$@"\n')
    for f in (loader, binary, wrapper):
        f.chmod(0o755)
    (p / "crun.env").write_text(f"# comment\nCRUN_LOADER={loader}\nCRUN_LIBRARY_PATH={lib}\nCRUN_BINARY={binary}\n")
    return p


def test_private_crun_reads_the_prefix_and_needs_every_file(tmp_path):
    p = _fake_prefix(tmp_path)
    pc = runtimes.private_crun(str(p))
    assert pc and pc.wrapper == str(p / "bin" / "crun") and pc.binary.endswith("/usr/crun")
    assert runtimes.private_crun(str(tmp_path / "none")) is None
    os.unlink(pc.loader)
    assert runtimes.private_crun(str(p)) is None


def test_runtimes_use_the_private_crun_unless_a_path_is_configured(tmp_path, monkeypatch):
    monkeypatch.setattr(runtimes, "hybrid_needs_mask", lambda: False)
    monkeypatch.setattr(runtimes, "_compile_crun_hybrid", lambda *a, **kw: None)
    p = _fake_prefix(tmp_path)
    rts = runtimes.Runtimes(str(tmp_path / "exec"), private_crun_prefix=str(p))
    crun = rts.get("crun")
    assert crun.binary == crun.path == str(p / "bin" / "crun")     # no compiler: the wrapper
    assert crun.libseccomp == str(p / "usr" / "lib" / "libseccomp.so.2")
    if shutil.which("crun"):
        rts = runtimes.Runtimes(str(tmp_path / "exec2"), paths={"crun": shutil.which("crun")},
                                private_crun_prefix=str(p))
        assert rts.get("crun").binary == shutil.which("crun") and rts.get("crun").libseccomp == "libseccomp.so.2"
    # a prefix whose crun does not run is passed over
    (p / "usr" / "crun").write_text("#!/bin/sh\nexit 3\n")
    rts = runtimes.Runtimes(str(tmp_path / "exec3"), private_crun_prefix=str(p))
    assert "crun" not in rts.available or rts.get("crun").binary != str(p / "bin" / "crun")


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="needs a C compiler")
def test_compiled_helper_execs_the_private_loader_without_a_shell(tmp_path):
    p = _fake_prefix(tmp_path)
    pc = runtimes.private_crun(str(p))
    out = runtimes._compile_crun_hybrid(pc.binary, str(tmp_path / "bin"), mask=False, private=pc)
    assert out and out != runtimes._compile_crun_hybrid(pc.binary, str(tmp_path / "bin"))   # other flags
    r = subprocess.run([out, "--root", "/x", "state", "id"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.endswith("args:--root /x state id\n"), (r.stdout, r.stderr)

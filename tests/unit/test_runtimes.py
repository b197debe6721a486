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

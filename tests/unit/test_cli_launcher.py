"""The `dockyard` command scripts/install.sh writes over pip's console
script (issue 16): Python without site (-S) and without the bin directory
on sys.path (-P), the venv's site-packages and the checkout's src added by
the launcher itself, PYTHONPATH still first."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def write_launcher(venv: Path) -> Path:
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    script = ('eval "$(sed -n \'/^write_cli_launcher()/,/^}/p\' "$repo/scripts/install.sh")"\n'
              "write_cli_launcher\n")
    subprocess.run(["bash", "-euc", script], check=True, timeout=120,
                   env={"PATH": os.environ["PATH"], "venv": str(venv), "repo": str(REPO)})
    return venv / "bin" / "dockyard"


def test_launcher_runs_the_checkout_without_site(tmp_path):
    launcher = write_launcher(tmp_path / "venv")
    assert launcher.read_text().splitlines()[0] == f"#!{tmp_path}/venv/bin/python -SP"
    assert os.access(launcher, os.X_OK)
    env = {"PATH": os.environ["PATH"], "PYTHONPROFILEIMPORTTIME": "1"}
    r = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, timeout=60, env=env)
    assert (r.returncode, r.stdout) == (0, "Dockyard version 0.1.0\n"), r.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "dockyard.cli.main" in imported
    assert not imported & {"site", "re", "_distutils_hack"}, sorted(imported)


def test_launcher_puts_pythonpath_first(tmp_path):
    """A checkout under test on PYTHONPATH wins over the installed one, as
    with pip's console script (the integration tests run the CLI that way)."""
    launcher = write_launcher(tmp_path / "venv")
    fake = tmp_path / "pp" / "dockyard" / "cli"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "main.py").write_text("def main():\n    print('the PYTHONPATH one')\n")
    r = subprocess.run([str(launcher)], capture_output=True, text=True, timeout=60,
                       env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "pp")})
    assert (r.returncode, r.stdout) == (0, "the PYTHONPATH one\n"), r.stderr

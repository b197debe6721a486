"""Set-up shared by all tests: command-line options and the busybox rootfs.

Options (each also settable by environment, for CI and editors):

  --daemon-scope module|session   one dockyardd per test module (default) or
                                  one for the whole run
                                  (DOCKYARD_TEST_DAEMON_SCOPE)
  --dockyard-runtime crun|runc    the test daemon's --default-runtime
                                  (DOCKYARD_TEST_RUNTIME, default crun)
  --no-leak-check                 skip the host leak check after each daemon
                                  (DOCKYARD_TEST_LEAK_CHECK=0)
  --strict-shutdown               fail, not just warn, when dockyardd leaves
                                  container processes or mounts behind after
                                  SIGTERM (DOCKYARD_TEST_STRICT_SHUTDOWN=1)
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyroute2.config.log  # noqa: F401  (it sets its logger to level 0 on import)
logging.getLogger("pyroute2").setLevel(logging.WARNING)   # its debug logs dump every netlink message
REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# tests/leaks.py is imported as `leaks` by the integration fixtures, the
# unit tests and bench/run_bench.py, whatever pytest's import mode.
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


def pytest_addoption(parser: pytest.Parser) -> None:
    env = os.environ.get
    g = parser.getgroup("dockyard")
    g.addoption("--daemon-scope", choices=("module", "session"),
                default=env("DOCKYARD_TEST_DAEMON_SCOPE", "module"),
                help="one test dockyardd per module (default) or per session")
    g.addoption("--dockyard-runtime", choices=("crun", "runc"),
                default=env("DOCKYARD_TEST_RUNTIME", "crun"),
                help="--default-runtime of the test dockyardd (default crun)")
    g.addoption("--no-leak-check", action="store_true",
                default=env("DOCKYARD_TEST_LEAK_CHECK") == "0",
                help="do not check the host for objects a test dockyardd left behind")
    g.addoption("--strict-shutdown", action="store_true",
                default=env("DOCKYARD_TEST_STRICT_SHUTDOWN") == "1",
                help="fail when dockyardd leaves processes or mounts after SIGTERM (default: warn)")


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox rootfs tar (scripts/make-busybox-image.sh), made once per run."""
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    r = subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-image.sh"), str(out)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"make-busybox-image.sh failed ({r.returncode}): {r.stderr.strip()}\n"
                    "(scripts/install.sh --deps-only installs busybox-static)", pytrace=False)
    return out

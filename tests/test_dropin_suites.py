"""Other projects' test suites on cno's drop-in faces, through tools/dropin_suites.py.

h2 4.4.1's and h11 0.16.0's own suites run against cno.h2 and cno.h11; hypercorn 0.18.0's
and httpcore 1.0.9's (slow) against the installed hypercorn and httpcore with both
drop-ins in place. Each runs in a subprocess (installing the drop-ins changes the
process) on the cno this test process imported, and must exit 0: the runner enforces the
rules of tools/dropin_known_failures/ (listed tests fail, strictly, and stay within each
suite's allowance) and skips what tools/dropin_excluded/ lists. The sdists are fetched
from the package index on first use (pinned versions and hashes) and cached under
build/dropin-suites/. The runner lives in the source tree: a copy of tests/ beside an
installed wheel (cibuildwheel) skips these.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cno

from aio_util import require_module

RUNNER = Path(__file__).resolve().parents[1] / "tools" / "dropin_suites.py"
CNO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cno.__file__)))


def run_suite(name, timeout):
    """Runs the suite on this process's cno; (exit status, output)."""
    if not RUNNER.exists():
        pytest.skip("tools/dropin_suites.py is not beside these tests (a copy of tests/)")
    pytest.importorskip("cno.h2")
    pytest.importorskip("cno.h11")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [CNO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, str(RUNNER), name, "--installed"],
                          capture_output=True, text=True, timeout=timeout, env=env)
    out = proc.stdout + proc.stderr
    # the runner says which cno it ran: this one, not another on the path
    assert "cno from %s" % os.path.dirname(os.path.abspath(cno.__file__)) in out, out[-3000:]
    return proc.returncode, out


def check(name, timeout, at_least):
    """The suite exits 0 (the runner's rules hold) with at least ``at_least`` passed."""
    code, out = run_suite(name, timeout)
    assert code == 0, out[-6000:]
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= at_least, out[-3000:]


def test_h2_suite():
    # issue 14: at least 90% of the 1,662 tests of h2 4.4.1 pass (1,620 do; the rest
    # touch h2's internals: tools/dropin_known_failures/h2.txt)
    check("h2", 600, 1620)


def test_h11_suite():
    check("h11", 300, 78)


@pytest.mark.slow
def test_hypercorn_suite():
    for module in ("hypercorn", "trio", "pytest_trio"):
        require_module(module)
    check("hypercorn", 600, 194)     # all 196 but 2 excluded (tools/dropin_excluded/)


@pytest.mark.slow
def test_httpcore_suite():
    for module in ("httpcore", "trio", "anyio", "socksio"):
        require_module(module)
    check("httpcore", 600, 202)   # of 220: 12 excluded, 6 its own xfails

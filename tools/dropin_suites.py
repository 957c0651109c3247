"""Run python-hyper's own test suites, and those of code built on h2 and h11, against
cno's drop-in faces (cno.h2, cno.h11).

    python tools/dropin_suites.py h2            # h2 4.4.1's tests on cno.h2
    python tools/dropin_suites.py hypercorn     # hypercorn 0.18.0's, both drop-ins installed
    python tools/dropin_suites.py h11 -- -x -k connection   # extra pytest arguments
    python tools/dropin_suites.py h2 --real     # the same tests on the real h2 (baseline)

Each suite comes from its project's sdist at a pinned version and hash, fetched from the
package index with pip (cached under build/dropin-suites/), not copied into this
repository. Its `import h2...` / `import h11...` resolve to cno's modules through
cno.dropin.install(); the only edit made to the tests is mechanical: h11's tests live
inside the h11 package and import its modules relatively (`from .._events import ...`),
which become absolute (`from h11._events import ...`) so that they reach cno.h11.

The tests that cannot pass on cno (each with its reason) are listed in
tools/dropin_known_failures/<suite>.txt and run as strict xfails: one that starts passing
fails the run, so the list stays true. The run fails if any other test fails, or if the
list holds more than the suite's allowance (10% of h2's tests; none of h11's connection,
events, state, util and stdlib-interop files; 2% of hypercorn's and of httpcore's).

hypercorn's and httpcore's suites test the installed hypercorn and httpcore, which must
be the pinned versions, with `import h2` and `import h11` both on cno. Their tests need
pytest-asyncio, pytest-trio, trio, anyio and socksio (the `test` extra). Tests that cannot
run here whichever h2/h11 is used (they fail on the real packages too, or need a fixture
from a plugin cno does not depend on) are listed with the reason in
tools/dropin_excluded/<suite>.txt and skipped in both modes.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from typing import NamedTuple, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(ROOT, "build", "dropin-suites")
KNOWN = os.path.join(HERE, "dropin_known_failures")
EXCLUDED = os.path.join(HERE, "dropin_excluded")

class Suite(NamedTuple):
    """A pinned sdist whose tests run on the drop-ins."""
    requirement: str          # pip requirement, pinned
    sha256: str               # of the sdist
    inner: str                # the tests' directory inside the sdist
    outer: str                # the name that directory gets in the cache
    allowance: Optional[float]  # share of the suite the known-failures list may hold
    faces: tuple              # the drop-ins installed for it (cno.dropin.FACES names)


SUITES = {
    "h2": Suite("h2==4.4.1",
                "4e866ffb1a869ae14dd9b5e6beb5c24a13da0495ad72b65925ded182521c1516",
                "tests", "tests", 0.10, ("h2",)),
    "h11": Suite("h11==0.16.0",
                 "4e35b956cf45792e4caa5885e69fba00bdbc6ffafbfa020300e549b208ee5ff1",
                 "h11/tests", "h11_tests", None, ("h11",)),
    # Users of the faces: their tests drive h2 and h11 through the installed hypercorn
    # and httpcore (which must be these versions), with both drop-ins in place.
    "hypercorn": Suite("hypercorn==0.18.0",
                       "d63267548939c46b0247dc8e5b45a9947590e35e64ee73a23c074aa3cf88e9da",
                       "tests", "tests", 0.02, ("h2", "h11")),
    "httpcore": Suite("httpcore==1.0.9",
                      "6e34463af53fd2ab5d807f399a9b45ea31c3dfa2276f15a2c3f00afff6e176e8",
                      "tests", "tests", 0.02, ("h2", "h11")),
}

# h11: only these files must pass in full; the others test h11's private reader, writer,
# header and buffer modules, which cno.h11 does not have (its parsing is cno's engine).
H11_REQUIRED = ("test_connection.py", "test_events.py", "test_state.py", "test_util.py",
                "test_against_stdlib_http.py", "test_helpers.py")


def fetch(name: str) -> str:
    """The suite's tests, unpacked in the cache: downloads and checks the sdist once."""
    requirement, digest, inner, outer = SUITES[name][:4]
    base = os.path.join(CACHE, "%s-%s" % (name, digest[:12]))
    done = os.path.join(base, ".complete")
    if os.path.exists(done):
        return base
    shutil.rmtree(base, ignore_errors=True)
    download = os.path.join(base, "sdist")
    os.makedirs(download)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--no-binary", ":all:", "--dest", download, requirement], check=True)
    (archive,) = [os.path.join(download, f) for f in os.listdir(download)]
    with open(archive, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != digest:
        raise SystemExit("%s: sha256 %s, expected %s" % (archive, got, digest))
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        prefix = "%s/%s/" % (top, inner)
        members = [m for m in tar.getmembers()
                   if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
        for m in members:
            m.name = outer + "/" + m.name[len(prefix):]
        tar.extractall(base, members=members, filter="data")
    if name == "h11":
        # Relative imports of the h11 package's own modules become absolute ones.
        for dirpath, _, files in os.walk(os.path.join(base, outer)):
            for fname in files:
                if fname.endswith(".py"):
                    path = os.path.join(dirpath, fname)
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                    text = re.sub(r"from \.\.(_\w+) import", r"from h11.\1 import", text)
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text)
    open(done, "w").close()
    return base


def _listed(directory: str, name: str) -> dict:
    """{test node id: reason} from <directory>/<name>.txt: lines of
    `nodeid # reason`, blank lines and lines starting with # ignored."""
    path = os.path.join(directory, name + ".txt")
    found = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    nodeid, _, reason = line.partition(" # ")
                    found[nodeid.strip()] = reason.strip() or "no reason given"
    return found


def known_failures(name: str) -> dict:
    """{test node id: reason} from tools/dropin_known_failures/<name>.txt: tests that
    cannot pass on cno's faces (strict xfails there; run normally with --real)."""
    return _listed(KNOWN, name)


def excluded(name: str) -> dict:
    """{test node id: reason} from tools/dropin_excluded/<name>.txt: tests skipped on
    the real packages and on cno alike (they need the network or a plugin that is not
    a test dependency here, or fail on the real packages too)."""
    return _listed(EXCLUDED, name)


class _Lists:
    """pytest plugin: the known failures run as strict xfails, the excluded tests are
    skipped; counts what was collected. Runs before -k/--deselect, so that a stale
    entry is caught whatever the arguments."""

    def __init__(self, known: dict, skipped: dict) -> None:
        self.known = known
        self.skipped = skipped
        self.collected = 0

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config, items):
        self.collected = len(items)
        ids = {item.nodeid for item in items}
        for what, listed in (("known failures", self.known), ("excluded", self.skipped)):
            stale = sorted(set(listed) - ids)
            if stale:
                raise pytest.UsageError("%s that are not tests of the suite: %s"
                                        % (what, ", ".join(stale[:5])))
        for item in items:
            reason = self.skipped.get(item.nodeid)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason="excluded: " + reason))
                continue
            reason = self.known.get(item.nodeid)
            if reason is not None:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def _check_installed(suite: Suite) -> None:
    """The suite tests the installed package it came from: the versions must agree."""
    from importlib import metadata
    project, _, version = suite.requirement.partition("==")
    try:
        got = metadata.version(project)
    except metadata.PackageNotFoundError:
        raise SystemExit("dropin suite: %s is not installed (pip install %s)"
                         % (project, suite.requirement))
    if got != version:
        raise SystemExit("dropin suite: %s %s is installed, the suite is %s's (pip install %s)"
                         % (project, got, version, suite.requirement))


def run(name: str, real: bool, pytest_args: list, installed: bool = False) -> int:
    """Runs suite ``name`` in this process (on cno's faces, or the real packages if
    ``real``); the exit status: pytest's, or 1 if a list breaks its suite's rules.
    ``installed``: the cno that ``import cno`` finds, instead of this checkout's."""
    suite = SUITES[name]
    if real or name not in suite.faces:
        _check_installed(suite)
    base = fetch(name)
    known = {} if real else known_failures(name)
    if not real:
        if not installed:
            sys.path.insert(0, ROOT)
        import cno.dropin
        print("dropin suite %s: cno from %s" % (name, os.path.dirname(cno.dropin.__file__)))
        cno.dropin.install(*suite.faces)
    plugin = _Lists(known, excluded(name))
    os.chdir(base)
    sys.path.insert(0, base)
    args = ["-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", base]
    code = pytest.main(args + pytest_args + [suite.outer], plugins=[plugin])
    allowance = suite.allowance
    if not real and allowance is not None and plugin.collected \
            and len(known) > allowance * plugin.collected:
        print("dropin suite %s: %d known failures of %d tests, above the %d%% allowed"
              % (name, len(known), plugin.collected, allowance * 100))
        return 1
    if not real and name == "h11":
        required = [k for k in known if k.split("::")[0].rsplit("/", 1)[-1] in H11_REQUIRED]
        if required:
            print("dropin suite h11: tests of %s may not be known failures: %s"
                  % (", ".join(H11_REQUIRED), ", ".join(required[:5])))
            return 1
    print("dropin suite %s on %s: %d tests, %d known failures and %d excluded listed; "
          "pytest exit %d" % (name, "the real packages" if real else "cno", plugin.collected,
                              len(known), len(plugin.skipped), code))
    return int(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--real", action="store_true",
                        help="run the suite on the real package instead of cno's face")
    parser.add_argument("--installed", action="store_true",
                        help="use the cno that `import cno` finds (installed, or on "
                             "PYTHONPATH) instead of this checkout")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    # Everything after the first -- is pytest's, wherever the options stand before it
    # (argparse alone would take `h2 --real -- -x` for an unrecognized `-x`).
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    opts = parser.parse_args(argv[:cut])
    sys.exit(run(opts.suite, opts.real, opts.pytest_args + argv[cut + 1:], opts.installed))


if __name__ == "__main__":
    main()

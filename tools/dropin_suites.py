"""Run python-hyper's own test suites against cno's drop-in faces (cno.h2, cno.h11).

    python tools/dropin_suites.py h2            # h2 4.4.1's tests on cno.h2
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
events, state, util and stdlib-interop files).
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(ROOT, "build", "dropin-suites")
KNOWN = os.path.join(HERE, "dropin_known_failures")

# name: (pip requirement, sdist sha256, tests directory inside the sdist, the directory
# name the tests get in the cache, share of the suite allowed in the known-failures list)
SUITES = {
    "h2": ("h2==4.4.1",
           "4e866ffb1a869ae14dd9b5e6beb5c24a13da0495ad72b65925ded182521c1516",
           "tests", "tests", 0.10),
    "h11": ("h11==0.16.0",
            "4e35b956cf45792e4caa5885e69fba00bdbc6ffafbfa020300e549b208ee5ff1",
            "h11/tests", "h11_tests", None),
}

# h11: only these files must pass in full; the others test h11's private reader, writer,
# header and buffer modules, which cno.h11 does not have (its parsing is cno's engine).
H11_REQUIRED = ("test_connection.py", "test_events.py", "test_state.py", "test_util.py",
                "test_against_stdlib_http.py", "test_helpers.py")


def fetch(name: str) -> str:
    """The suite's tests, unpacked in the cache: downloads and checks the sdist once."""
    requirement, digest, inner, outer, _ = SUITES[name]
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


def known_failures(name: str) -> dict:
    """{test node id: reason} from tools/dropin_known_failures/<name>.txt."""
    path = os.path.join(KNOWN, name + ".txt")
    found = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    nodeid, _, reason = line.partition(" # ")
                    found[nodeid.strip()] = reason.strip() or "no reason given"
    return found


class _KnownFailures:
    """pytest plugin: the listed tests run as strict xfails; counts what was collected."""

    def __init__(self, known: dict) -> None:
        self.known = known
        self.collected = 0

    def pytest_collection_modifyitems(self, config, items):
        import pytest
        self.collected = len(items)
        ids = {item.nodeid for item in items}
        stale = sorted(set(self.known) - ids)
        if stale:
            raise pytest.UsageError("known failures that are not tests of the suite: %s"
                                    % ", ".join(stale[:5]))
        for item in items:
            reason = self.known.get(item.nodeid)
            if reason is not None:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def run(name: str, real: bool, pytest_args: list) -> int:
    base = fetch(name)
    outer = SUITES[name][3]
    known = {} if real else known_failures(name)
    if not real:
        sys.path.insert(0, ROOT)
        import cno.dropin
        cno.dropin.install(name)
    import pytest
    plugin = _KnownFailures(known)
    os.chdir(base)
    sys.path.insert(0, base)
    args = ["-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", base]
    code = pytest.main(args + pytest_args + [outer], plugins=[plugin])
    allowance = SUITES[name][4]
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
    print("dropin suite %s on %s: %d tests, %d known failures listed; pytest exit %d"
          % (name, "the real package" if real else "cno", plugin.collected, len(known),
             code))
    return int(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--real", action="store_true",
                        help="run the suite on the real package instead of cno's face")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    opts = parser.parse_args()
    sys.exit(run(opts.suite, opts.real, opts.pytest_args))


if __name__ == "__main__":
    main()

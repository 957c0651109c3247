#!/usr/bin/env bash
# The test command (README): installs cno from this checkout (building the extension
# from source) plus the test dependencies, then runs the whole test suite.
# Extra arguments go to pytest, e.g. `bash tools/test.sh -m "not slow"`.
set -uo pipefail
cd "$(dirname "$0")/.."

# System tools the interop tests drive (.ci/run installs them first; here only if missing).
if ! command -v curl >/dev/null || ! command -v h2load >/dev/null || ! command -v nghttpd >/dev/null \
        || ! command -v openssl >/dev/null || ! command -v chromium >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
    if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
        $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
            nghttp2-client nghttp2-server curl openssl
        # chromium (tests/test_browser.py): a Debian package (Ubuntu ships it as a snap)
        command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install \
            -y -q chromium || echo "note: chromium not installable here: its test skips (fails in CI)" >&2
    else
        echo "note: curl/nghttp2/openssl/chromium missing and not installable here: those tests skip" >&2
    fi
fi

python3 -m pip install -q --upgrade pip >/dev/null
# test: the suite's peers; packaging: what tests/test_packaging.py drives (build,
# cibuildwheel, check-jsonschema); fuzz: atheris where it has wheels.
extras="test,packaging"
# fuzz: atheris, for the fuzz smoke runs (wheels for glibc x86_64 only)
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && ldd --version 2>&1 | grep -qi -e glibc -e "gnu libc"; then
    extras="$extras,fuzz"
fi
python3 -m pip install -q ".[$extras]" || exit 1

# Run from tests/ so `import cno` is the installed package, not the source tree
# (CNO_TEST_INSTALLED: tests/conftest.py stops if it is not).
cd tests
CNO_TEST_INSTALLED=1 python3 -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# The test command (README): installs cno from this checkout (building the extension
# from source) plus the test dependencies, then runs the whole test suite.
# Extra arguments go to pytest, e.g. `bash tools/test.sh -m "not slow"`.
set -uo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --upgrade pip >/dev/null
python3 -m pip install -q ".[test]" || exit 1

# Run from tests/ so `import cno` is the installed package, not the source tree.
cd tests
python3 -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"

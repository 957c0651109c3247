"""The .pyi stubs and py.typed: mypy checks a file that uses the public API against the
installed cno, and the types it reveals are the documented ones."""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
def test_public_api_type_checks():
    pytest.importorskip("mypy")
    import cno
    source = os.path.join(HERE, "typing", "uses_cno.py")
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cno.__file__)))
    if "site-packages" not in package_root:
        env["MYPYPATH"] = package_root   # a source checkout with an in-place build
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--ignore-missing-imports",
         "--hide-error-context", "--no-error-summary", source],
        capture_output=True, text=True, cwd=HERE, timeout=300, env=env)
    lines = [l for l in result.stdout.splitlines() if l.strip()]
    errors = [l for l in lines if ": error:" in l]
    assert not errors, "\n".join(errors)
    revealed = {int(m.group(1)): m.group(2) for m in
                (re.search(r":(\d+): note: Revealed type is \"(.*)\"", l) for l in lines) if m}
    with open(source) as f:
        for number, text in enumerate(f, 1):
            expected = re.search(r"# E: (.*)$", text)
            if expected:
                got = revealed.get(number, "")
                assert got.replace("builtins.", "") == expected.group(1).strip(), (number, got)

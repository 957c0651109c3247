"""Types (issue 8): the package passes ``mypy --strict`` (stubs included), its .pyi stubs
match the compiled modules (``mypy.stubtest``), and a file using the public API
type-checks strictly against the installed cno with the documented revealed types."""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _mypy_env():
    """(environment, package root) for running mypy on the cno that tests import."""
    import cno
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cno.__file__)))
    if "site-packages" not in package_root:
        env["MYPYPATH"] = package_root   # a source checkout with an in-place build
    return env, package_root


def _run(args, env):
    return subprocess.run([sys.executable, "-m"] + args, capture_output=True, text=True,
                          cwd=HERE, timeout=600, env=env)


@pytest.mark.slow
def test_public_api_type_checks():
    pytest.importorskip("mypy")
    env, _ = _mypy_env()
    source = os.path.join(HERE, "typing", "uses_cno.py")
    result = _run(["mypy", "--strict", "--no-incremental", "--hide-error-context",
                   "--no-error-summary", source], env)
    lines = [l for l in result.stdout.splitlines() if l.strip()]
    errors = [l for l in lines if ": error:" in l]
    assert not errors, "\n".join(errors)
    revealed = {int(m.group(1)): m.group(2) for m in
                (re.search(r":(\d+): note: Revealed type is \"(.*)\"", l) for l in lines) if m}
    checked = 0
    with open(source) as f:
        for number, text in enumerate(f, 1):
            expected = re.search(r"# E: (.*)$", text)
            if expected:
                got = revealed.get(number, "")
                assert got.replace("builtins.", "") == expected.group(1).strip(), (number, got)
                checked += 1
    assert checked >= 10


@pytest.mark.slow
def test_package_passes_mypy_strict():
    pytest.importorskip("mypy")
    pytest.importorskip("httpx")   # cno.httpx is checked against httpx's own types
    env, _ = _mypy_env()
    result = _run(["mypy", "--strict", "--no-incremental", "-p", "cno"], env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_stubs_match_runtime():
    pytest.importorskip("mypy")
    env, _ = _mypy_env()
    result = _run(["mypy.stubtest", "--allowlist",
                   os.path.join(HERE, "typing", "stubtest-allowlist.txt"),
                   "cno._core", "cno._hpack", "cno.raw", "cno.errors", "cno.hpack",
                   "cno.asgi._http", "cno._ws"], env)
    assert result.returncode == 0, result.stdout + result.stderr

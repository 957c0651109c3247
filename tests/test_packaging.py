"""Packaging: what the sdist and the wheel hold, that they install and run away from the
checkout, that a clone needs nothing beside it, and that the CI configuration is valid
and builds exactly the intended wheels.

These tests read the repository around tests/ (git, pyproject.toml, .github/); from an
unpacked sdist or a copy of tests/ beside an installed wheel they skip. Tools they drive
come from the ``packaging`` extra (tools/test.sh installs it); in CI (CI=true) a missing
tool is a failure, not a skip.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PYPROJECT = ROOT / "pyproject.toml"

PYTHONS = ["cp310", "cp311", "cp312", "cp313", "cp314", "cp314t"]
INTENDED = {
    "linux": {"%s-%s_%s" % (py, libc, arch) for py in PYTHONS
              for libc in ("manylinux", "musllinux") for arch in ("x86_64", "aarch64")},
    "macos": {"%s-macosx_%s" % (py, arch) for py in PYTHONS for arch in ("x86_64", "arm64")},
    "windows": {"%s-win_amd64" % py for py in PYTHONS},
}
# Tracked files that need not be in the sdist.
NOT_IN_SDIST = (".gitignore", ".github/")


def _git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout


def _in_git_checkout():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False
    try:
        return Path(_git("rev-parse", "--show-toplevel").strip()).resolve() == ROOT
    except subprocess.CalledProcessError:
        return False


IN_CHECKOUT = _in_git_checkout()
needs_checkout = pytest.mark.skipif(
    not IN_CHECKOUT, reason="needs a git checkout around tests/ (this is an sdist or a copy)")
needs_workflows = pytest.mark.skipif(
    not (WORKFLOWS.is_dir() and PYPROJECT.is_file()),
    reason="needs the repository's pyproject.toml and .github/workflows (not shipped)")


def _need(module, what, python=(3, 10)):
    if importlib.util.find_spec(module) is None:
        if sys.version_info < python:
            pytest.skip("%s: %s needs Python %d.%d+" % (what, module, *python))
        message = "%s needs %s: pip install '.[packaging]'" % (what, module)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _run(args, cwd, timeout=600, env=None):
    result = subprocess.run([str(a) for a in args], cwd=str(cwd), capture_output=True,
                            text=True, timeout=timeout, env=env)
    assert result.returncode == 0, "%s failed (%d):\n%s\n%s" % (
        " ".join(map(str, args)), result.returncode, result.stdout[-4000:],
        result.stderr[-4000:])
    return result


def _tracked():
    return [p for p in _git("ls-files", "-z").split("\0") if p]


def _venv(path):
    """A fresh virtual environment; returns its bin (Scripts) directory."""
    _run([sys.executable, "-m", "venv", path], cwd=path.parent, timeout=300)
    return path / ("Scripts" if os.name == "nt" else "bin")


def _exe(bindir, name):
    return bindir / (name + ".exe" if os.name == "nt" else name)


def _clean_env(bindir):
    """The environment for commands run in a venv: no source tree or venv of ours leaks in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_ADDOPTS")}
    env["PATH"] = str(bindir) + os.pathsep + env.get("PATH", "")
    return env


# One request and response through cno.raw in memory, over HTTP/2 and over HTTP/1.1.
SMOKE = r'''
import os, sys
import cno, cno.raw
here = os.path.dirname(os.path.abspath(cno.__file__))
assert os.path.commonpath([here, sys.prefix]) == sys.prefix, (here, sys.prefix)

class Peer(cno.raw.Connection):
    def on_writev(self, chunks):
        self.outbox.append(b"".join(chunks))
    def on_message_head(self, stream, code, method, path, headers):
        self.heads.append((stream, code, method, path))
        if self.is_server:
            self.write_head(stream, 200, "", "", [("content-length", "5")], False)
            self.write_data(stream, b"hello", True)
    def on_message_data(self, stream, data):
        self.body += bytes(data)

def pump(a, b):
    while a.outbox or b.outbox:
        for src, dst in ((a, b), (b, a)):
            out = b"".join(src.outbox)
            src.outbox.clear()
            if out:
                dst.data_received(out)

for http2 in (True, False):
    client, server = Peer(server=False), Peer(server=True)
    for peer in (client, server):
        peer.outbox, peer.heads, peer.body = [], [], b""
        peer.connection_made(http2)
    pump(client, server)
    stream = client.next_stream
    client.write_head(stream, 0, "GET", "/smoke",
                      [(":scheme", "http"), (":authority", "localhost")], True)
    pump(client, server)
    assert server.heads == [(stream, 0, "GET", "/smoke")], server.heads
    assert [h[1] for h in client.heads] == [200] and client.body == b"hello", client.heads
print("smoke ok", cno.__version__, here)
'''


def _check_demo(bindir, cwd):
    result = _run([_exe(bindir, "cno"), "demo"], cwd=cwd, timeout=120, env=_clean_env(bindir))
    assert "HTTP/2" in result.stdout and "HTTP/1.1" in result.stdout, result.stdout


# ---------------------------------------------------------------------------------------
# sdist and wheel, built once for the module


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """python -m build (sdist, then the wheel from that sdist) on a copy of the tracked
    files as they are in the working tree. Returns (sdist, wheel, build output)."""
    if not IN_CHECKOUT:
        pytest.skip("needs a git checkout around tests/ (this is an sdist or a copy)")
    _need("build", "building the sdist and wheel")
    base = tmp_path_factory.mktemp("dists")
    src = base / "src"
    for name in _tracked():
        if (ROOT / name).is_file():   # a tracked file deleted in the working tree is gone
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    result = _run([sys.executable, "-m", "build", "--outdir", base / "dist", src], cwd=base,
                  timeout=900)
    sdists = list((base / "dist").glob("*.tar.gz"))
    wheels = list((base / "dist").glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, list((base / "dist").iterdir())
    return sdists[0], wheels[0], result.stdout + result.stderr


@pytest.mark.slow
def test_build_has_no_deprecation_warning(dists):
    log = dists[2]
    bad = [line for line in log.splitlines() if "deprecat" in line.lower()]
    assert not bad, "\n".join(bad)


@pytest.mark.slow
def test_sdist_holds_every_source_and_no_generated_file(dists):
    sdist = dists[0]
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    prefix = names[0].split("/")[0] + "/"
    files = {n[len(prefix):] for n in names if n.startswith(prefix)}
    generated = sorted(f for f in files if f.endswith((".c", ".so", ".pyd", ".o", ".html"))
                       or f.endswith("_huffman_table.h") or f.startswith(("build/", "dist/"))
                       or "__pycache__" in f)
    assert not generated, generated
    expected = {f for f in _tracked() if not f.startswith(NOT_IN_SDIST)}
    missing = sorted(expected - files)
    assert not missing, "tracked files missing from the sdist: %s" % missing
    for needed in ("cno/_h1.pxi", "cno/_core.pyx", "cno/_hpack.pxd", "cno/py.typed",
                   "cno/_ws.pyx", "cno/_ws.pxd",
                   "cno/asgi/_http.pyx", "cno/h11/_h11.pyx",
                   "tests/typing/uses_cno.py", "tests/data/README.md",
                   "tests/data/hpack-test-case/LICENSE",
                   "tests/data/http2-frame-test-case/LICENSE", "LICENSE", "README.md"):
        assert needed in files, needed


@pytest.mark.slow
def test_wheel_holds_extensions_stubs_and_no_sources(dists):
    wheel = dists[1]
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        metadata = zf.read(dist_info + "/METADATA").decode()
        entry_points = zf.read(dist_info + "/entry_points.txt").decode()
    package = {n for n in names if n.startswith("cno/")}
    for module in ("_core", "_hpack", "_ws", "asgi/_http", "h11/_h11"):
        assert any(n.startswith("cno/%s." % module) and n.endswith((".so", ".pyd"))
                   for n in package), (module, sorted(package))
    tracked = [f for f in _tracked() if f.startswith("cno/")]
    for f in tracked:
        if f.endswith((".py", ".pyi", ".pxd", "py.typed")):
            assert f in package, f
    sources = sorted(n for n in package if n.endswith((".pyx", ".pxi", ".c", ".h")))
    assert not sources, sources
    assert dist_info + "/licenses/LICENSE" in names
    fields = [line.split(": ", 1) for line in metadata.split("\n\n")[0].splitlines()
              if ": " in line]
    assert ["License-Expression", "MIT"] in fields
    assert ["License-File", "LICENSE"] in fields
    assert ["Requires-Python", ">=3.10"] in fields
    urls = [v for k, v in fields if k == "Project-URL"]
    assert any(u.startswith("Repository, https://") for u in urls), urls
    assert "cno = cno.cli:main" in entry_points


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(dists, tmp_path):
    wheel = dists[1]
    if sys.platform.startswith("linux"):
        # What cibuildwheel does to each Linux wheel; the repaired wheel is what users get.
        _need("auditwheel", "repairing the wheel")
        bindir = Path(sys.executable).parent
        env = _clean_env(bindir)
        _run([sys.executable, "-m", "auditwheel", "repair", "--strip", "-w", tmp_path / "wh",
              wheel], cwd=tmp_path, env=env)
        (wheel,) = (tmp_path / "wh").glob("*.whl")
        shown = _run([sys.executable, "-m", "auditwheel", "show", wheel], cwd=tmp_path, env=env)
        assert "manylinux_" in shown.stdout, shown.stdout
    bindir = _venv(tmp_path / "venv")
    python = _exe(bindir, "python")
    _run([python, "-m", "pip", "install", "-q", wheel], cwd=tmp_path, env=_clean_env(bindir))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run([python, "-c", SMOKE], cwd=elsewhere, env=_clean_env(bindir))
    assert result.stdout.startswith("smoke ok"), result.stdout
    _check_demo(bindir, elsewhere)


# ---------------------------------------------------------------------------------------
# A clone with nothing beside it


def _collected(python, tests_dir, env):
    result = subprocess.run(
        [str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=str(tests_dir), capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return {line.strip() for line in result.stdout.splitlines() if "::" in line}


@pytest.mark.slow
@needs_checkout
def test_fresh_clone_installs_demos_and_collects_every_test(tmp_path):
    home = tmp_path / "alone"   # the clone has nothing beside it, no test data in particular
    home.mkdir()
    clone = home / "cno"
    _run(["git", "clone", "--quiet", ROOT, clone], cwd=home)
    assert sorted(os.listdir(home)) == ["cno"]
    bindir = _venv(tmp_path / "venv")
    python = _exe(bindir, "python")
    env = _clean_env(bindir)
    _run([python, "-m", "pip", "install", "-q", ".[test]"], cwd=clone, env=env, timeout=900)
    # The README's first command, from the clone's root: the console script imports the
    # installed package although the source tree's cno/ is right there.
    _check_demo(bindir, clone)

    env["CNO_TEST_INSTALLED"] = "1"
    theirs = _collected(python, clone / "tests", env)
    ours = _collected(sys.executable, ROOT / "tests", dict(os.environ, PYTEST_ADDOPTS=""))
    # Test files changed since the last commit are not in the clone.
    changed = {line[3:] for line in _git("status", "--porcelain", "--", "tests").splitlines()}
    if changed:
        ours = {t for t in ours if "tests/" + t.split("::")[0] not in changed}
        theirs = {t for t in theirs if "tests/" + t.split("::")[0] not in changed}
    assert len(theirs) > 1000
    assert theirs == ours, ("only in the working tree: %s; only in the clone: %s" % (
        sorted(ours - theirs)[:20], sorted(theirs - ours)[:20]))


# ---------------------------------------------------------------------------------------
# CI configuration


@needs_workflows
def test_workflows_validate_against_the_github_schema():
    _need("check_jsonschema", "validating the workflows")
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert files
    bindir = Path(sys.executable).parent
    _run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
          "vendor.github-workflows", *files], cwd=ROOT, env=_clean_env(bindir))


def _identifiers(platform, **env_vars):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    env.update(env_vars)
    result = _run([sys.executable, "-m", "cibuildwheel", "--print-build-identifiers",
                   "--platform", platform], cwd=ROOT, env=env, timeout=120)
    return result.stdout.split()


@needs_workflows
@pytest.mark.parametrize("platform", sorted(INTENDED))
def test_cibuildwheel_builds_the_intended_wheels(platform):
    _need("cibuildwheel", "listing the wheels", python=(3, 11))
    found = _identifiers(platform)
    assert len(found) == len(set(found))
    assert set(found) == INTENDED[platform]


NATIVE = {"ubuntu": "x86_64", "ubuntu-arm": "aarch64", "macos": "arm64",
          "macos-intel": "x86_64", "windows": "AMD64"}


@needs_workflows
def test_wheel_jobs_cover_the_set_once_each_on_native_runners():
    _need("cibuildwheel", "listing the wheels", python=(3, 11))
    _need("yaml", "reading the workflows")
    import yaml
    with open(WORKFLOWS / "wheels.yml", encoding="utf-8") as f:
        workflow = yaml.safe_load(f)
    job = workflow["jobs"]["wheels"]
    seen = []
    for entry in job["strategy"]["matrix"]["include"]:
        os_label = entry["os"]
        family = os_label.split("-")[0]
        platform = {"ubuntu": "linux", "macos": "macos", "windows": "windows"}[family]
        kind = family + ("-arm" if os_label.endswith("-arm") else "") + (
            "-intel" if os_label.endswith("-intel") else "")
        assert entry["archs"] == NATIVE[kind], entry   # no emulation
        env = {"CIBW_ARCHS": entry["archs"], "CIBW_SKIP": entry.get("skip", "")}
        found = _identifiers(platform, **env)
        assert found, entry
        seen += found
    assert len(seen) == len(set(seen)), "built twice: %s" % sorted(
        i for i in set(seen) if seen.count(i) > 1)
    assert set(seen) == set().union(*INTENDED.values())


@needs_workflows
def test_wheel_tests_run_outside_the_source_tree():
    try:
        import tomllib
    except ModuleNotFoundError:   # Python 3.10
        _need("tomli", "reading pyproject.toml")
        import tomli as tomllib
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["cibuildwheel"]
    # Only copies of these reach the test directory: no cno/ to shadow the wheel.
    assert set(config["test-sources"]) == {"tests", "pyproject.toml"}
    assert "{project}" not in config["test-command"] and "{package}" not in config["test-command"]
    assert '-m "not slow"' in config["test-command"]
    assert config["test-environment"] == {"CNO_TEST_INSTALLED": "1"}
    assert config["test-extras"] == ["test"]

"""cno.dropin (docs/dropin.md): `import h2` / `import h11` resolved to cno.h2 / cno.h11.

Installing changes the process it runs in (sys.meta_path, sys.modules), so every test
runs its code in a fresh interpreter: ``python -c`` for install(), ``python -m
cno.dropin`` for the command line. The child finds this cno (checkout or installed) as
the test process did.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

import cno

# The child imports the cno this process imported (a checkout run with PYTHONPATH, or the
# installed one), whatever its working directory.
CNO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cno.__file__)))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [CNO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))

# The modules of each face that code written against the real package imports (h2's
# public modules; h11's package and the private modules its own tests import).
H2_MODULES = ("config", "connection", "errors", "events", "exceptions", "settings")
H11_MODULES = ("_connection", "_events", "_state", "_util")


def face(name):
    """Skips the test while the face cno.<name> does not exist."""
    pytest.importorskip("cno." + name)


def real(name):
    """Skips the test if the real package is not installed (the `test` extra has both)."""
    if importlib.util.find_spec(name) is None:
        pytest.skip("the real %s is not installed" % name)


def python(*argv, cwd=None, check=True):
    """Runs ``python argv`` with this cno importable; its CompletedProcess (text)."""
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=60, env=ENV, cwd=cwd)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def run_code(code, **kw):
    return python("-c", textwrap.dedent(code), **kw)


def test_h2_aliases_are_cno_modules():
    face("h2")
    out = run_code("""
        import sys
        import cno.dropin
        cno.dropin.install("h2")
        import h2, h2.connection, h2.events, h2.config, h2.exceptions, h2.errors, h2.settings
        import cno.h2, cno.h2.events, cno.h2.connection
        assert h2 is cno.h2
        for sub in %r:
            mod = sys.modules["h2." + sub]
            assert mod is sys.modules["cno.h2." + sub] is getattr(h2, sub), sub
            # the module keeps its own name and spec: its repr, reload and the relative
            # imports its functions make still name cno.h2
            assert mod.__name__ == mod.__spec__.name == "cno.h2." + sub, mod.__spec__
        from h2.events import DataReceived, RequestReceived
        from h2.connection import H2Connection
        from h2.config import H2Configuration
        assert DataReceived is cno.h2.events.DataReceived
        assert h2.events.RequestReceived is RequestReceived is cno.h2.events.RequestReceived
        assert H2Connection is cno.h2.connection.H2Connection
        assert H2Configuration is cno.h2.config.H2Configuration
        assert h2.exceptions.ProtocolError is cno.h2.exceptions.ProtocolError
        assert cno.dropin.installed("h2") and not cno.dropin.installed("h11")
        # an object made through the alias is cno's
        conn = h2.connection.H2Connection(H2Configuration(client_side=True))
        conn.initiate_connection()
        assert type(conn).__module__ == "cno.h2.connection"
        assert conn.data_to_send().startswith(b"PRI * HTTP/2.0")
        print("ok")
        """ % (H2_MODULES,))
    assert out.stdout == "ok\n"


def test_h11_aliases_are_cno_modules():
    face("h11")
    out = run_code("""
        import sys
        import cno.dropin
        cno.dropin.install("h11")
        import h11, h11._events, h11._state, h11._util, h11._connection
        import cno.h11
        assert h11 is cno.h11
        for sub in %r:
            assert sys.modules["h11." + sub] is sys.modules["cno.h11." + sub], sub
            assert sys.modules["h11." + sub].__spec__.name == "cno.h11." + sub
        from h11 import Connection, Request, CLIENT, NEED_DATA
        from h11._events import Request as PrivateRequest
        assert Request is PrivateRequest is cno.h11.Request
        assert Connection is cno.h11.Connection and NEED_DATA is cno.h11.NEED_DATA
        assert cno.dropin.installed("h11") and not cno.dropin.installed("h2")
        conn = Connection(CLIENT)
        wire = conn.send(Request(method="GET", target="/", headers=[("Host", "a")]))
        assert wire.startswith(b"GET / HTTP/1.1\\r\\n"), wire
        print("ok")
        """ % (H11_MODULES,))
    assert out.stdout == "ok\n"


def test_install_both_by_default_and_again():
    face("h2")
    face("h11")
    out = run_code("""
        import sys
        import cno.dropin
        cno.dropin.install()
        import h2.events, h11
        cno.dropin.install()             # again, after the imports: harmless
        cno.dropin.install("h2")
        finders = [f for f in sys.meta_path if isinstance(f, cno.dropin._Alias)]
        assert sorted(f.public for f in finders) == ["h11", "h2"], finders
        assert h2.events.__name__ == "cno.h2.events" and h11.__name__ == "cno.h11"
        print("ok")
        """)
    assert out.stdout == "ok\n"


@pytest.mark.parametrize("name, missing", [("h2", "h2.nothing"), ("h11", "h11._nothing")])
def test_import_of_a_module_the_face_lacks_fails(name, missing):
    face(name)
    out = run_code("""
        import sys
        import cno.dropin
        cno.dropin.install(%r)
        try:
            import %s
        except ModuleNotFoundError as e:
            assert e.name == %r, e.name
        else:
            raise AssertionError("imported")
        assert %r not in sys.modules
        print("ok")
        """ % (name, missing, missing, missing))
    assert out.stdout == "ok\n"


@pytest.mark.parametrize("first", ["h2", "h2.events", "h11", "h11._events"])
def test_real_package_imported_first(first):
    name = first.split(".")[0]
    real(name)
    out = run_code("""
        import sys
        import %s
        import cno.dropin
        for names in [(%r,), ()]:        # alone, and as part of all of them
            try:
                cno.dropin.install(*names)
            except RuntimeError as e:
                assert "%s" in str(e) and "before" in str(e), e
            else:
                raise AssertionError("installed")
        # nothing was installed, not even the other face
        assert not any(isinstance(f, cno.dropin._Alias) for f in sys.meta_path)
        assert not cno.dropin.installed("h2") and not cno.dropin.installed("h11")
        print("ok")
        """ % (first, name, name))
    assert out.stdout == "ok\n"


def test_unknown_names():
    out = run_code("""
        import sys
        import cno.dropin
        for names in [("h3",), ("h2", "http2"), ("H2",)]:
            try:
                cno.dropin.install(*names)
            except ValueError as e:
                assert "no drop-in for" in str(e) and "h2, h11" in str(e), e
            else:
                raise AssertionError(names)
        assert not any(isinstance(f, cno.dropin._Alias) for f in sys.meta_path)
        print("ok")
        """)
    assert out.stdout == "ok\n"


# -- python -m cno.dropin ------------------------------------------------------------------

PROGRAM = """\
import sys
import cno.dropin
import h2, h11
import helper
print(h2.__name__, h11.__name__, cno.dropin.installed("h2"), cno.dropin.installed("h11"))
print(__name__, sys.argv[1:], helper.WHERE)
cno.dropin.install()             # a program that installs them itself: harmless
"""


@pytest.fixture
def program(tmp_path):
    """A directory with prog.py (prints what it imported, its argv) and helper.py."""
    (tmp_path / "prog.py").write_text(PROGRAM)
    (tmp_path / "helper.py").write_text("WHERE = 'beside prog'\n")
    return tmp_path


def test_cli_module(program):
    face("h2")
    face("h11")
    # -m ends the options: what follows, -m and --only included, is the program's
    out = python("-m", "cno.dropin", "-m", "prog", "a", "--only", "-m", "x", cwd=program)
    assert out.stdout.splitlines() == [
        "cno.h2 cno.h11 True True",
        "__main__ ['a', '--only', '-m', 'x'] beside prog"]


def test_cli_script(program, tmp_path_factory):
    face("h2")
    face("h11")
    elsewhere = tmp_path_factory.mktemp("cwd")
    # python script.py puts the script's directory first on sys.path: helper.py is found
    out = python("-m", "cno.dropin", str(program / "prog.py"), "--help", "b",
                 cwd=elsewhere)
    assert out.stdout.splitlines() == [
        "cno.h2 cno.h11 True True",
        "__main__ ['--help', 'b'] beside prog"]


def test_cli_code():
    face("h2")
    out = python("-m", "cno.dropin", "--only", "h2", "-c",
                 "import sys, h2; print(h2.__name__, __name__, sys.argv)", "-m", "x")
    assert out.stdout == "cno.h2 __main__ ['-c', '-m', 'x']\n"


def test_cli_only(program):
    face("h11")
    real("h2")
    out = python("-m", "cno.dropin", "--only", "h11", "-m", "prog", cwd=program,
                 check=False)
    # the program's own install() finds the real h2 imported: the error that says so
    assert out.returncode == 1
    assert out.stdout.splitlines()[0] == "h2 cno.h11 False True"
    assert "RuntimeError: cno.dropin.install('h2'): h2 was imported before" in out.stderr


@pytest.mark.parametrize("argv, error", [
    ([], "give a script, -m module or -c code"),
    (["-c"], "expected the code"),
    (["-m"], "expected a module name"),
    (["--only", "h3", "-m", "prog"], "invalid choice: 'h3'"),
    (["--bogus", "prog.py"], "unrecognized arguments: --bogus"),
])
def test_cli_usage_errors(argv, error):
    out = python("-m", "cno.dropin", *argv, check=False)
    assert out.returncode == 2
    assert "usage: python -m cno.dropin" in out.stderr and error in out.stderr, out.stderr


@pytest.mark.parametrize("module", ["no_such_module_here", "no_such_package.sub"])
def test_cli_missing_module(module):
    out = python("-m", "cno.dropin", "-m", module, check=False)
    assert (out.returncode, out.stderr) == (
        1, "python -m cno.dropin: No module named %s\n" % module)


SPAWNING = """\
import multiprocessing
import sys


def names(_):
    import h2, h11
    return h2.__name__, h11.__name__


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        import cno.dropin
        cno.dropin.install()
    with multiprocessing.get_context(%r).Pool(1) as pool:
        print(pool.map(names, [0]))
"""


@pytest.mark.parametrize("method", ["spawn", "fork"])
@pytest.mark.parametrize("how", ["cli", "install"])
def test_child_processes_get_the_dropins(tmp_path, method, how):
    # hypercorn's workers are spawned: a fresh interpreter that imports h2 from scratch
    face("h2")
    face("h11")
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("no %s start method here" % method)
    (tmp_path / "spawning.py").write_text(SPAWNING % method)
    if how == "cli":
        out = python("-m", "cno.dropin", "spawning.py", cwd=tmp_path)
    else:
        out = python("spawning.py", "install", cwd=tmp_path)
    assert out.stdout == "[('cno.h2', 'cno.h11')]\n", out.stderr

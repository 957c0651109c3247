"""Run unmodified code written against python-hyper's ``h2`` and ``h11`` on cno's engine.

:func:`install` makes ``import h2`` / ``import h11`` (and their submodules,
``h2.connection``, ``h11._events``, ...) resolve to :mod:`cno.h2` / :mod:`cno.h11`. Call
it before the code that imports them is imported::

    import cno.dropin
    cno.dropin.install()          # or install("h2"), install("h11")
    import hypercorn.asyncio      # its `import h2.connection` is cno.h2.connection now

or without touching the code::

    python -m cno.dropin -m hypercorn app:app      # python -m cno.dropin [--only h2] script.py args

The processes that multiprocessing spawns from there (hypercorn's workers) install the
same drop-ins before anything else; forked ones inherit them. Code that imports cno.h2 or cno.h11 directly needs none of this, and nothing else in cno
changes (``python -m cno serve``, the asyncio faces). docs/dropin.md lists what differs.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import types
from importlib.machinery import ModuleSpec
from typing import Any, List, Optional, Sequence

__all__ = ["FACES", "install", "installed"]

#: The names :func:`install` knows, each with the cno module that answers for it.
FACES = {"h2": "cno.h2", "h11": "cno.h11"}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``public`` and ``public.*`` as the modules ``target`` and ``target.*``: the
    very same module objects, so ``h2.events.DataReceived is cno.h2.events.DataReceived``."""

    def __init__(self, public: str, target: str) -> None:
        self.public = public
        self.target = target

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[types.ModuleType] = None) -> Optional[ModuleSpec]:
        if fullname != self.public and not fullname.startswith(self.public + "."):
            return None
        real = self.target + fullname[len(self.public):]
        spec = importlib.util.find_spec(real)
        if spec is None:
            return None   # `import h2.nothing` fails as it would with h2
        return importlib.util.spec_from_loader(
            fullname, self, is_package=spec.submodule_search_locations is not None)

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target + spec.name[len(self.public):])
        spec.loader_state = module.__spec__   # for exec_module
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The cno module ran when create_module imported it. The import system has just
        # set its __spec__ to the alias's (it always overwrites __spec__): give it back
        # its own, or its repr, importlib.reload() and the relative imports its functions
        # make later (__package__ would disagree with __spec__.parent: ImportWarning)
        # would take it for a module named h2.
        alias = module.__spec__
        if alias is not None:
            module.__spec__ = alias.loader_state


def installed(name: str) -> bool:
    """Whether ``import <name>`` resolves to cno's face (``name`` is ``"h2"`` or ``"h11"``)."""
    return any(isinstance(f, _Alias) and f.public == name for f in sys.meta_path)


def install(*names: str) -> None:
    """Make ``import h2`` and ``import h11`` (or only the ``names`` given) resolve to
    cno.h2 and cno.h11 from now on in this process. Calling it again is harmless.

    Raises RuntimeError if a real ``h2``/``h11`` module was imported already: objects
    made from it would be mixed with cno's (call install() first thing), and ValueError
    for a name other than those in :data:`FACES`; either way, nothing is installed.
    """
    names = names or tuple(FACES)
    for name in names:          # every name checked before any is installed
        if name not in FACES:
            raise ValueError("cno.dropin.install: no drop-in for %r (known: %s)"
                             % (name, ", ".join(FACES)))
        if installed(name):
            continue
        loaded = [m for m in sys.modules if m == name or m.startswith(name + ".")]
        if loaded:
            raise RuntimeError(
                "cno.dropin.install(%r): %s was imported before; call install() before "
                "anything imports it" % (name, loaded[0]))
    for name in names:
        if not installed(name):
            sys.meta_path.insert(0, _Alias(name, FACES[name]))
    _follow_spawn()


def _follow_spawn() -> None:
    """Make the processes that multiprocessing starts by "spawn" (a fresh interpreter:
    hypercorn's workers, ProcessPoolExecutor where it spawns) install the drop-ins this
    process has before they import anything else: their command line imports cno.dropin
    first. Children by "fork" inherit the finders; "forkserver" children (forked from a
    server process started clean) do not get them."""
    import multiprocessing.spawn as spawn

    if getattr(spawn.get_command_line, "_cno_dropin", False):
        return
    original = spawn.get_command_line
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def get_command_line(**kwds: Any) -> List[str]:
        cmd: List[str] = original(**kwds)
        names = [f.public for f in sys.meta_path if isinstance(f, _Alias)]
        if names and "-c" in cmd:
            # sys.path is the child's default until spawn_main sets the parent's: make
            # this cno importable first.
            i = cmd.index("-c") + 1
            cmd[i] = ("import sys; sys.path.insert(0, %r); import cno.dropin; "
                      "cno.dropin.install(%s); " % (here, ", ".join(map(repr, names)))
                      + cmd[i])
        return cmd

    setattr(get_command_line, "_cno_dropin", True)
    spawn.get_command_line = get_command_line


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m cno.dropin [--only h2|h11] (-m module | -c code | script) [args...]``:
    runs a module, code or a script as ``python`` would, with the drop-ins installed. As
    with ``python``, the options end at ``-m module``, ``-c code`` or the script:
    everything after them is the program's own (``python -m cno.dropin -m hypercorn
    --bind ... app:app``)."""
    import argparse
    import runpy

    parser = argparse.ArgumentParser(
        prog="python -m cno.dropin",
        usage="%(prog)s [--only h2|h11] (-m module | -c code | script) [args ...]",
        description="Run a program with `import h2` / `import h11` resolved to cno.")
    parser.add_argument("--only", action="append", choices=sorted(FACES),
                        help="install only this drop-in (repeatable; default: all)")
    argv = list(sys.argv[1:] if argv is None else argv)
    i = 0
    while i < len(argv):        # the options of this module end where the program starts
        arg = argv[i]
        if arg == "--only":
            i += 2
        elif arg == "--" or arg.startswith(("-m", "-c")) or not arg.startswith("-"):
            break
        else:
            i += 1              # --only=h2, -h, or an error that argparse reports
    opts = parser.parse_args(argv[:i])
    rest = argv[i:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    elif rest and rest[0].startswith("-m"):
        module = rest[0][2:] or (rest[1] if len(rest) > 1 else "")
        if not module:
            parser.error("argument -m: expected a module name")
        install(*(opts.only or ()))
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:   # a parent package is missing
            found = False
        if not found:         # as python -m says it, without a traceback
            sys.exit("%s: No module named %s" % (parser.prog, module))
        sys.argv = [module] + rest[1 if rest[0] != "-m" else 2:]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    elif rest and rest[0].startswith("-c"):
        code = rest[0][2:] or (rest[1] if len(rest) > 1 else None)
        if code is None:
            parser.error("argument -c: expected the code")
        install(*(opts.only or ()))
        sys.argv = ["-c"] + rest[1 if rest[0] != "-c" else 2:]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
        return
    if not rest:
        parser.error("give a script, -m module or -c code")
    install(*(opts.only or ()))
    sys.argv = rest
    # `python script.py` puts the script's directory first on sys.path (instead of the
    # current directory that `python -m cno.dropin` put there).
    sys.path[0] = os.path.dirname(os.path.abspath(rest[0]))
    runpy.run_path(rest[0], run_name="__main__")


if __name__ == "__main__":
    # `python -m cno.dropin` runs this file as __main__, a second copy of the module:
    # run the one that `import cno.dropin` gives, so that installed() and install() called
    # by the program see the finders put in place here.
    from cno.dropin import main as _main
    _main()

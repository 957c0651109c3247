"""Build the Cython extension modules cno/*.pyx (the engine) and cno/asgi/*.pyx.

Metadata lives in pyproject.toml; this file only describes the extensions. Cython runs
at build_ext time (not for sdist or egg_info, so an sdist carries the .pyx sources and no
generated C) with language_level=3 and its warnings treated as errors. gcc and clang
compile with -O3 -Wall -Werror (set CNO_ALLOW_WARNINGS=1 to build with a compiler whose
warnings we have not seen); MSVC with /O2.

    pip install -e .                        # or, with setuptools>=77 and Cython installed:
    python setup.py build_ext --inplace     # CNO_ANNOTATE=1: Cython's HTML beside each module
"""
import glob
import os
import sys

import setuptools
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _version(text):
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


# pyproject.toml uses PEP 639 license metadata (license = "MIT", license-files), which
# setuptools reads only from 77 on; older ones stop with an unhelpful validation error.
# pip's isolated builds always get >= 77 from [build-system]; this is for setup.py run
# directly by a Python whose own setuptools is older.
if _version(setuptools.__version__) < (77,):
    sys.exit("cno needs setuptools>=77 to build (this Python has %s): run "
             "`pip install -e .`, or `pip install \"setuptools>=77\" \"Cython>=3.1,<3.4\"` "
             "first." % setuptools.__version__)

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}


class cythonize_build_ext(build_ext):
    """Generates the Huffman header and runs Cython only when extensions are built, and
    picks compiler flags by the compiler actually used (MSVC rejects gcc's flags)."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = True   # _core and _hpack compile side by side

    def run(self):
        # Not in finalize_options: sdist finalizes build_ext to list sources, and must see
        # the .pyx files, not generated C.
        sys.path.insert(0, os.path.join(HERE, "tools"))
        import gen_huffman  # tools/ is not a package

        from Cython.Build import cythonize
        from Cython.Compiler import Options

        gen_huffman.main(os.path.join(HERE, "cno", "_huffman_table.h"))
        Options.warning_errors = True
        compiled = cythonize(
            self.extensions,
            compiler_directives=DIRECTIVES,
            annotate=bool(os.environ.get("CNO_ANNOTATE")),
        )
        # Keep setuptools' own Extension objects (finalize_options annotated them); take
        # only the generated C sources from Cython's copies.
        for ext, c_ext in zip(self.extensions, compiled):
            ext.sources = c_ext.sources
        super().run()

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2"]
        else:
            flags = ["-O3"]
            if not os.environ.get("CNO_ALLOW_WARNINGS"):
                # python.org's macOS builds put -Wunreachable-code in CFLAGS, and Cython's
                # generated error paths trip it (clang); gcc accepts and ignores the flag.
                flags += ["-Wall", "-Werror", "-Wno-unreachable-code"]
        for ext in self.extensions:
            ext.extra_compile_args = flags + list(ext.extra_compile_args or [])
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            os.path.splitext(os.path.relpath(path, HERE))[0].replace(os.sep, "."),
            [os.path.relpath(path, HERE).replace(os.sep, "/")],
            include_dirs=["cno"],
        )
        for path in sorted(glob.glob(os.path.join(HERE, "cno", "*.pyx"))
                           + glob.glob(os.path.join(HERE, "cno", "asgi", "*.pyx"))
                           + glob.glob(os.path.join(HERE, "cno", "h11", "*.pyx")))
    ],
    cmdclass={"build_ext": cythonize_build_ext},
)

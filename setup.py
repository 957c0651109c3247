"""Build the Cython extension modules cno/*.pyx.

Cython runs with language_level=3 and its warnings treated as errors; the C compiler runs
with -Wall -Werror on gcc/clang (set CNO_ALLOW_WARNINGS=1 to build with a compiler whose
warnings we have not seen).
"""
import glob
import os
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "tools"))
import gen_huffman  # noqa: E402  (tools/ is not a package)

from Cython.Build import cythonize  # noqa: E402
from Cython.Compiler import Options  # noqa: E402

Options.warning_errors = True

gen_huffman.main(os.path.join(HERE, "cno", "_huffman_table.h"))

compile_args = ["-O3"]
if os.name != "nt" and not os.environ.get("CNO_ALLOW_WARNINGS"):
    compile_args += ["-Wall", "-Werror"]

directives = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}

extensions = [
    Extension(
        "cno." + os.path.splitext(os.path.basename(path))[0],
        [os.path.relpath(path, HERE)],
        include_dirs=["cno"],
        extra_compile_args=compile_args,
    )
    for path in sorted(glob.glob(os.path.join(HERE, "cno", "*.pyx")))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=bool(os.environ.get("CNO_ANNOTATE")),
    ),
)

#!/usr/bin/env bash
# Builds cno's extension modules with clang, AddressSanitizer, UndefinedBehaviorSanitizer
# and libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link), into build-fuzz/
# (gitignored), apart from the normal in-place build. The harnesses in fuzz/ then run
# coverage-guided over the C code. See fuzz/README.md.
#
#   bash tools/fuzz-build.sh            # then run what it prints
#
# Needs clang and its sanitizer runtimes (Debian/Ubuntu: clang libclang-rt-14-dev; they
# are installed with apt-get when missing and we may), Cython>=3.1, setuptools>=77 and
# atheris (pip install atheris): the sanitizer runtime used at run time is atheris's
# asan_with_fuzzer.so, which also carries libFuzzer and UBSan's handlers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${CNO_FUZZ_BUILD:-$ROOT/build-fuzz}
PY=${PYTHON:-python3}

if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan-x86_64.a \
        >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
    if command -v apt-get >/dev/null; then
        $SUDO apt-get update -q
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q clang libclang-rt-14-dev \
            || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q clang
    else
        echo "clang with its sanitizer runtimes is needed" >&2
        exit 1
    fi
fi
if ! "$PY" -c "import atheris" 2>/dev/null; then
    "$PY" -m pip install -q atheris
fi
ATHERIS_DIR=$("$PY" -c "import atheris; print(atheris.path())")
ASAN_SO="$ATHERIS_DIR/asan_with_fuzzer.so"
[ -f "$ASAN_SO" ] || { echo "no $ASAN_SO: atheris too old?" >&2; exit 1; }

SAN="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined"
SAN="$SAN -fsanitize-ignorelist=$ROOT/fuzz/ubsan-ignorelist.txt"
export CC=clang LDSHARED="clang -shared"
export CFLAGS="$SAN -fno-omit-frame-pointer -g"
export LDFLAGS="-fsanitize=address,undefined"
# clang warns about things in Cython's output that gcc does not; -Werror stays for gcc.
export CNO_ALLOW_WARNINGS=1

rm -rf "$OUT/lib" "$OUT/tmp"
mkdir -p "$OUT"
# Cython writes its C beside the .pyx (cno/*.c, gitignored, the same C as a normal
# build); the objects and the sanitized .so files go under $OUT only. --force: recompile
# even if a normal build left newer objects elsewhere.
"$PY" setup.py -q build_py --build-lib "$OUT/lib" \
    build_ext --force --build-lib "$OUT/lib" --build-temp "$OUT/tmp"

# Every sanitizer symbol the modules need must come from atheris's runtime.
defined=$(nm -D --defined-only "$ASAN_SO" | awk '{print $3}')
missing=$(for so in "$OUT"/lib/cno/*.so; do nm -u "$so" | awk '{print $2}'; done \
          | grep -E '^__(asan|ubsan|sanitizer)' | sort -u | grep -vxF "$defined" || true)
if [ -n "$missing" ]; then
    echo "atheris's runtime lacks: $missing" >&2
    exit 1
fi

cat > "$OUT/env.sh" <<ENV
# source this to run a harness against the sanitized build
export LD_PRELOAD="$ASAN_SO"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:handle_abort=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONPATH="$OUT/lib"
export CNO_FUZZ_SANITIZED=1
ENV

cat <<MSG
Sanitized build in $OUT/lib. Run a harness with:

    source $OUT/env.sh
    $PY fuzz/fuzz_h2_server.py fuzz/corpus/fuzz_h2_server -max_len=4096

or without sourcing:

    LD_PRELOAD=$ASAN_SO \\
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \\
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \\
    PYTHONPATH=$OUT/lib $PY fuzz/fuzz_hpack.py fuzz/corpus/fuzz_hpack -runs=100000

Long runs: bash tools/fuzz-long.sh [harness]
MSG

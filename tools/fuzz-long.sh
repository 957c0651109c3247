#!/usr/bin/env bash
# Long fuzzing runs under ASan + UBSan (the build of tools/fuzz-build.sh), one harness at
# a time, one core, at low priority. See fuzz/README.md.
#
#   bash tools/fuzz-long.sh                  # every harness, 1,000,000 inputs each
#   bash tools/fuzz-long.sh fuzz_h2_server   # one (or several) harness(es)
#   RUNS=5000000 bash tools/fuzz-long.sh fuzz_pair
#   MAX_TOTAL_TIME=3600 RUNS=-1 bash tools/fuzz-long.sh fuzz_hpack   # by time instead
#
# Each run starts from a scratch copy of fuzz/corpus/<harness> (the committed corpus is
# never written to; KEEP=1 leaves the grown copy in build-fuzz/long/ for -merge=1), logs to
# fuzz/crashers/<harness>-<date>.log, and writes what it finds (crash-*, timeout-*,
# oom-*) to fuzz/crashers/. The summary line per harness: inputs run, execs/s, wall time,
# result. The exit code is non-zero if any harness found something.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
RUNS=${RUNS:-1000000}
NICE=${NICE:-10}
OUT=${CNO_FUZZ_BUILD:-$ROOT/build-fuzz}
CRASHERS=$ROOT/fuzz/crashers

if [ ! -f "$OUT/env.sh" ]; then
    echo "no sanitized build in $OUT: run bash tools/fuzz-build.sh first" >&2
    exit 2
fi
# shellcheck disable=SC1091
source "$OUT/env.sh"

# Per-harness input size limits: large enough for several frames or messages, small
# enough for thousands of inputs a second.
max_len() {
    case "$1" in
        fuzz_hpack) echo 1024 ;;
        fuzz_pair) echo 256 ;;
        fuzz_diff) echo 1024 ;;
        *) echo 2048 ;;
    esac
}
dict() {
    case "$1" in
        fuzz_h1_server|fuzz_h1_client|fuzz_h2c_upgrade) echo "-dict=$ROOT/fuzz/h1.dict" ;;
    esac
}

if [ $# -eq 0 ]; then
    set -- fuzz_hpack fuzz_h2_server fuzz_h2_client fuzz_h1_server fuzz_h1_client \
        fuzz_h2c_upgrade fuzz_pair fuzz_diff
fi

mkdir -p "$CRASHERS" "$OUT/long"
status=0
summary=()
for name in "$@"; do
    name=${name%.py}
    name=${name#fuzz/}
    [ -f "fuzz/$name.py" ] || { echo "no harness fuzz/$name.py" >&2; exit 2; }
    work="$OUT/long/$name"
    rm -rf "$work"
    mkdir -p "$work"
    cp -r "fuzz/corpus/$name/." "$work/" 2>/dev/null || true
    log="$CRASHERS/$name-$(date -u +%Y%m%dT%H%M%SZ).log"
    extra=()
    [ -n "${MAX_TOTAL_TIME:-}" ] && extra+=("-max_total_time=$MAX_TOTAL_TIME")
    d=$(dict "$name")
    [ -n "$d" ] && extra+=("$d")
    cmd=(nice -n "$NICE" "$PY" "fuzz/$name.py" "-runs=$RUNS" "-seed=${SEED:-0}"
         "-max_len=$(max_len "$name")" -timeout=30 -rss_limit_mb=4096
         -print_final_stats=1 "-artifact_prefix=$CRASHERS/" "${extra[@]}" "$work")
    echo "== $name: ${cmd[*]}" | tee "$log"
    start=$(date +%s)
    "${cmd[@]}" >>"$log" 2>&1
    rc=$?
    wall=$(( $(date +%s) - start ))
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)
    speed=""
    [ -n "$runs" ] && speed=$(( runs / (wall > 0 ? wall : 1) ))
    if [ "$rc" -eq 0 ]; then
        result="no finding"
    else
        result="FINDING (exit $rc): $(grep -E 'Test unit written to|SUMMARY' "$log" | tail -2 | tr '\n' ' ')"
        status=1
    fi
    line="$name: ${runs:-?} inputs, ${speed:-?} exec/s, ${wall}s wall, $result; log $log"
    echo "$line"
    summary+=("$line")
    [ -z "${KEEP:-}" ] && rm -rf "$work"
done

echo
echo "Summary (RUNS=$RUNS, ASan+UBSan, nice $NICE):"
printf '  %s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
    echo "Findings are in $CRASHERS/: see fuzz/README.md, Triage."
fi
exit "$status"

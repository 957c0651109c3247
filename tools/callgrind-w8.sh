#!/usr/bin/env bash
# Instructions per request of bench/w8_asgi_layer.py's servers, under callgrind: each
# server runs 20 and 120 batches of 100 requests; the difference over 10,000 requests
# leaves start-up out. Stable to well under 1% (wall-clock timings on these machines
# are not). Usage: tools/callgrind-w8.sh [raw|asgi ...] [-- extra w8 options, e.g. --h1]
set -euo pipefail
cd "$(dirname "$0")/.."
servers=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do servers+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#servers[@]} -eq 0 ] && servers=(raw asgi)
PY=$(python3 -c "import sys; print(sys.executable)")
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$PY" bench/w8_asgi_layer.py \
        --profile "$1" --batches "$2" "${@:3}" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for s in "${servers[@]}"; do
    a=$(count "$s" 20 "$@")
    b=$(count "$s" 120 "$@")
    echo "$s: $(( (b - a) / 10000 )) instructions per request $*"
done

#!/bin/sh
# Load test (issue 10): h2load against a cno.serve server, the server's RSS before and after.
#
#   bench/load.sh                         # h2load -n 1000000 -c 100 -m 10, twice (h2c)
#   N=100000 ROUNDS=1 bench/load.sh       # a shorter run
#   H1=1 bench/load.sh                    # HTTP/1.1 (h2load --h1)
#
# The server is tests/hostile_server.py (route /: 200 "ok") under a memory limit (ulimit -v,
# MEM_GIB, default 2), so a leak fails the run instead of eating the machine. Each round
# is one h2load run; the server's RSS is printed before the first and after each round:
# flat means the rounds after the first leave it where the first did. The script fails
# (exit 1) if h2load reports any failed or errored request, or the server died.
# Run it niced on a shared machine: nice bench/load.sh. Needs h2load (nghttp2-client).
#
# Environment: PYTHON (default python3, with cno importable; the checkout's cno is put
# first on PYTHONPATH), N (requests per round, 1000000), C (clients, 100), M (streams per
# client, 10), ROUNDS (2), H1 (set: HTTP/1.1), MEM_GIB (2), OPTIONS (the server's JSON
# options, default {"idle_timeout": 600}).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
N=${N:-1000000}
C=${C:-100}
M=${M:-10}
ROUNDS=${ROUNDS:-2}
MEM_GIB=${MEM_GIB:-2}
OPTIONS=${OPTIONS:-'{"idle_timeout": 600}'}
command -v h2load >/dev/null || { echo "h2load not found (apt install nghttp2-client)" >&2; exit 2; }

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

(
    ulimit -v $((MEM_GIB * 1024 * 1024))
    PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" "$here/tests/hostile_server.py" "$OPTIONS"
) >"$tmp/port" 2>"$tmp/stderr" &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "the server did not start:" >&2; cat "$tmp/stderr" >&2; exit 1
    fi
    sleep 0.05
done
port=$(head -n 1 "$tmp/port")

kib() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$pid/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }

proto="h2c (prior knowledge)"
flags=
[ -n "${H1:-}" ] && { proto="HTTP/1.1"; flags=--h1; }
echo "cno.serve at 127.0.0.1:$port (pid $pid), $proto; h2load -n $N -c $C -m $M, $ROUNDS round(s)"
echo "RSS before: $(mib "$(kib VmRSS)")"
status=0
r=1
while [ $r -le "$ROUNDS" ]; do
    h2load $flags -n "$N" -c "$C" -m "$M" "http://127.0.0.1:$port/" >"$tmp/h2load.txt" 2>&1 || true
    grep -E "^(finished in|requests:|status codes:|traffic:)" "$tmp/h2load.txt" | sed 's/^/  /'
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "round $r: the server DIED"; cat "$tmp/stderr"; exit 1
    fi
    echo "round $r: RSS $(mib "$(kib VmRSS)") (peak so far $(mib "$(kib VmHWM)"))"
    if ! grep -qE "requests: $N total, $N started, $N done, $N succeeded, 0 failed, 0 errored" "$tmp/h2load.txt"; then
        echo "round $r: h2load reports failures:"; cat "$tmp/h2load.txt"; status=1
    fi
    r=$((r + 1))
done
if grep -q Traceback "$tmp/stderr"; then
    echo "server stderr:"; cat "$tmp/stderr"; status=1
fi
exit $status

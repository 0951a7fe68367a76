#!/usr/bin/env bash
# One-command load test of ocsp-edge against the machine's HTTP ceiling (and optionally
# `openssl ocsp`), side by side in the same run. See loadtest/README.md.
#
#   loadtest/run.sh                       # 3 rounds of 10 s, POST and GET, 50 connections
#   ROUNDS=1 DURATION=5s loadtest/run.sh  # quick
#   WITH_OPENSSL=1 loadtest/run.sh        # also `openssl ocsp` (runs everything in a
#                                         # private loopback-only network namespace)
#   JSON_OUT=results.json loadtest/run.sh # raw runs + summary as JSON
#   BASELINE_BIN=old/ocsp-edge loadtest/run.sh  # also an older build ("baseline"), in the
#                                         # same rounds: an A/B of a change on a noisy machine
#
# Other knobs: CONNECTIONS=50 WARMUP=1s CERTS=10000 REVOKED_PERCENT=10 METHODS="post get"
#   THREADS=1 (load-generator threads) KEEP_WORKDIR=1 (keep the temporary directory)
#   SKIP_BUILD=1 (use the existing release binaries)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-50}
CERTS=${CERTS:-10000}
REVOKED_PERCENT=${REVOKED_PERCENT:-10}
METHODS=${METHODS:-post get}
THREADS=${THREADS:-1}
WITH_OPENSSL=${WITH_OPENSSL:-0}
JSON_OUT=${JSON_OUT:-}
BASELINE_BIN=${BASELINE_BIN:-}
if [ -n "$BASELINE_BIN" ]; then
    case "$BASELINE_BIN" in /*) ;; *) BASELINE_BIN="$PWD/$BASELINE_BIN" ;; esac
    [ -x "$BASELINE_BIN" ] || { echo "BASELINE_BIN=$BASELINE_BIN is not an executable" >&2; exit 1; }
fi
if [ -n "$JSON_OUT" ]; then
    case "$JSON_OUT" in /*) ;; *) JSON_OUT="$PWD/$JSON_OUT" ;; esac
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
EC="$ROOT/fixtures/demo/ec"

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "==> building release binaries (ocsp-edge, loadgen, ceiling)" >&2
    cargo build --release --quiet -p ocsp-edge -p ocsp-edge-loadtest --bins
fi
for b in ocsp-edge loadgen ceiling; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b (build first)" >&2; exit 1; }
done

# `openssl ocsp -port` binds every interface: run the whole benchmark (servers and load
# generator) in a private network namespace that has nothing but loopback.
if [ "$WITH_OPENSSL" = 1 ] && [ -z "${LOADTEST_IN_NETNS:-}" ]; then
    command -v openssl >/dev/null || { echo "WITH_OPENSSL=1 needs the openssl CLI" >&2; exit 1; }
    echo "==> re-running inside a loopback-only network namespace (unshare --net)" >&2
    export LOADTEST_IN_NETNS=1 SKIP_BUILD=1 ROUNDS DURATION WARMUP CONNECTIONS CERTS \
        REVOKED_PERCENT METHODS THREADS WITH_OPENSSL JSON_OUT BASELINE_BIN
    exec unshare --net bash "${BASH_SOURCE[0]}"
fi
if [ -n "${LOADTEST_IN_NETNS:-}" ]; then
    ip link set lo up
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocsp-loadtest.XXXXXX")
PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${KEEP_WORKDIR:-}" ]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Private copies: a rebuild in the shared target directory during the run must not swap
# the binaries under the running servers (and perf can still symbolise them).
mkdir -p "$WORK/bin"
cp "$BIN/ocsp-edge" "$BIN/loadgen" "$BIN/ceiling" "$WORK/bin/"
[ -n "$BASELINE_BIN" ] && cp "$BASELINE_BIN" "$WORK/bin/ocsp-edge-baseline"
BIN="$WORK/bin"

echo "==> $CERTS certificates ($REVOKED_PERCENT% revoked), publishing with the EC demo issuer" >&2
"$BIN/loadgen" gen-feed --count "$CERTS" --revoked-percent "$REVOKED_PERCENT" \
    --out "$WORK/feed.jsonl" --index-out "$WORK/index.txt"
"$BIN/ocsp-edge" publish --issuer "$EC/ca.pem" --json-lines "$WORK/feed.jsonl" \
    --signer-cert "$EC/ocsp.pem" --signer-key "$EC/ocsp.key" --name ec \
    --out "$WORK/snapshots" 2>"$WORK/publish.log" | sed 's/^/    /' >&2
"$BIN/loadgen" prepare --issuer "$EC/ca.pem" --feed "$WORK/feed.jsonl" \
    --requests "$WORK/requests.b64" --check "$WORK/check.txt"

read -r P_EDGE P_ADMIN P_CEIL P_OSSL P_BASE P_BASE_ADMIN <<<"$("$BIN/loadgen" free-ports 6 | tr '\n' ' ')"

"$BIN/ocsp-edge" serve --snapshots "$WORK/snapshots" --trust "$EC/ca.pem" \
    --listen "127.0.0.1:$P_EDGE" --admin-listen "127.0.0.1:$P_ADMIN" >"$WORK/edge.log" 2>&1 &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
"$BIN/ceiling" --listen "127.0.0.1:$P_CEIL" >"$WORK/ceiling.log" 2>&1 &
CEIL_PID=$!
PIDS+=("$CEIL_PID")
SERVERS="ceiling ocsp-edge"
if [ -n "$BASELINE_BIN" ]; then
    "$BIN/ocsp-edge-baseline" serve --snapshots "$WORK/snapshots" --trust "$EC/ca.pem" \
        --listen "127.0.0.1:$P_BASE" --admin-listen "127.0.0.1:$P_BASE_ADMIN" >"$WORK/baseline.log" 2>&1 &
    BASE_PID=$!
    PIDS+=("$BASE_PID")
    SERVERS="$SERVERS baseline"
fi
if [ "$WITH_OPENSSL" = 1 ]; then
    # One worker, no -multi (its workers ignore SIGTERM); -ignore_err so that a bad
    # request does not end it. Binds every interface, which here is only loopback.
    openssl ocsp -index "$WORK/index.txt" -port "$P_OSSL" -CA "$EC/ca.pem" \
        -rsigner "$EC/ocsp.pem" -rkey "$EC/ocsp.key" -nmin 60 -ignore_err \
        >"$WORK/openssl.log" 2>&1 &
    OSSL_PID=$!
    PIDS+=("$OSSL_PID")
    SERVERS="$SERVERS openssl"
fi

"$BIN/loadgen" wait-port "127.0.0.1:$P_EDGE"
"$BIN/loadgen" wait-port "127.0.0.1:$P_CEIL"
[ -n "$BASELINE_BIN" ] && "$BIN/loadgen" wait-port "127.0.0.1:$P_BASE"
if [ "$WITH_OPENSSL" = 1 ]; then
    # Not wait-port: openssl's single worker wedges on a connection that closes without a
    # request. It logs this line once its index is loaded and it is accepting.
    for _ in $(seq 1 300); do
        grep -q "waiting for OCSP client connections" "$WORK/openssl.log" && break
        kill -0 "$OSSL_PID" 2>/dev/null || { cat "$WORK/openssl.log" >&2; exit 1; }
        sleep 0.1
    done
fi

url_of() { case "$1" in ceiling) echo "http://127.0.0.1:$P_CEIL/" ;; ocsp-edge) echo "http://127.0.0.1:$P_EDGE/" ;; openssl) echo "http://127.0.0.1:$P_OSSL/" ;; baseline) echo "http://127.0.0.1:$P_BASE/" ;; esac; }
pid_of() { case "$1" in ceiling) echo "$CEIL_PID" ;; ocsp-edge) echo "$EDGE_PID" ;; openssl) echo "$OSSL_PID" ;; baseline) echo "$BASE_PID" ;; esac; }
check_of() { case "$1" in ceiling) echo none ;; *) echo "$WORK/check.txt" ;; esac; }

# Smoke check: every checked server answers correctly before anything is measured.
for server in $SERVERS; do
    [ "$server" = ceiling ] && continue
    for method in $METHODS; do
        if ! "$BIN/loadgen" --quiet --url "$(url_of "$server")" --requests-file "$WORK/requests.b64" \
            --method "$method" --connections 1 --warmup 0s --duration 300ms \
            --check "$(check_of "$server")" --json "$WORK/smoke.json" >/dev/null ||
            grep -q '"errors": [1-9]' "$WORK/smoke.json"; then
            echo "smoke check failed for $server $method:" >&2
            cat "$WORK/smoke.json" >&2
            case "$server" in ocsp-edge) log=edge.log ;; *) log=$server.log ;; esac
            tail -20 "$WORK/$log" >&2 2>/dev/null || true
            exit 1
        fi
    done
done
rm -f "$WORK/smoke.json"

mkdir -p "$WORK/runs"
run_number=0
echo "==> $ROUNDS round(s) × {$METHODS} × {$SERVERS}: $DURATION each after $WARMUP warm-up, $CONNECTIONS connections, $(nproc) CPUs" >&2
# Each round starts one server later in the list, so that no server always runs in the
# same position of a round (first after a pause, or right after the heaviest run): on a
# shared VM, where one run swings by ±10%, a position effect could pass for a difference.
rotated() {
    local shift=$(($1 % $(wc -w <<<"$SERVERS"))) list=($SERVERS)
    echo "${list[@]:$shift} ${list[@]:0:$shift}"
}
for round in $(seq 1 "$ROUNDS"); do
    for method in $METHODS; do
        for server in $(rotated $((round - 1))); do
            run_number=$((run_number + 1))
            "$BIN/loadgen" --url "$(url_of "$server")" --requests-file "$WORK/requests.b64" \
                --method "$method" --connections "$CONNECTIONS" --duration "$DURATION" \
                --warmup "$WARMUP" --check "$(check_of "$server")" --threads "$THREADS" \
                --label "$server" --round "$round" --server-pid "$(pid_of "$server")" \
                --json "$WORK/runs/$(printf %03d "$run_number")-$method-$server.json" | sed 's/^/    /' >&2
        done
    done
done

echo
"$BIN/loadgen" report --baseline ceiling --fail-on-errors "ocsp-edge${BASELINE_BIN:+,baseline}" \
    ${JSON_OUT:+--json-out "$JSON_OUT"} "$WORK"/runs/*.json
[ -n "$JSON_OUT" ] && echo "raw results: $JSON_OUT" >&2
exit 0

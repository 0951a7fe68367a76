#!/usr/bin/env bash
# Every comparison of the performance issue in one run: one table of targets (goal,
# measured figure, ratio, verdict) and, with JSON_OUT, every raw figure as JSON.
# See loadtest/README.md ("All targets in one command").
#
#   loadtest/all.sh                                   # stages ceiling, scale (1M), swap (1M), cache (100k)
#   STAGES="scale" SCALE_CERTS=10000000 loadtest/all.sh   # the 10M run
#   JSON_OUT=results.json loadtest/all.sh
#   SCALE_CERTS=50000 SWAP_CERTS=50000 CACHE_CERTS=20000 ROUNDS=1 DURATION=2s loadtest/all.sh   # smoke test
#   STAGES=cache CACHE_CERTS=20000 DURATION=2s ROUNDS=1 loadtest/all.sh      # the cache tier alone
#
# Stages (STAGES, space-separated, in this order):
#   ceiling  run.sh: ocsp-edge vs the fixed-bytes hyper ceiling and `openssl ocsp` (POST, GET)
#   scale    SCALE_CERTS certificates in one snapshot: publish rate vs ring's signing rate,
#            responder start-up and RSS, Zipf throughput vs the CERTS-certificate snapshot,
#            then a delta after DELTA_CHANGES revocations: its bytes, and that it is served
#   swap     hot swap of SWAP_CERTS-certificate snapshots under load
#   cache    a cache-mode responder holding 1% of CACHE_CERTS × 2 CertIDs in front of a hub:
#            hit ratio (and the best a static top-1% set could reach), req/s vs the hub
#   latency  loadtest/latency.sh: revocation in the CA database → `revoked` at four edges
#            behind 40 ms links (p50/p99/max, OCSP and CRLs), and a mass revocation
#
# Knobs (defaults): the ceiling's as in run.sh (ROUNDS=3 DURATION=10s WARMUP=1s
#   CONNECTIONS=50 CERTS=10000 REVOKED_PERCENT=10 METHODS="post get" THREADS=1);
#   WITH_OPENSSL=1 (the whole run then happens in a loopback-only network namespace);
#   SCALE_CERTS=1000000 SCALE_SAMPLE=200000 (certificates whose requests are sent)
#   DELTA_CHANGES=1000 (revocations in the delta published at the end of scale)
#   SCALE_ROUNDS=$ROUNDS SCALE_METHODS=$METHODS ZIPF_EXPONENT=1.0 SIGNRATE_SECONDS=3
#   PUBLISH_RATIO_TARGET=0.9 STARTUP_TARGET_S= RSS_RATIO_TARGET= (empty: report only);
#   SWAP_CERTS=1000000 SWAP_COUNT=5 SWAP_INTERVAL=5 SWAP_LEAD=5 SWAP_TAIL=5 (seconds)
#   SWAP_SAMPLE=200000 SWAP_CHANGED_PERCENT=1 SWAP_METHOD=post SWAP_TRANSFER=move|copy
#   SWAP_POLL_INTERVAL= (responder's snapshots.poll_interval; default 2s);
#   CACHE_CERTS=100000 CACHE_CAPACITY=(2 × CACHE_CERTS / 100) CACHE_ROUNDS=$ROUNDS
#   CACHE_METHODS=post CACHE_WARMUP=$DURATION (an unmeasured run that fills the cache);
#   LATENCY_REVOCATIONS=50 LATENCY_MASS=100000 (and latency.sh's other LATENCY_* knobs);
#   KEEP_WORKDIR=1 SKIP_BUILD=1 JSON_OUT=FILE.
# Exit status: 0 when no target failed, 1 otherwise, 2 on a broken run.
set -euo pipefail

STAGES=${STAGES:-ceiling scale swap cache latency}
# WITH_CACHE=1: from before `cache` was a default stage; adds it to an explicit STAGES.
WITH_CACHE=${WITH_CACHE:-0}
if [ "$WITH_CACHE" = 1 ] && [[ " $STAGES " != *" cache "* ]]; then
    STAGES="$STAGES cache"
fi
WITH_OPENSSL=${WITH_OPENSSL:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-50}
CERTS=${CERTS:-10000}
REVOKED_PERCENT=${REVOKED_PERCENT:-10}
METHODS=${METHODS:-post get}
THREADS=${THREADS:-1}
SCALE_CERTS=${SCALE_CERTS:-1000000}
SCALE_SAMPLE=${SCALE_SAMPLE:-200000}
DELTA_CHANGES=${DELTA_CHANGES:-1000}
SCALE_ROUNDS=${SCALE_ROUNDS:-$ROUNDS}
SCALE_METHODS=${SCALE_METHODS:-$METHODS}
ZIPF_EXPONENT=${ZIPF_EXPONENT:-1.0}
SIGNRATE_SECONDS=${SIGNRATE_SECONDS:-3}
PUBLISH_RATIO_TARGET=${PUBLISH_RATIO_TARGET-0.9}
STARTUP_TARGET_S=${STARTUP_TARGET_S:-}
RSS_RATIO_TARGET=${RSS_RATIO_TARGET:-}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-1800s}
SWAP_CERTS=${SWAP_CERTS:-1000000}
SWAP_COUNT=${SWAP_COUNT:-5}
SWAP_INTERVAL=${SWAP_INTERVAL:-5}
SWAP_LEAD=${SWAP_LEAD:-5}
SWAP_TAIL=${SWAP_TAIL:-5}
SWAP_SAMPLE=${SWAP_SAMPLE:-200000}
SWAP_CHANGED_PERCENT=${SWAP_CHANGED_PERCENT:-1}
SWAP_METHOD=${SWAP_METHOD:-post}
SWAP_TRANSFER=${SWAP_TRANSFER:-move}
SWAP_POLL_INTERVAL=${SWAP_POLL_INTERVAL:-}
CACHE_CERTS=${CACHE_CERTS:-100000}
CACHE_CAPACITY=${CACHE_CAPACITY:-$((CACHE_CERTS * 2 / 100 > 0 ? CACHE_CERTS * 2 / 100 : 1))}
CACHE_ROUNDS=${CACHE_ROUNDS:-$ROUNDS}
CACHE_METHODS=${CACHE_METHODS:-post}
CACHE_WARMUP=${CACHE_WARMUP:-$DURATION}
export LATENCY_REVOCATIONS=${LATENCY_REVOCATIONS:-50}
export LATENCY_MASS=${LATENCY_MASS:-100000}
JSON_OUT=${JSON_OUT:-}
if [ -n "$JSON_OUT" ]; then
    case "$JSON_OUT" in /*) ;; *) JSON_OUT="$PWD/$JSON_OUT" ;; esac
fi
export ROUNDS DURATION WARMUP CONNECTIONS CERTS REVOKED_PERCENT METHODS THREADS WITH_OPENSSL

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
EC="$ROOT/fixtures/demo/ec"

has_stage() { [[ " $STAGES " == *" $1 "* ]]; }

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "==> building release binaries (ocsp-edge, loadgen, ceiling, signrate)" >&2
    cargo build --release --quiet -p ocsp-edge -p ocsp-edge-loadtest --bins
fi
for b in ocsp-edge loadgen ceiling signrate; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b (build first)" >&2; exit 2; }
done

# `openssl ocsp -port` binds every interface: run everything in a private network
# namespace that has nothing but loopback (run.sh then does not unshare again).
if has_stage ceiling && [ "$WITH_OPENSSL" = 1 ] && [ -z "${LOADTEST_IN_NETNS:-}" ]; then
    command -v openssl >/dev/null || { echo "WITH_OPENSSL=1 needs the openssl CLI (or WITH_OPENSSL=0)" >&2; exit 2; }
    echo "==> re-running inside a loopback-only network namespace (unshare --net)" >&2
    export LOADTEST_IN_NETNS=1 SKIP_BUILD=1 JSON_OUT STAGES
    exec unshare --net bash "${BASH_SOURCE[0]}"
fi
if [ -n "${LOADTEST_IN_NETNS:-}" ]; then
    ip link set lo up
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocsp-loadtest-all.XXXXXX")
STAGE_DIR="$WORK/stages"
mkdir -p "$STAGE_DIR" "$WORK/bin"
PIDS=()
# Stops one process we started: SIGTERM, then SIGKILL after $2 tenths of a second (50).
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 "${2:-50}"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        # run.sh stops its own servers on SIGTERM: give it the time to.
        stop_pid "$pid" "$([ "$pid" = "${RUN_SH_PID:-}" ] && echo 300)"
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

# Private copies: a rebuild in the shared target directory must not swap them mid-run.
cp "$BIN/ocsp-edge" "$BIN/loadgen" "$BIN/ceiling" "$BIN/signrate" "$WORK/bin/"
BIN="$WORK/bin"
LOADGEN="$BIN/loadgen"

now_ms() { date +%s%3N; }
ms_to_s() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
# "10s", "500ms", "2m" or "3" → seconds (for sleep arithmetic).
seconds_of() {
    case "$1" in
        *ms) awk -v v="${1%ms}" 'BEGIN { print v / 1000 }' ;;
        *s) echo "${1%s}" ;;
        *m) awk -v v="${1%m}" 'BEGIN { print v * 60 }' ;;
        *) echo "$1" ;;
    esac
}
# 10000 → 10k, 1000000 → 1M.
short_count() {
    local n=$1
    if [ $((n % 1000000)) -eq 0 ]; then echo "$((n / 1000000))M"
    elif [ $((n % 1000)) -eq 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}
fact() { echo "$2=$3" >>"$1"; }
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# "MAPPED DELETED": distinct snapshot files mapped by PID, and how many of them are
# deleted files (an old snapshot still mapped after its file was removed).
snapshot_maps() {
    awk '$6 ~ /\.snapshot$/ { print $6, ($7 == "(deleted)") }' "/proc/$1/maps" | sort -u |
        awk '{ files++; deleted += $2 } END { printf "%d %d\n", files, deleted }'
}

# Publishes a JSON Lines feed with the EC demo issuer and its delegated P-256 signer.
# Prints the publisher's summary line; its progress goes to $3.log.
publish() {
    local feed=$1 out=$2 log=$3
    shift 3
    # With GNU time, also the publisher's CPU time ("wall user system" in $log.time).
    local timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%e %U %S" -o "$log.time")
    if ! "${timer[@]}" "$BIN/ocsp-edge" publish --issuer "$EC/ca.pem" --json-lines "$feed" \
        --signer-cert "$EC/ocsp.pem" --signer-key "$EC/ocsp.key" --name ec --out "$out" "$@" \
        >"$log.out" 2>"$log.log"; then
        echo "publish failed:" >&2
        tail -5 "$log.log" >&2
        return 1
    fi
    head -1 "$log.out"
}
# From "published sequence S (C certificates, G signatures, B bytes) in T s": field.
published() {
    sed -n 's/^published sequence \([0-9]*\) (\([0-9]*\) certificates, \([0-9]*\) signatures, \([0-9]*\) bytes) in \([0-9.]*\)s$/\1 \2 \3 \4 \5/p' "$1" |
        awk -v f="$2" '{ print $f }'
}

# Starts a responder on a snapshot directory; sets SERVE_PID, SERVE_PORT, SERVE_ADMIN.
serve() {
    local dir=$1 log=$2
    read -r SERVE_PORT SERVE_ADMIN <<<"$("$LOADGEN" free-ports 2 | tr '\n' ' ')"
    # No drain grace: these servers are stopped only once their measurements are over.
    env OCSP_EDGE__SERVER__DRAIN_GRACE=0s ${SWAP_POLL_INTERVAL:+OCSP_EDGE__SNAPSHOTS__POLL_INTERVAL=$SWAP_POLL_INTERVAL} \
        "$BIN/ocsp-edge" serve --snapshots "$dir" --trust "$EC/ca.pem" \
        --listen "127.0.0.1:$SERVE_PORT" --admin-listen "127.0.0.1:$SERVE_ADMIN" >"$log" 2>&1 &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
}
forget_pid() {
    local keep=() pid
    for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}
# A short checked run: the responder answers every request correctly before we measure.
smoke() {
    local url=$1 requests=$2 check=$3 method
    for method in $4; do
        if ! "$LOADGEN" --quiet --url "$url" --requests-file "$requests" --method "$method" \
            --connections 1 --warmup 0s --duration 300ms --check "$check" --json "$WORK/smoke.json" >/dev/null ||
            grep -q '"errors": [1-9]' "$WORK/smoke.json"; then
            echo "smoke check failed for $url $method:" >&2
            cat "$WORK/smoke.json" >&2
            return 1
        fi
    done
}

stage_ceiling() {
    echo "==> stage ceiling: run.sh (ocsp-edge vs the hyper ceiling$([ "$WITH_OPENSSL" = 1 ] && echo " and openssl ocsp"))" >&2
    # In the background and waited for, so that stopping all.sh stops run.sh (and its
    # servers, which run.sh stops itself).
    SKIP_BUILD=1 JSON_OUT="$STAGE_DIR/ceiling.json" bash "$ROOT/loadtest/run.sh" &
    RUN_SH_PID=$!
    PIDS+=("$RUN_SH_PID")
    if ! wait "$RUN_SH_PID"; then
        echo "    run.sh reported errors (see its table; they are in the targets too)" >&2
    fi
    forget_pid "$RUN_SH_PID"
}

stage_scale() {
    local S="$WORK/scale" facts="$STAGE_DIR/scale.facts.tmp" n=$SCALE_CERTS
    local big small t0 t1 method round label big_admin
    mkdir -p "$S/runs"
    big="ocsp-edge-$(short_count "$n")"
    small="ocsp-edge-$(short_count "$CERTS")"
    echo "==> stage scale: $n certificates in one snapshot vs $CERTS" >&2
    fact "$facts" certs "$n"
    fact "$facts" small_certs "$CERTS"
    fact "$facts" sample_certs "$SCALE_SAMPLE"
    fact "$facts" cores "$(nproc)"
    fact "$facts" publish_ratio_target "$PUBLISH_RATIO_TARGET"
    fact "$facts" startup_target_s "$STARTUP_TARGET_S"
    fact "$facts" rss_ratio_target "$RSS_RATIO_TARGET"

    "$BIN/signrate" --seconds "$SIGNRATE_SECONDS" --json "$STAGE_DIR/signrate.json" | sed 's/^/    /' >&2
    fact "$facts" signrate_single_per_s "$(sed -n 's/.*"single_core_per_s": \([0-9.e+]*\).*/\1/p' "$STAGE_DIR/signrate.json")"
    fact "$facts" signrate_all_per_s "$(sed -n 's/.*"all_cores_per_s": \([0-9.e+]*\).*/\1/p' "$STAGE_DIR/signrate.json")"

    "$LOADGEN" gen-feed --count "$n" --revoked-percent "$REVOKED_PERCENT" --out "$S/feed.jsonl"
    t0=$(now_ms)
    publish "$S/feed.jsonl" "$S/big" "$S/publish-big" | sed 's/^/    /' >&2
    t1=$(now_ms)
    fact "$facts" publish_wall_s "$(ms_to_s $((t1 - t0)))"
    fact "$facts" publish_s "$(published "$S/publish-big.out" 5)"
    fact "$facts" signatures "$(published "$S/publish-big.out" 3)"
    fact "$facts" snapshot_bytes "$(published "$S/publish-big.out" 4)"
    if [ -f "$S/publish-big.time" ]; then
        fact "$facts" publish_cpu_s "$(awk '{ print $2 + $3 }' "$S/publish-big.time")"
    fi
    "$LOADGEN" prepare --issuer "$EC/ca.pem" --feed "$S/feed.jsonl" --sample "$SCALE_SAMPLE" \
        --requests "$S/big.b64" --check "$S/big.check"
    # The same CA after DELTA_CHANGES revocations, for the delta published at the end.
    awk -v n="$DELTA_CHANGES" 'n > 0 && /"status":"good"}$/ {
            sub(/"status":"good"}$/, "\"status\":\"revoked\",\"revoked_at\":\"2026-01-03T00:00:00Z\",\"reason\":\"keyCompromise\"}"); n--
        } { print }' "$S/feed.jsonl" >"$S/feed-revoked.jsonl"
    rm -f "$S/feed.jsonl"

    "$LOADGEN" gen-feed --count "$CERTS" --revoked-percent "$REVOKED_PERCENT" --seed 11 --out "$S/small.jsonl"
    publish "$S/small.jsonl" "$S/small" "$S/publish-small" | sed 's/^/    /' >&2
    "$LOADGEN" prepare --issuer "$EC/ca.pem" --feed "$S/small.jsonl" --requests "$S/small.b64" --check "$S/small.check"

    # Start-up: process start → /readyz 200 on the admin port.
    local big_pid big_url small_pid small_url
    t0=$(now_ms)
    serve "$S/big" "$S/serve-big.log"
    "$LOADGEN" wait-http "http://127.0.0.1:$SERVE_ADMIN/readyz" --timeout "$STARTUP_TIMEOUT" >/dev/null
    t1=$(now_ms)
    big_pid=$SERVE_PID
    big_url="http://127.0.0.1:$SERVE_PORT/"
    big_admin=$SERVE_ADMIN
    fact "$facts" startup_s "$(ms_to_s $((t1 - t0)))"
    fact "$facts" startup_load_ms "$(grep -o 'load_ms=[0-9]*' "$S/serve-big.log" | head -1 | cut -d= -f2)"
    fact "$facts" rss_kib "$(status_kib "$big_pid" VmRSS)"
    fact "$facts" rss_anon_kib "$(status_kib "$big_pid" RssAnon)"
    fact "$facts" rss_file_kib "$(status_kib "$big_pid" RssFile)"
    echo "    $big: ready in $(ms_to_s $((t1 - t0))) s, RSS $(status_kib "$big_pid" VmRSS) KiB, snapshot $(published "$S/publish-big.out" 4) bytes" >&2
    t0=$(now_ms)
    serve "$S/small" "$S/serve-small.log"
    "$LOADGEN" wait-http "http://127.0.0.1:$SERVE_ADMIN/readyz" --timeout "$STARTUP_TIMEOUT" >/dev/null
    t1=$(now_ms)
    small_pid=$SERVE_PID
    small_url="http://127.0.0.1:$SERVE_PORT/"
    fact "$facts" startup_small_s "$(ms_to_s $((t1 - t0)))"
    fact "$facts" rss_small_kib "$(status_kib "$small_pid" VmRSS)"

    smoke "$big_url" "$S/big.b64" "$S/big.check" "$SCALE_METHODS"
    smoke "$small_url" "$S/small.b64" "$S/small.check" "$SCALE_METHODS"
    echo "    $SCALE_ROUNDS round(s) × {$SCALE_METHODS} × {$small $big}: Zipf s=$ZIPF_EXPONENT, $DURATION each after $WARMUP, $CONNECTIONS connections" >&2
    local run=0
    for round in $(seq 1 "$SCALE_ROUNDS"); do
        for method in $SCALE_METHODS; do
            for label in "$small" "$big"; do
                run=$((run + 1))
                if [ "$label" = "$big" ]; then
                    set -- "$big_url" "$S/big" "$big_pid"
                else
                    set -- "$small_url" "$S/small" "$small_pid"
                fi
                "$LOADGEN" --url "$1" --requests-file "$2.b64" --check "$2.check" --method "$method" \
                    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" --threads "$THREADS" \
                    --distribution zipf --zipf-exponent "$ZIPF_EXPONENT" --label "$label" --round "$round" \
                    --server-pid "$3" --json "$S/runs/$(printf %03d "$run")-$method-$label.json" | sed 's/^/    /' >&2
            done
        done
    done
    fact "$facts" rss_after_load_kib "$(status_kib "$big_pid" VmRSS)"
    "$LOADGEN" report --baseline "$small" --json-out "$STAGE_DIR/scale-report.json" "$S"/runs/*.json | sed 's/^/    /' >&2 || true
    scale_delta "$facts" "$S" "http://127.0.0.1:$big_admin/metrics"
    stop_pid "$big_pid"
    forget_pid "$big_pid"
    stop_pid "$small_pid"
    forget_pid "$small_pid"
    mv "$facts" "$STAGE_DIR/scale.facts"
    rm -rf "$S/big" "$S/small"
}

# Incremental publishing at scale: DELTA_CHANGES of the big snapshot's certificates are
# revoked and `publish --delta` writes only what changed; the running responder must
# verify it on its base and serve it.
scale_delta() {
    local facts=$1 S=$2 metrics=$3 sequence
    fact "$facts" delta_changes "$DELTA_CHANGES"
    publish "$S/feed-revoked.jsonl" "$S/big" "$S/publish-delta" --delta | sed 's/^/    /' >&2
    rm -f "$S/feed-revoked.jsonl"
    sequence=$(published "$S/publish-delta.out" 1)
    fact "$facts" delta_bytes "$(published "$S/publish-delta.out" 4)"
    fact "$facts" delta_signatures "$(published "$S/publish-delta.out" 3)"
    fact "$facts" delta_publish_s "$(published "$S/publish-delta.out" 5)"
    if "$LOADGEN" wait-metric "$metrics" --metric ocsp_edge_snapshot_sequence --value "$sequence" \
        --timeout 60s >/dev/null; then
        fact "$facts" delta_served 1
    else
        fact "$facts" delta_served 0
    fi
}

stage_swap() {
    local W="$WORK/swap" facts="$STAGE_DIR/swap.facts.tmp" n=$SWAP_CERTS k
    local staging="$W/staging" served="$W/served"
    local -a sequences=()
    mkdir -p "$staging" "$served"
    echo "==> stage swap: $SWAP_COUNT new $n-certificate snapshots every ${SWAP_INTERVAL}s under load" >&2
    # Publishing N certificates takes a while (1M: ~20 s on 2 cores), so every snapshot is
    # published into a staging directory first and moved in during the run.
    for k in $(seq 0 "$SWAP_COUNT"); do
        "$LOADGEN" gen-feed --count "$n" --revoked-percent "$REVOKED_PERCENT" --seed 21 \
            --changed-percent "$SWAP_CHANGED_PERCENT" --variant "$k" --out "$W/feed-$k.jsonl" 2>/dev/null
        publish "$W/feed-$k.jsonl" "$staging" "$W/publish-$k" --keep $((SWAP_COUNT + 1)) | sed 's/^/    /' >&2
        sequences+=("$(published "$W/publish-$k.out" 1)")
        [ -n "${sequences[$k]}" ] || { echo "publish $k: no sequence in its output" >&2; return 1; }
    done
    local also=()
    for k in $(seq 1 "$SWAP_COUNT"); do also+=(--also-feed "$W/feed-$k.jsonl"); done
    "$LOADGEN" prepare --issuer "$EC/ca.pem" --feed "$W/feed-0.jsonl" "${also[@]}" --sample "$SWAP_SAMPLE" \
        --requests "$W/requests.b64" --check "$W/check.txt"
    rm -f "$W"/feed-*.jsonl

    # Snapshot first, manifest last (the responder only looks at manifests).
    transfer() {
        local seq name
        seq=$(printf %020d "$1")
        for name in "$seq.snapshot" "$seq.manifest.json"; do
            if [ "$SWAP_TRANSFER" = copy ]; then
                cp "$staging/$name" "$served/.incoming-$name"
                mv "$served/.incoming-$name" "$served/$name"
                rm -f "$staging/$name"
            else
                mv "$staging/$name" "$served/$name"
            fi
        done
    }
    remove_served() {
        local seq
        seq=$(printf %020d "$1")
        rm -f "$served/$seq.manifest.json" "$served/$seq.snapshot"
    }
    transfer "${sequences[0]}"
    serve "$served" "$W/serve.log"
    local pid=$SERVE_PID url="http://127.0.0.1:$SERVE_PORT/" admin="http://127.0.0.1:$SERVE_ADMIN"
    "$LOADGEN" wait-http "$admin/readyz" --timeout "$STARTUP_TIMEOUT" >/dev/null
    smoke "$url" "$W/requests.b64" "$W/check.txt" "$SWAP_METHOD"
    fact "$facts" certs "$n"
    fact "$facts" swaps_planned "$SWAP_COUNT"
    fact "$facts" interval_s "$SWAP_INTERVAL"
    fact "$facts" transfer "$SWAP_TRANSFER"
    fact "$facts" sequences "$(IFS=,; echo "${sequences[*]}")"
    fact "$facts" loads_before "$("$LOADGEN" fetch "$admin/metrics" --metric ocsp_edge_snapshot_loads_total)"

    local warmup_s duration_s
    warmup_s=$(seconds_of "$WARMUP")
    duration_s=$((SWAP_LEAD + SWAP_COUNT * SWAP_INTERVAL + SWAP_TAIL))
    echo "    loadgen: $SWAP_METHOD, Zipf s=$ZIPF_EXPONENT, ${duration_s}s after $WARMUP; first swap after ${SWAP_LEAD}s" >&2
    "$LOADGEN" --url "$url" --requests-file "$W/requests.b64" --check "$W/check.txt" --method "$SWAP_METHOD" \
        --connections "$CONNECTIONS" --duration "${duration_s}s" --warmup "$WARMUP" --threads "$THREADS" \
        --distribution zipf --zipf-exponent "$ZIPF_EXPONENT" --label ocsp-edge-swap --server-pid "$pid" \
        --timeline "$W/timeline.json" --json "$STAGE_DIR/swap-run.json" >"$W/loadgen.out" 2>&1 &
    local lg_pid=$!
    PIDS+=("$lg_pid")
    sleep "$(awk -v a="$warmup_s" -v b="$SWAP_LEAD" 'BEGIN { print a + b }')"

    local placed=() seen=() mapped=() deleted=() rss=() rss_before=() t_place t_seen maps
    for k in $(seq 1 "$SWAP_COUNT"); do
        rss_before+=("$(status_kib "$pid" VmRSS)")
        t_place=$(now_ms)
        transfer "${sequences[$k]}"
        placed+=("$t_place")
        t_seen=$("$LOADGEN" wait-metric "$admin/metrics" --metric ocsp_edge_snapshot_sequence \
            --value "${sequences[$k]}" --timeout "$((SWAP_INTERVAL * 4 + 10))s") || t_seen=0
        seen+=("$t_seen")
        # The previous snapshot is no longer served: remove its files, as a cache would.
        remove_served "${sequences[$((k - 1))]}"
        sleep 0.5
        read -r maps <<<"$(snapshot_maps "$pid")"
        mapped+=("${maps% *}")
        deleted+=("${maps#* }")
        rss+=("$(status_kib "$pid" VmRSS)")
        echo "    swap $k: sequence ${sequences[$k]} placed, served after $([ "$t_seen" -gt 0 ] && ms_to_s $((t_seen - t_place)) || echo never) s; mapped snapshot files ${maps% *}, deleted-but-mapped ${maps#* }, RSS ${rss[-1]} KiB" >&2
        if [ "$k" -lt "$SWAP_COUNT" ]; then
            local wait_ms=$((t_place + SWAP_INTERVAL * 1000 - $(now_ms)))
            [ "$wait_ms" -gt 0 ] && sleep "$(ms_to_s "$wait_ms")"
        fi
    done
    local lg_status=0
    wait "$lg_pid" || lg_status=$?
    forget_pid "$lg_pid"
    sed 's/^/    /' "$W/loadgen.out" >&2
    [ "$lg_status" -eq 0 ] || echo "    loadgen exited $lg_status" >&2
    sleep 1
    read -r maps <<<"$(snapshot_maps "$pid")"
    fact "$facts" placed_unix_ms "$(IFS=,; echo "${placed[*]}")"
    fact "$facts" seen_unix_ms "$(IFS=,; echo "${seen[*]}")"
    fact "$facts" mapped_snapshot_files "$(IFS=,; echo "${mapped[*]}")"
    fact "$facts" deleted_mappings "$(IFS=,; echo "${deleted[*]}")"
    fact "$facts" rss_kib "$(IFS=,; echo "${rss[*]}")"
    fact "$facts" rss_before_swap_kib "$(IFS=,; echo "${rss_before[*]}")"
    fact "$facts" final_mapped_snapshot_files "${maps% *}"
    fact "$facts" final_deleted_mappings "${maps#* }"
    fact "$facts" loads_after "$("$LOADGEN" fetch "$admin/metrics" --metric ocsp_edge_snapshot_loads_total)"
    fact "$facts" refused_total "$("$LOADGEN" fetch "$admin/metrics" | awk '/^ocsp_edge_snapshots_refused_total/ { s += $2 } END { print s + 0 }')"
    fact "$facts" load_ms "$(grep -o 'load_ms=[0-9]*' "$W/serve.log" | cut -d= -f2 | paste -sd, -)"
    grep -iE 'WARN|ERROR' "$W/serve.log" | head -5 | sed 's/^/    responder: /' >&2 || true
    stop_pid "$pid"
    forget_pid "$pid"
    mv "$facts" "$STAGE_DIR/swap.facts"
    rm -rf "$staging" "$served"
}

# utime + stime of PID (all threads) in clock ticks, counted after the command name's ')'.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# Sum of a Prometheus series over all its label sets, in a saved /metrics page.
metric_sum() { awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }' "$1"; }
# The first `"key": number` of a loadgen --json file (0 when absent).
json_number() {
    sed -n "s/^ *\"$2\": \([0-9.e+-]*\),\{0,1\}\$/\1/p" "$1" | awk 'NR == 1 { v = $1 } END { print v + 0 }'
}

# Cache tier: a cache-mode responder (no snapshot; a bounded cache read through from a hub
# and kept consistent by the hub's change feed) holding CACHE_CAPACITY CertIDs (1% of
# them) in front of a hub serving CACHE_CERTS certificates; the same Zipf mix against the
# hub directly and through the cache.
stage_cache() {
    local C="$WORK/cache" facts="$STAGE_DIR/cache.facts.tmp" n=$CACHE_CERTS
    local capacity=$CACHE_CAPACITY sequence cert_ids best method round run=0
    mkdir -p "$C/runs"
    echo "==> stage cache: a cache of $capacity CertIDs in front of a hub serving $n certificates" >&2
    "$LOADGEN" gen-feed --count "$n" --revoked-percent "$REVOKED_PERCENT" --seed 31 --out "$C/feed.jsonl"
    publish "$C/feed.jsonl" "$C/hub" "$C/publish" | sed 's/^/    /' >&2
    sequence=$(published "$C/publish.out" 1)
    [ -n "$sequence" ] || { echo "publish: no sequence in its output" >&2; return 1; }
    # Every certificate under both CertID hashes: each CertID is one Zipf rank.
    "$LOADGEN" prepare --issuer "$EC/ca.pem" --feed "$C/feed.jsonl" --requests "$C/requests.b64" --check "$C/check.txt"
    rm -f "$C/feed.jsonl"
    cert_ids=$(wc -l <"$C/requests.b64")
    best=$("$LOADGEN" zipf-share --ranks "$cert_ids" --top "$capacity" --exponent "$ZIPF_EXPONENT")
    fact "$facts" certs "$n"
    fact "$facts" cert_ids "$cert_ids"
    fact "$facts" capacity "$capacity"
    fact "$facts" zipf_exponent "$ZIPF_EXPONENT"
    fact "$facts" best_hit_ratio "$best"
    fact "$facts" hub_label hub
    fact "$facts" cache_label cache
    fact "$facts" sequence "$sequence"

    local hub_pid hub_url hub_admin
    serve "$C/hub" "$C/hub.log"
    hub_pid=$SERVE_PID
    hub_url="http://127.0.0.1:$SERVE_PORT/"
    hub_admin="http://127.0.0.1:$SERVE_ADMIN/"
    "$LOADGEN" wait-http "${hub_admin}readyz" --timeout "$STARTUP_TIMEOUT" >/dev/null

    # The cache-mode responder: a [cache] section naming the hub, no snapshot directory.
    local port admin cache_pid cache_url cache_admin
    read -r port admin <<<"$("$LOADGEN" free-ports 2 | tr '\n' ' ')"
    {
        echo '[server]'
        echo "listen = \"127.0.0.1:$port\""
        echo "admin_listen = \"127.0.0.1:$admin\""
        echo 'drain_grace = "0s"'
        echo
        echo '[cache]'
        echo "capacity = $capacity"
        echo 'request_timeout = "2s"'
        echo 'change_wait = "25s"'
        echo
        echo '[[cache.hubs]]'
        echo "ocsp = \"$hub_url\""
        echo "admin = \"$hub_admin\""
    } >"$C/cache.toml"
    "$BIN/ocsp-edge" serve --config "$C/cache.toml" --trust "$EC/ca.pem" >"$C/cache.log" 2>&1 &
    cache_pid=$!
    PIDS+=("$cache_pid")
    cache_url="http://127.0.0.1:$port/"
    cache_admin="http://127.0.0.1:$admin/"
    "$LOADGEN" wait-http "${cache_admin}readyz" --timeout 60s >/dev/null
    # A fill is cached only once the change feed has acknowledged the hub's sequence.
    "$LOADGEN" wait-metric "${cache_admin}metrics" --metric ocsp_edge_cache_acknowledged_sequence \
        --value "$sequence" --timeout 60s >/dev/null

    smoke "$hub_url" "$C/requests.b64" "$C/check.txt" "$CACHE_METHODS"
    smoke "$cache_url" "$C/requests.b64" "$C/check.txt" "$CACHE_METHODS"

    local zipf=(--requests-file "$C/requests.b64" --check "$C/check.txt" --connections "$CONNECTIONS"
        --threads "$THREADS" --distribution zipf --zipf-exponent "$ZIPF_EXPONENT")
    # The cache's counters, read by loadgen when each window starts and ends.
    local counters=(--metrics-url "${cache_admin}metrics" --metric ocsp_edge_cache_hits_total
        --metric ocsp_edge_cache_misses_total)
    # The cache starts empty: one unmeasured run of the same mix fills it, so that the
    # measured windows see its steady state.
    local first_method=${CACHE_METHODS%% *}
    echo "    warm-up: ${CACHE_WARMUP} of the Zipf mix through the cache ($first_method), not measured" >&2
    "$LOADGEN" --url "$cache_url" "${zipf[@]}" --method "$first_method" --duration "$CACHE_WARMUP" --warmup 0s \
        --label cache-warmup --server-pid "$cache_pid" "${counters[@]}" --json "$C/warmup.json" | sed 's/^/    /' >&2
    fact "$facts" warmup_s "$(seconds_of "$CACHE_WARMUP")"
    fact "$facts" warmup_hits "$(json_number "$C/warmup.json" ocsp_edge_cache_hits_total)"
    fact "$facts" warmup_misses "$(json_number "$C/warmup.json" ocsp_edge_cache_misses_total)"
    fact "$facts" warmup_errors "$(json_number "$C/warmup.json" errors)"

    echo "    $CACHE_ROUNDS round(s) × {$CACHE_METHODS} × {hub cache}: Zipf s=$ZIPF_EXPONENT over $cert_ids CertIDs, $DURATION each after $WARMUP, $CONNECTIONS connections" >&2
    local hub_ticks=0 misses=0 t0 t1 m0 m1
    for round in $(seq 1 "$CACHE_ROUNDS"); do
        for method in $CACHE_METHODS; do
            run=$((run + 1))
            "$LOADGEN" --url "$hub_url" "${zipf[@]}" --method "$method" --duration "$DURATION" --warmup "$WARMUP" \
                --label hub --round "$round" --server-pid "$hub_pid" \
                --json "$C/runs/$(printf %03d "$run")-$method-1-hub.json" | sed 's/^/    /' >&2
            # The hub's CPU spent on the cache's misses: over the whole cache run (its
            # warm-up included), against the misses counted over the same span.
            t0=$(cpu_ticks "$hub_pid")
            m0=$("$LOADGEN" fetch "${cache_admin}metrics" --metric ocsp_edge_cache_misses_total)
            "$LOADGEN" --url "$cache_url" "${zipf[@]}" --method "$method" --duration "$DURATION" --warmup "$WARMUP" \
                --label cache --round "$round" --server-pid "$cache_pid" "${counters[@]}" \
                --json "$C/runs/$(printf %03d "$run")-$method-2-cache.json" | sed 's/^/    /' >&2
            t1=$(cpu_ticks "$hub_pid")
            m1=$("$LOADGEN" fetch "${cache_admin}metrics" --metric ocsp_edge_cache_misses_total)
            hub_ticks=$((hub_ticks + t1 - t0))
            misses=$(awk -v a="$misses" -v b="$m0" -v c="$m1" 'BEGIN { printf "%.0f", a + c - b }')
        done
    done
    fact "$facts" hub_cpu_s_during_cache "$(awk -v t="$hub_ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { print t / hz }')"
    fact "$facts" misses_during_cache "$misses"

    local m="$C/cache-metrics.txt"
    "$LOADGEN" fetch "${cache_admin}metrics" >"$m"
    fact "$facts" entries "$(metric_sum "$m" ocsp_edge_cache_entries)"
    fact "$facts" fills_total "$(metric_sum "$m" ocsp_edge_cache_fills_total)"
    fact "$facts" fills_cached "$(metric_sum "$m" 'ocsp_edge_cache_fills_total{result="cached"}')"
    fact "$facts" fill_failures "$(metric_sum "$m" ocsp_edge_cache_fill_failures_total)"
    fact "$facts" invalidate_all "$(metric_sum "$m" ocsp_edge_cache_invalidate_all_total)"
    fact "$facts" hits_total "$(metric_sum "$m" ocsp_edge_cache_hits_total)"
    fact "$facts" misses_total "$(metric_sum "$m" ocsp_edge_cache_misses_total)"
    fact "$facts" cache_rss_kib "$(status_kib "$cache_pid" VmRSS)"
    fact "$facts" hub_rss_kib "$(status_kib "$hub_pid" VmRSS)"
    # What the cache did over the whole stage (zero series left out).
    awk '$1 ~ /^ocsp_edge_cache_(entries|fills_total|fill_failures_total|invalidate_all_total)/ && $2 != 0' "$m" |
        sed 's/^/    cache metric: /' >&2 || true
    grep -iE 'WARN|ERROR' "$C/cache.log" | head -5 | sed 's/^/    cache responder: /' >&2 || true
    "$LOADGEN" report --baseline hub --json-out "$STAGE_DIR/cache-report.json" "$C"/runs/*.json | sed 's/^/    /' >&2 || true
    stop_pid "$cache_pid"
    forget_pid "$cache_pid"
    stop_pid "$hub_pid"
    forget_pid "$hub_pid"
    mv "$facts" "$STAGE_DIR/cache.facts"
    rm -rf "$C/hub"
}

# The latency stage: loadtest/latency.sh (tests/latency.rs on the release build, in
# network namespaces of its own), its JSON document into the stage directory.
stage_latency() {
    echo "==> latency: $LATENCY_REVOCATIONS revocations one at a time, then $LATENCY_MASS at once, through 40 ms links to four edges" >&2
    cp "$BIN/ocsp-edge" "$WORK/latency-ocsp-edge"
    if ! SKIP_BUILD=1 OCSP_EDGE_BIN="$WORK/latency-ocsp-edge" JSON_OUT="$STAGE_DIR/latency.json" "$ROOT/loadtest/latency.sh" 2>&1 | sed 's/^/    /' >&2; then
        echo "    latency: the test failed or missed a target (the table says which)" >&2
    fi
}

for stage in ceiling scale swap cache latency; do
    has_stage "$stage" || continue
    started=$(now_ms)
    "stage_$stage"
    echo "    stage $stage took $(ms_to_s $(($(now_ms) - started))) s" >&2
done

echo
echo "## ocsp-edge performance targets ($(nproc) CPUs, stages: $STAGES)"
echo
targets_status=0
"$LOADGEN" targets --dir "$STAGE_DIR" ${JSON_OUT:+--json-out "$JSON_OUT"} || targets_status=$?
[ -n "$JSON_OUT" ] && echo "raw results: $JSON_OUT" >&2
exit "$targets_status"

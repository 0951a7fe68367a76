#!/usr/bin/env bash
# End-to-end revocation latency (issue 16, part 3) as a load-test stage: tests/latency.rs
# with a release build publishing and serving, LATENCY_REVOCATIONS (50) single
# revocations and a LATENCY_MASS (100,000) mass revocation in a database of
# LATENCY_CERTS (110,000) certificates, for every CA database the test covers (index.txt,
# and PostgreSQL where the test has it). See loadtest/README.md ("Revocation latency").
#
#   loadtest/latency.sh                          # ≥ 50 revocations + 100k mass (~6 min)
#   JSON_OUT=latency.json loadtest/latency.sh    # the figures as one JSON document
#   LATENCY_REVOCATIONS=100 loadtest/latency.sh
#   LATENCY_FILTER=index_txt loadtest/latency.sh # one scenario (a test-name filter)
#
# Needs root (network namespaces), nginx, curl, openssl, python3 with `cryptography`.
# Prints the test's table; writes {"scenarios": [...]} (each: p50/p99/max seconds to
# `revoked` at every edge and to the covering CRLs, to the publish, the mass-revocation
# figures, the targets) to JSON_OUT, or to stdout. Exit status: the test's (0 when every
# target was met, non-zero when one was missed or the run broke).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export LATENCY_REVOCATIONS=${LATENCY_REVOCATIONS:-50}
export LATENCY_CERTS=${LATENCY_CERTS:-110000}
export LATENCY_MASS=${LATENCY_MASS:-100000}
export LATENCY_SAMPLE=${LATENCY_SAMPLE:-300}
LATENCY_FILTER=${LATENCY_FILTER:-}
JSON_OUT=${JSON_OUT:-}
# OCSP_EDGE_BIN: a release ocsp-edge built elsewhere (all.sh passes its private copy).
OCSP_EDGE_BIN=${OCSP_EDGE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ocsp-edge}

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "==> building the release ocsp-edge and the latency test" >&2
    cargo build --release --quiet -p ocsp-edge --bin ocsp-edge
    cargo test --quiet --test latency --no-run
fi
[ -x "$OCSP_EDGE_BIN" ] || { echo "missing $OCSP_EDGE_BIN (build first)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocsp-loadtest-latency.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# A private copy: a rebuild in the shared target directory must not swap it mid-run.
cp "$OCSP_EDGE_BIN" "$WORK/ocsp-edge"
mkdir -p "$WORK/json"

echo "==> tests/latency.rs: $LATENCY_REVOCATIONS revocations, $LATENCY_MASS at once, $LATENCY_CERTS certificates (release build)" >&2
status=0
LATENCY_BIN="$WORK/ocsp-edge" LATENCY_JSON_DIR="$WORK/json" \
    cargo test --quiet --test latency -- --nocapture --test-threads=1 $LATENCY_FILTER >&2 || status=$?

python3 - "$WORK/json" >"$WORK/latency.json" <<'PY'
import json, pathlib, sys
scenarios = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("latency-*.json"))]
print(json.dumps({"scenarios": scenarios}, indent=2))
PY
if [ -n "$JSON_OUT" ]; then
    cp "$WORK/latency.json" "$JSON_OUT"
    echo "latency figures: $JSON_OUT" >&2
else
    cat "$WORK/latency.json"
fi
exit "$status"

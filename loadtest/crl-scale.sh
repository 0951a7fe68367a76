#!/usr/bin/env bash
# Scale check for CRLs: a CA with N revoked certificates (default 1,000,000).
# Publishes one snapshot with a full CRL (plus the OCSP responses for every certificate),
# serves it, downloads the CRL, verifies it with openssl, and reports generation time,
# sizes and the responder's resident memory before and after serving it.
#
#   loadtest/crl-scale.sh            # N=1000000
#   N=100000 loadtest/crl-scale.sh   # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
PORT=${PORT:-18480}
ADMIN=${ADMIN:-18481}
work=$(mktemp -d /tmp/ocsp-edge-crl-scale.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet
bin=target/release/ocsp-edge
demo=$PWD/fixtures/demo

echo "generating $N revoked certificates"
python3 - "$N" "$work/feed.jsonl" <<'PY'
import sys, random
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
reasons = ["keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged", None]
with open(path, "w") as out:
    for i in range(n):
        serial = "%032X" % (rng.getrandbits(127) | (1 << 120))
        reason = reasons[i % len(reasons)]
        extra = f',"reason":"{reason}"' if reason else ""
        out.write(f'{{"serial":"{serial}","status":"revoked","revoked_at":"2026-0{1 + i % 9}-01T00:00:00Z"{extra}}}\n')
PY
cat > "$work/publish.toml" <<TOML
validity = "96h"
[[issuer]]
name = "ec"
certificate = "$demo/ec/ca.pem"
json_lines = "$work/feed.jsonl"
signer_certificate = "$demo/ec/ocsp.pem"
signer_key = "$demo/ec/ocsp.key"
[issuer.crl]
signing_key = "$demo/ec/ca.key"
full_url = "http://127.0.0.1:$PORT/crl/ec.crl"
TOML

echo "publishing"
/usr/bin/time -f "publish: %e s wall, %M KiB peak RSS" "$bin" publish --config "$work/publish.toml" --out "$work/snapshots" 2>&1 | grep -v "^signed"
snapshot=$(ls "$work"/snapshots/*.snapshot)
echo "snapshot: $(du -h "$snapshot" | cut -f1) ($N certificates, both CertID variants, plus the CRL)"

"$bin" serve --snapshots "$work/snapshots" --trust "$demo/ec/ca.pem" \
  --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' /proc/$server/status; }
echo "responder ready: RSS $(rss) KiB; $(grep -o "load_ms=[0-9]*" "$work/serve.log")"
start=$(date +%s.%N)
for _ in 1 2 3; do curl -sf -o "$work/ec.crl" "http://127.0.0.1:$PORT/crl/ec.crl"; done
end=$(date +%s.%N)
crl_bytes=$(stat -c %s "$work/ec.crl")
echo "CRL: $crl_bytes bytes; 3 downloads in $(echo "$end - $start" | bc) s; responder RSS after serving: $(rss) KiB"
openssl crl -inform DER -in "$work/ec.crl" -CAfile "$demo/ec/ca.pem" -noout
echo "entries in the CRL: $(openssl crl -inform DER -in "$work/ec.crl" -noout -text | grep -c 'Serial Number')"

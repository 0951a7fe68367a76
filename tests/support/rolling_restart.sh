#!/usr/bin/env bash
# Rolling restart under continuous load, in a private network namespace (loopback only):
# process A serves; clients query continuously over keep-alive connections; process B
# starts on the same port (SO_REUSEPORT); A gets SIGTERM and drains; the load keeps going
# against B. Prints "requests=N failures=M a_exit=X" and exits 0 if it could run.
#
# net.ipv4.tcp_migrate_req=1 (per network namespace) hands connections still queued on
# A's listening socket to B when A closes it, instead of resetting them. Production hosts
# should set it too (docs/operations.md).
#
# usage: rolling_restart.sh OCSP_EDGE_BINARY FIXTURES_DEMO_DIR
set -euo pipefail
bin=$1
demo=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" publish --config "$demo/publish.toml" --out "$work/snapshots" >/dev/null 2>&1
serial=$(awk -F'\t' '$1=="V" {print $4; exit}' "$demo/ec/index.txt")
openssl ocsp -issuer "$demo/ec/ca.pem" -cert "$demo/ec/certs/$serial.pem" -no_nonce -reqout "$work/req.der" >/dev/null 2>&1

unshare --net bash -s "$bin" "$demo" "$work" <<'INNER'
set -euo pipefail
bin=$1; demo=$2; work=$3
ip link set lo up
sysctl -qw net.ipv4.tcp_migrate_req=1
export OCSP_EDGE__SERVER__DRAIN_GRACE=2s
# Starts a responder in the background and sets $started to its PID (no command
# substitution: the child would hold its pipe open).
serve() {
  "$bin" serve --snapshots "$work/snapshots" --trust "$demo/ec/ca.pem" --trust "$demo/rsa/ca.pem" \
    --listen 127.0.0.1:8080 --admin-listen "127.0.0.1:$1" >"$work/serve-$1.out" 2>"$work/serve-$1.log" &
  started=$!
}
wait_ready() {
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/readyz', timeout=1)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "responder on admin port $1 never became ready" >&2; return 1
}
serve 9001; a=$started; wait_ready 9001
python3 - "$work/req.der" "$work/result" <<'PY' &
import base64, http.client, sys, threading, time
request = base64.b64encode(open(sys.argv[1], "rb").read()).decode()
path = "/" + request.replace("/", "%2F").replace("+", "%2B").replace("=", "%3D")
deadline = time.time() + 9
counts = {"requests": 0, "failures": 0}
lock = threading.Lock()
def worker():
    connection = None
    while time.time() < deadline:
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", 8080, timeout=5)
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            ok = response.status == 200 and body[4:7] == b"\x0a\x01\x00"
            if response.will_close:
                connection.close(); connection = None
        except Exception as error:
            ok = False
            print("failure:", repr(error), file=sys.stderr)
            if connection is not None:
                connection.close()
            connection = None
        with lock:
            counts["requests"] += 1
            counts["failures"] += 0 if ok else 1
threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
open(sys.argv[2], "w").write("requests=%d failures=%d" % (counts["requests"], counts["failures"]))
PY
load=$!
sleep 2
serve 9002; b=$started; wait_ready 9002
sleep 1
kill -TERM "$a"
set +e; wait "$a"; a_exit=$?; set -e
wait "$load"
kill -TERM "$b"; wait "$b" || true
echo "$(cat "$work/result") a_exit=$a_exit"
INNER

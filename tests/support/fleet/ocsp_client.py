#!/usr/bin/env python3
"""OCSP client for the fleet test: a continuous load through the load balancer, and a
one-shot checker for a single responder. Every response is verified.

  ocsp_client.py load  --target HOST:PORT --spec SPEC --control CONTROL --out STATS
                       [--threads 4] [--rate 120] [--max-seconds 400]
  ocsp_client.py check --target HOST:PORT --spec SPEC --control CONTROL [--expect-try-later]

SPEC (JSON, written by tests/fleet.rs):
  {"requests": [{"label", "issuer", "der": path of an `openssl ocsp -reqout` file}],
   "signers": {"<issuer>": path of the OCSP signer certificate (PEM)}}
CONTROL (JSON, rewritten atomically by the test while the load runs):
  {"phase": name, "expect": {"<label>": ["good"] | ["revoked"] | ["good", "revoked"]},
   "uncounted_after": unix time or null, "stop": bool}

Each request alternates POST and GET (base64 in the path). A response is classified as
  ok     HTTP 200, OCSP successful, the CertID asked for (hash algorithm, issuer name and
         key hashes, serial), a valid signature by the issuer's OCSP signer, nextUpdate
         after the moment it was received, and a certificate status the control allows;
  stale  as ok, but nextUpdate <= now at receipt (must never happen);
  wrong  any other successful or non-tryLater OCSP answer (wrong status, wrong CertID, bad
         signature, unauthorized/malformedRequest for a serial the CA issued);
  fail   no answer: connection error, timeout, HTTP status other than 200, tryLater,
         not an OCSP response.
Requests are attributed to the phase in force when they were sent; those sent at or after
`uncounted_after` are also counted apart ("uncounted"), since no responder is meant to be
ready then. The load writes its counters to STATS every half second and when it stops
(control "stop", SIGTERM, or --max-seconds).
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import signal
import sys
import threading
import time

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

STATUS_NAMES = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}


def load_spec(path):
    spec = json.load(open(path))
    signers = {
        name: x509.load_pem_x509_certificate(open(pem, "rb").read()).public_key()
        for name, pem in spec["signers"].items()
    }
    requests = []
    for entry in spec["requests"]:
        der = open(entry["der"], "rb").read()
        parsed = ocsp.load_der_ocsp_request(der)
        encoded = base64.b64encode(der).decode()
        path = "/" + encoded.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        requests.append(
            {
                "label": entry["label"],
                "issuer": entry["issuer"],
                "der": der,
                "get_path": path,
                "serial": parsed.serial_number,
                "key_hash": parsed.issuer_key_hash,
                "name_hash": parsed.issuer_name_hash,
                "hash": parsed.hash_algorithm.name,
                "signer": signers[entry["issuer"]],
            }
        )
    return requests


def read_control(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def verify_signature(response, key):
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(
                response.signature,
                response.tbs_response_bytes,
                padding.PKCS1v15(),
                response.signature_hash_algorithm,
            )
        else:
            key.verify(response.signature, response.tbs_response_bytes)
        return True
    except InvalidSignature:
        return False


def classify(request, status, content_type, body, allowed, expect_try_later=False):
    """Returns (category, detail) for one HTTP exchange."""
    if status != 200:
        return "fail", f"http {status}"
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError as error:
        return "fail", f"not an OCSP response ({error}; content-type {content_type})"
    now = datetime.datetime.now(datetime.timezone.utc)
    if response.response_status == ocsp.OCSPResponseStatus.TRY_LATER:
        return ("ok", "tryLater") if expect_try_later else ("fail", "tryLater")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return "wrong", f"OCSP status {response.response_status.name}"
    if content_type != "application/ocsp-response":
        return "wrong", f"content-type {content_type}"
    if (
        response.serial_number != request["serial"]
        or response.issuer_key_hash != request["key_hash"]
        or response.issuer_name_hash != request["name_hash"]
        or response.hash_algorithm.name != request["hash"]
    ):
        return "wrong", f"answer for another CertID (serial {response.serial_number:X})"
    if not verify_signature(response, request["signer"]):
        return "wrong", "signature does not verify with the issuer's OCSP signer"
    next_update = response.next_update_utc
    if next_update is None:
        return "wrong", "no nextUpdate"
    if next_update <= now:
        return "stale", f"nextUpdate {next_update.isoformat()} <= now {now.isoformat()}"
    if response.this_update_utc > now + datetime.timedelta(seconds=5):
        return "wrong", f"thisUpdate {response.this_update_utc.isoformat()} in the future"
    cert_status = STATUS_NAMES[response.certificate_status]
    if expect_try_later:
        return "wrong", f"{cert_status} where tryLater was expected (nextUpdate {next_update.isoformat()})"
    if cert_status not in allowed:
        return "wrong", f"{cert_status}, expected {'/'.join(allowed)}"
    return "ok", cert_status


class Exchange:
    """One keep-alive HTTP connection that reconnects after any error."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.connection = None

    def send(self, request, method):
        """One OCSP request (a load_spec entry) by POST or by GET."""
        if method == "POST":
            return self.exchange("POST", "/", request["der"], {"Content-Type": "application/ocsp-request"})
        return self.exchange("GET", request["get_path"])

    def exchange(self, method, path, body=None, headers=None):
        """(HTTP status, Content-Type, body); raises on a connection error or timeout."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            data = response.read()
            if response.will_close:
                self.close()
            return response.status, response.getheader("Content-Type", ""), data
        except Exception:
            self.close()
            raise

    def close(self):
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:
                pass
        self.connection = None


def new_counters():
    return {"total": 0, "ok": 0, "wrong": 0, "stale": 0, "fail": 0, "fail_kinds": {}, "latency_max_ms": 0.0, "latency_sum_ms": 0.0}


class Load:
    def __init__(self, args):
        self.args = args
        self.requests = load_spec(args.spec)
        self.host, port = args.target.rsplit(":", 1)
        self.port = int(port)
        self.control = read_control(args.control) or {"phase": "start", "expect": {}, "stop": False}
        self.control_stamp = None
        self.lock = threading.Lock()
        self.phases = {}
        self.phase_order = []
        self.counted = new_counters()
        self.uncounted = new_counters()
        self.examples = []  # every wrong or stale answer, and the first failures
        self.failure_examples = 0
        self.started = time.time()
        self.stopping = threading.Event()

    def refresh_control(self):
        try:
            stat = os.stat(self.args.control)
        except OSError:
            return
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp != self.control_stamp:
            control = read_control(self.args.control)
            if control is not None:
                self.control = control
                self.control_stamp = stamp

    def record(self, phase, counted, category, detail, sent_at, latency_ms, request, method):
        with self.lock:
            if phase not in self.phases:
                self.phases[phase] = new_counters()
                self.phase_order.append(phase)
            for counters in (self.phases[phase], self.counted if counted else self.uncounted):
                counters["total"] += 1
                counters[category] += 1
                counters["latency_max_ms"] = max(counters["latency_max_ms"], latency_ms)
                counters["latency_sum_ms"] += latency_ms
                if category == "fail":
                    kind = detail.split(" (")[0]
                    counters["fail_kinds"][kind] = counters["fail_kinds"].get(kind, 0) + 1
            keep = category in ("wrong", "stale") or (category == "fail" and self.failure_examples < 40)
            if keep and len(self.examples) < 200:
                if category == "fail":
                    self.failure_examples += 1
                self.examples.append(
                    {
                        "at": round(sent_at, 3),
                        "phase": phase,
                        "counted": counted,
                        "category": category,
                        "label": request["label"],
                        "method": method,
                        "detail": detail,
                    }
                )

    def worker(self, index):
        exchange = Exchange(self.host, self.port, timeout=5)
        n = index
        interval = 1.0 / self.args.rate if self.args.rate > 0 else 0.0
        next_at = time.monotonic()
        while not self.stopping.is_set():
            control = self.control
            if control.get("stop"):
                break
            request = self.requests[n % len(self.requests)]
            method = "POST" if (n // len(self.requests)) % 2 == 0 else "GET"
            n += 1
            allowed = control.get("expect", {}).get(request["label"], ["good"])
            sent_at = time.time()
            uncounted_after = control.get("uncounted_after")
            counted = uncounted_after is None or sent_at < uncounted_after
            started = time.monotonic()
            try:
                status, content_type, body = exchange.send(request, method)
                category, detail = classify(request, status, content_type, body, allowed)
            except Exception as error:  # connection errors, timeouts, broken responses
                category, detail = "fail", f"{type(error).__name__} ({error})"
            latency_ms = (time.monotonic() - started) * 1000
            self.record(control.get("phase", "?"), counted, category, detail, sent_at, latency_ms, request, method)
            if category == "fail":
                time.sleep(0.02)  # no hot loop while nothing answers
            if interval:
                next_at = max(next_at + interval, time.monotonic() - 1.0)
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        exchange.close()

    def snapshot(self, finished):
        with self.lock:
            return {
                "finished": finished,
                "elapsed": round(time.time() - self.started, 3),
                "threads": self.args.threads,
                "phases": [dict(self.phases[p], phase=p) for p in self.phase_order],
                "counted": dict(self.counted),
                "uncounted": dict(self.uncounted),
                "examples": list(self.examples),
            }

    def write(self, finished):
        data = self.snapshot(finished)
        temp = self.args.out + ".tmp"
        with open(temp, "w") as f:
            json.dump(data, f)
        os.replace(temp, self.args.out)

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.args.threads)]
        for thread in threads:
            thread.start()
        deadline = self.started + self.args.max_seconds
        last_write = 0.0
        while not self.stopping.is_set():
            self.refresh_control()
            if self.control.get("stop") or time.time() > deadline:
                self.stopping.set()
                break
            if time.time() - last_write > 0.5:
                self.write(False)
                last_write = time.time()
            time.sleep(0.02)
        for thread in threads:
            thread.join(timeout=10)
        self.write(True)


def check(args):
    """Sends every request once by POST and once by GET; prints a JSON verdict."""
    requests = load_spec(args.spec)
    control = read_control(args.control) or {"expect": {}}
    host, port = args.target.rsplit(":", 1)
    exchange = Exchange(host, int(port), timeout=5)
    results = {"total": 0, "ok": 0, "problems": [], "statuses": {}}
    for request in requests:
        for method in ("POST", "GET"):
            allowed = control.get("expect", {}).get(request["label"], ["good"])
            try:
                status, content_type, body = exchange.send(request, method)
                category, detail = classify(request, status, content_type, body, allowed, args.expect_try_later)
            except Exception as error:
                category, detail = "fail", f"{type(error).__name__} ({error})"
            results["total"] += 1
            if category == "ok":
                results["ok"] += 1
                results["statuses"][request["label"]] = detail
            else:
                results["problems"].append(f"{request['label']} {method}: {category}: {detail}")
    exchange.close()
    print(json.dumps(results))
    return 0 if results["ok"] == results["total"] else 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["load", "check"])
    parser.add_argument("--target", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--out")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0, help="requests per second per thread (0: closed loop)")
    parser.add_argument("--max-seconds", type=float, default=400)
    parser.add_argument("--expect-try-later", action="store_true")
    args = parser.parse_args()
    if args.mode == "check":
        sys.exit(check(args))
    if not args.out:
        parser.error("load needs --out")
    Load(args).run()


if __name__ == "__main__":
    main()

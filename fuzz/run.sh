#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a bounded time each, one after another,
# and fails if any of them finds a crash, a hang (-timeout) or an out-of-memory
# (-rss_limit_mb). See fuzz/README.md.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      default: 60 seconds, every target
#
# Environment: FUZZ_SANITIZER (none | address; default none, see README.md),
# FUZZ_RUNS (stop each target after this many executions instead of after the time),
# FUZZ_TIMEOUT (seconds one input may take before it counts as a hang; default 10),
# FUZZ_RSS_MB (memory limit; default 2048), FUZZ_NICE (niceness; default 10).
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`); a stable toolchain is enough.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

seconds="${1:-60}"
shift || true
sanitizer="${FUZZ_SANITIZER:-none}"
timeout="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
niceness="${FUZZ_NICE:-10}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is not installed (cargo install --locked cargo-fuzz)" >&2
  exit 2
fi
# Without a sanitizer, cargo-fuzz passes only stable flags (sanitizer-coverage through
# -Cpasses/-Cllvm-args, --cfg fuzzing, debug assertions). A sanitizer needs the
# nightly-only -Zsanitizer: RUSTC_BOOTSTRAP=1 lets the stable compiler accept it, for
# this build only (not exported when unneeded, so the builds share their artifacts).
if [[ "$sanitizer" != none ]]; then
  export RUSTC_BOOTSTRAP=1
fi

targets=("$@")
build=()
if ((${#targets[@]} == 0)); then
  # `seeds` is not a fuzz target: it writes the seed corpora.
  mapfile -t targets < <(cargo fuzz list | grep -vx seeds)
else
  build=(seeds "${targets[@]}")
fi

echo "== build (sanitizer: $sanitizer)"
if ((${#build[@]} == 0)); then
  nice -n "$niceness" cargo fuzz build --sanitizer "$sanitizer"
else
  for target in "${build[@]}"; do
    nice -n "$niceness" cargo fuzz build --sanitizer "$sanitizer" "$target"
  done
fi

echo "== seeds (fuzz/seeds, regenerated from fixtures/demo)"
FUZZ_SEEDS_DIR="$PWD/fuzz/seeds" nice -n "$niceness" cargo fuzz run --sanitizer "$sanitizer" seeds

mkdir -p fuzz/logs
failed=()
summary=()
for target in "${targets[@]}"; do
  echo "== $target (${FUZZ_RUNS:+$FUZZ_RUNS runs, at most }${seconds}s)"
  mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
  log="fuzz/logs/$target.log"
  limits=(-max_total_time="$seconds")
  [[ -n "${FUZZ_RUNS:-}" ]] && limits+=(-runs="$FUZZ_RUNS")
  status=0
  nice -n "$niceness" cargo fuzz run --sanitizer "$sanitizer" "$target" \
    "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    "${limits[@]}" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  executions=$(awk '/^stat::number_of_executed_units/ { print $NF }' "$log" | tail -1)
  coverage=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  if ((status == 0)); then
    result=ok
  else
    result="FAILED (exit $status; see $log and fuzz/artifacts/$target/)"
    failed+=("$target")
    tail -n 40 "$log" >&2
  fi
  summary+=("$(printf '%-22s %14s execs  %-22s %s' "$target" "${executions:-?}" "${coverage:-cov: ?}" "$result")")
  echo "${summary[-1]}"
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz/run.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi

#!/usr/bin/env bash
# Bounded fuzzing of the decoders of untrusted bytes (tests/fuzz): builds the cargo-fuzz
# targets, runs each for RIVULET_FUZZ_SECONDS (default 60) seeded with a throwaway copy of the
# committed corpus, and fails on the first crash, printing the input that caused it.
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${RIVULET_FUZZ_SECONDS:-60}
# AddressSanitizer's allocator is what lets libFuzzer catch one oversized allocation
# (-malloc_limit_mb) before it is touched; `none` builds faster but only sees resident memory.
sanitizer=${RIVULET_FUZZ_SANITIZER:-address}
targets=(request record_batch recovery raft_rpc)
export RUSTC_BOOTSTRAP=1
# The fuzz crate is its own workspace with its own target directory (tests/fuzz/target).
unset CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

cargo fuzz build --fuzz-dir tests/fuzz --sanitizer "$sanitizer"

# The recovery target creates, fsyncs and removes a partition directory per input: on tmpfs.
if [[ -z "${TMPDIR:-}" && -w /dev/shm ]]; then
  export TMPDIR=/dev/shm
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  artifacts="$work/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  cp -r "tests/fuzz/corpus/$target/." "$corpus/"
  echo "fuzzing $target for ${seconds}s"
  if ! cargo fuzz run --fuzz-dir tests/fuzz --sanitizer "$sanitizer" "$target" "$corpus" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
      -artifact_prefix="$artifacts" -print_final_stats=1 2>"$work/$target.log"; then
    tail -n 60 "$work/$target.log"
    crash=$(find "$artifacts" -type f | head -n 1)
    saved="tests/fuzz/artifacts/$target"
    mkdir -p "$saved"
    [[ -n "$crash" ]] && cp "$crash" "$saved/"
    echo "fuzz target $target failed; input: $saved/$(basename "${crash:-none}")" >&2
    echo "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz $target $saved/$(basename "${crash:-none}")" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/$target.log" || true
done
echo "fuzzing passed: ${#targets[@]} targets, ${seconds}s each"

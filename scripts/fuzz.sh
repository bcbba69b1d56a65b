#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ and runs each for a bounded time; fails if any target finds a
# crash, a hang (libFuzzer's -timeout), a leak or runs out of memory. CI calls it with the default
# 15 seconds per target; docs/reliability.md records longer runs.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Works on the stable toolchain: cargo-fuzz passes -Z flags (sanitizer, coverage instrumentation)
# that only nightly accepts, and RUSTC_BOOTSTRAP=1 lets stable rustc accept them too. cargo-fuzz
# is installed into ~/.cargo/bin when missing. Builds go to fuzz/target (the fuzz crate is its own
# workspace); new inputs a run finds go to fuzz/target/corpus/<target>, so the checked-in seed
# corpora in fuzz/corpus/<target> stay as they are. Crashes are saved under fuzz/artifacts/<target>/
# and printed with the command that reproduces them (`cargo fuzz run <target> <file>` also does).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-15}
shift || true

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# Optimised, with overflow checks (integer overflow on input is a crash too) but without debug
# assertions (-O): we have no debug_assert! of our own, and mail-parser 0.11.9 has a
# `debug_assert!(false)` that nested message/rfc822 parts reach (docs/reliability.md, Findings);
# it compiles away in release builds, where the parser handles that case, so with cargo-fuzz's
# default (debug assertions on) every run could stop there instead of finding our bugs.
# cargo-fuzz appends RUSTFLAGS to its own. Address sanitizer by default. 16 codegen units instead
# of 1 builds several times faster on small CI machines for slightly slower runs. (To reproduce
# a crash with `cargo fuzz run`, pass the same flags, or it rebuilds.) FUZZ_SANITIZER=none (CI)
# skips the address sanitizer: our crates forbid unsafe code, and the build is much shorter;
# long runs keep it.
export RUSTFLAGS="${RUSTFLAGS:-} -Coverflow-checks=on"
build_flags=(-O --codegen-units 16 --sanitizer "${FUZZ_SANITIZER:-address}")
started=$SECONDS
cargo fuzz build "${build_flags[@]}"
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - started)) s"

# The session targets keep their stores here (tmpfs when there is one: every commit is an fsync);
# the last one of each process outlives it, so the whole directory goes at the end.
scratch_parent=/dev/shm
[ -d "$scratch_parent" ] || scratch_parent=${TMPDIR:-/tmp}
TERN_FUZZ_TMPDIR=$(mktemp -d "$scratch_parent/tern-fuzz.XXXXXX")
export TERN_FUZZ_TMPDIR
trap 'rm -rf "$TERN_FUZZ_TMPDIR"' EXIT

# Run the built binaries directly rather than through `cargo fuzz run`, which would rebuild first
# and count that against the time limit. The options are the ones cargo fuzz run passes.
bin_dir="${CARGO_TARGET_DIR:-target}/$(rustc -vV | sed -n 's/^host: //p')/release"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
failed=()
for target in "${targets[@]}"; do
  work="target/corpus/$target"
  mkdir -p "$work" "corpus/$target" "artifacts/$target"
  echo "fuzz: $target for ${seconds} s"
  # libFuzzer writes new inputs to the first corpus directory only. -timeout: one input taking
  # longer is a hang. The outer timeout stops a run that libFuzzer itself cannot end.
  log="target/fuzz-$target.log"
  if timeout --kill-after=30 $((seconds + 120)) \
    "$bin_dir/$target" "$work" "corpus/$target" \
    -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  else
    tail -n 150 "$log"
    echo "fuzz: $target failed; reproduce with: cd fuzz && $bin_dir/$target artifacts/$target/<file>" >&2
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds} s each without a crash ($((SECONDS - started)) s in all)"

#!/usr/bin/env bash
# Runs the crash-safety test (crates/tern/tests/crash.rs) for ROUNDS kills (default 1000) and
# keeps its output: one line per kill, then the totals. Exit status is the test's. CI runs the
# same test with its default of 20 rounds; docs/reliability.md ("Crash test") records long runs.
#
#   scripts/crash-run.sh [ROUNDS]        # log: target/crash-run/<date>-<ROUNDS>.log
#
# Debug build, as in CI: the binary under test is then exactly the one CI tests (debug
# assertions and overflow checks on), nothing is built twice, and a release build of the whole
# dependency tree would cost more than it saves. The test's pace is set by its kill timer
# (100-900 ms of load per round) and by fsync, not by the server's CPU time, so a release build
# would not make a round much shorter; it would only pack more messages into one.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-1000}
mkdir -p target/crash-run
log="target/crash-run/$(date +%Y%m%d-%H%M%S)-${rounds}.log"

cargo test -p tern --test crash --no-run
{
  echo "crash-run: $rounds rounds, $(date -u +%Y-%m-%dT%H:%M:%SZ), log $log"
  if commit=$(git rev-parse --short HEAD 2>/dev/null); then
    echo "crash-run: commit $commit; uncommitted changes under crates/:"
    git status --short -- crates Cargo.lock
  else
    echo "crash-run: not a git checkout"
  fi
} | tee "$log"
started=$SECONDS
status=0
TERN_CRASH_ROUNDS=$rounds cargo test -p tern --test crash -- --nocapture 2>&1 | tee -a "$log" ||
  status=$?
echo "crash-run: $rounds rounds, exit $status, $((SECONDS - started)) s wall" | tee -a "$log"
exit "$status"

#!/usr/bin/env bash
# Start a release build of Tern set up for the shared benchmark harness (../shared/bench):
# users user1..userN@bench.test with one password, SMTP/IMAP/POP3 on loopback ports, plaintext
# login allowed on loopback (as the reference stack allows it).
#   scripts/bench-tern.sh [--fresh]   start (after building); prints the BENCH_* variables
#   scripts/bench-tern.sh --stop      stop it (SIGTERM)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TERN_BENCH_DIR:=/tmp/bench-tern}"
: "${TERN_BENCH_USERS:=100}"
: "${TERN_BENCH_PASSWORD:=benchpass}"
: "${TERN_BENCH_SMTP_PORT:=11025}"
: "${TERN_BENCH_IMAP_PORT:=11143}"
: "${TERN_BENCH_POP3_PORT:=11110}"
: "${CARGO_TARGET_DIR:=target}"
pidfile="$TERN_BENCH_DIR/tern.pid"

if [ "${1:-}" = "--stop" ]; then
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  exit 0
fi
[ "${1:-}" = "--fresh" ] && rm -rf "$TERN_BENCH_DIR"

cargo build --release -p tern >&2
tern="$CARGO_TARGET_DIR/release/tern"
mkdir -p "$TERN_BENCH_DIR"
config="$TERN_BENCH_DIR/tern.toml"
cat >"$config" <<TOML
hostname = "mail.bench.test"
domains = ["bench.test"]
data_dir = "$TERN_BENCH_DIR/data"
# A throwaway benchmark server; as root it would otherwise need a tern user to switch to.
allow_root = true
[auth]
allow_plaintext_on_loopback = true
[tls]
self_signed = true
# The reference stack checks no SPF/DKIM/DMARC and this machine has no DNS: treat the
# loopback load generator as a trusted relay so both servers do the same work.
[mail_auth]
trusted_relays = ["127.0.0.0/8"]
[limits]
max_connections_per_ip = 20000
max_connections = 20000
[[listener]]
name = "smtp"
protocol = "smtp"
bind = "127.0.0.1:$TERN_BENCH_SMTP_PORT"
[[listener]]
name = "imap"
protocol = "imap"
bind = "127.0.0.1:$TERN_BENCH_IMAP_PORT"
[[listener]]
name = "pop3"
protocol = "pop3"
bind = "127.0.0.1:$TERN_BENCH_POP3_PORT"
TOML
existing="$("$tern" --config "$config" user list 2>/dev/null | wc -l)"
if [ "$existing" -lt "$TERN_BENCH_USERS" ]; then
  for i in $(seq 1 "$TERN_BENCH_USERS"); do
    echo "$TERN_BENCH_PASSWORD" | "$tern" --config "$config" user add "user$i@bench.test" >/dev/null 2>&1 || true
  done
fi
ulimit -n "$(ulimit -Hn)"
RUST_LOG=warn "$tern" --config "$config" serve >>"$TERN_BENCH_DIR/tern.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$TERN_BENCH_IMAP_PORT") 2>/dev/null && break
  sleep 0.1
done
cat <<ENV
export BENCH_SMTP_PORT=$TERN_BENCH_SMTP_PORT BENCH_IMAP_PORT=$TERN_BENCH_IMAP_PORT BENCH_POP3_PORT=$TERN_BENCH_POP3_PORT
export BENCH_USERS=$TERN_BENCH_USERS BENCH_PASSWORD=$TERN_BENCH_PASSWORD BENCH_USER_PATTERN='user%d@bench.test'
export BENCH_LABEL=tern BENCH_SERVER_PIDFILE=$pidfile
ENV

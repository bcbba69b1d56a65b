#!/usr/bin/env bash
# K IMAP sessions in IDLE while S SMTP sessions deliver M messages to their users, against a
# throwaway release build of Tern (scripts/load-idle-smtp.py does the work and the checks).
#   scripts/load-idle-smtp.sh [K] [S] [M]      defaults: 10000 50 5000
# Environment: LOAD_USERS (100), LOAD_SMTP_PORT (13025), LOAD_IMAP_PORT (13143),
# CARGO_TARGET_DIR (/work/load-target), LOAD_KEEP=1 keeps the data dir, LOAD_ARGS adds driver
# options (e.g. "--per-conn 0"). The last line of stdout is the driver's JSON result; the exit
# status is the driver's.
set -euo pipefail
cd "$(dirname "$0")/.."
K="${1:-10000}"
S="${2:-50}"
M="${3:-5000}"
: "${LOAD_USERS:=100}"
: "${LOAD_SMTP_PORT:=13025}"
: "${LOAD_IMAP_PORT:=13143}"
: "${CARGO_TARGET_DIR:=/work/load-target}"
export CARGO_TARGET_DIR
password=loadpass

for port in "$LOAD_SMTP_PORT" "$LOAD_IMAP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (set LOAD_SMTP_PORT / LOAD_IMAP_PORT)" >&2
    exit 2
  fi
done

cargo build --release -p tern >&2
tern="$CARGO_TARGET_DIR/release/tern"

dir="$(mktemp -d /tmp/tern-load.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  if [ "${LOAD_KEEP:-0}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

config="$dir/tern.toml"
cat >"$config" <<TOML
hostname = "mail.load.test"
domains = ["load.test"]
data_dir = "$dir/data"
# A throwaway benchmark server; as root it would otherwise need a `tern` user to switch to.
allow_root = true
[auth]
allow_plaintext_on_loopback = true
[tls]
self_signed = true
# No DNS here: the loopback load generator is a trusted relay (no SPF/DKIM/DMARC lookups).
[mail_auth]
trusted_relays = ["127.0.0.0/8"]
# Every client comes from 127.0.0.1: K IDLE sessions + S SMTP sessions + probes on one address.
[limits]
max_connections_per_ip = $((K + S + 1000))
max_connections = $((K + S + 1000))
[[listener]]
name = "smtp"
protocol = "smtp"
bind = "127.0.0.1:$LOAD_SMTP_PORT"
[[listener]]
name = "imap"
protocol = "imap"
bind = "127.0.0.1:$LOAD_IMAP_PORT"
TOML

echo "adding $LOAD_USERS users" >&2
for i in $(seq 1 "$LOAD_USERS"); do
  echo "$password" | "$tern" --config "$config" user add "user$i@load.test" >/dev/null
done

# The server needs a descriptor per connection.
ulimit -n "$(ulimit -Hn)"
RUST_LOG=warn "$tern" --config "$config" serve >>"$dir/tern.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$LOAD_IMAP_PORT") 2>/dev/null && break
  sleep 0.1
done

echo "tern $(git rev-parse --short HEAD 2>/dev/null || echo '?') pid $pid; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
status=0
# shellcheck disable=SC2086 # LOAD_ARGS is a list of options
python3 scripts/load-idle-smtp.py --imap-port "$LOAD_IMAP_PORT" --smtp-port "$LOAD_SMTP_PORT" \
  --users "$LOAD_USERS" --user-pattern 'user%d@load.test' --password "$password" \
  --conns "$K" --smtp-sessions "$S" --messages "$M" --server-pid "$pid" ${LOAD_ARGS:-} || status=$?

if ! kill -0 "$pid" 2>/dev/null; then
  echo "tern is no longer running" >&2
  status=1
fi
if [ -s "$dir/tern.log" ]; then
  echo "tern log: $(grep -c ERROR "$dir/tern.log" || true) ERROR, $(grep -c WARN "$dir/tern.log" || true) WARN lines; last lines:" >&2
  tail -n 5 "$dir/tern.log" >&2
fi
exit "$status"

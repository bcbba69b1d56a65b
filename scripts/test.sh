#!/usr/bin/env bash
# Runs Tern's whole test suite on a fresh Debian machine: installs the independent clients
# and peers the integration tests talk to (when missing), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package providing it
packages=(
  swaks:swaks
  mbsync:isync
  fetchmail:fetchmail
  curl:curl
  python3:python3
  clamd:clamav-daemon
  postfix:postfix
  dnsmasq:dnsmasq
)
missing=()
for pair in "${packages[@]}"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing test dependencies: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  # Tests start their own clamd/postfix/dnsmasq on loopback; keep the packages' system
  # services from starting during installation (they would try to reach the network).
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  trap '[ -n "$policy_added" ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo test --workspace --all-targets --locked

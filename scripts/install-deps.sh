#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages estca and its tests need, skipping what is already there.
# Run as root (or with sudo). Safe to run again.
set -euo pipefail
pkgs=(softhsm2 openssl curl ca-certificates strongswan-pki libstrongswan-extra-plugins chromium sqlite3)
[ "${1:-}" = "--bench" ] && pkgs+=(wrk)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Installs the system packages the test suite needs (Debian): SoftHSM2 for the
# PKCS#11 root-key tests, PostgreSQL 15 server binaries for the key-store tests,
# OpenSSL's command line for the TLS test bed; wrk for benchmarks/compare_web.py. Idempotent; needs root to install.
set -euo pipefail

need=()
[ -x /usr/bin/softhsm2-util ] || need+=(softhsm2)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v openssl >/dev/null || need+=(openssl)
command -v runuser >/dev/null || need+=(util-linux)
command -v wrk >/dev/null || need+=(wrk)  # benchmarks/compare_web.py load generator only

if [ ${#need[@]} -eq 0 ]; then
  echo "system-deps: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${need[*]}; install them as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "system-deps: done"

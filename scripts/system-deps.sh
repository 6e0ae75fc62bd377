#!/usr/bin/env bash
# Installs the system packages the test suite needs (Debian): SoftHSM2 for the
# PKCS#11 root-key tests, PostgreSQL 15 server binaries for the key-store tests,
# OpenSSL's command line for the TLS test bed; gnutls-serv, Dovecot, MariaDB,
# slapd, vsftpd and Prosody for the TLS audit's STARTTLS tests; wrk and testssl.sh for
# the comparison scripts in benchmarks/. Idempotent; needs root.
set -euo pipefail

need=()
[ -x /usr/bin/softhsm2-util ] || need+=(softhsm2)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v openssl >/dev/null || need+=(openssl)
command -v runuser >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)  # docs examples (web pages) run curl against the app
command -v wrk >/dev/null || need+=(wrk)  # benchmarks/compare_web.py load generator only
# TLS audit STARTTLS tests (issue 16): real servers started on loopback by the tests.
command -v gnutls-serv >/dev/null || need+=(gnutls-bin)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-pop3d)
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
[ -x /usr/sbin/slapd ] || need+=(slapd)
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
command -v prosody >/dev/null || need+=(prosody)  # XMPP; the tests run it on their own port
# Evidence report browser test (issue 19): headless Chromium renders the HTML report.
command -v chromium >/dev/null || need+=(chromium)
command -v testssl >/dev/null || need+=(testssl.sh)  # benchmarks/compare_audit.py only

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
# Packaged daemons must not start system-wide instances: the tests run their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Prosody's package enables a system service on 5222/5269: keep it off (the tests start
# their own, unprivileged, on a free loopback port).
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now prosody >/dev/null 2>&1 || true
fi
echo "system-deps: done"

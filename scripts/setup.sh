#!/usr/bin/env bash
# First-run set-up of the demo under var/ (made once, reused afterwards):
# a self-signed TLS certificate for 127.0.0.1 and localhost, and the demo
# configuration var/mpkigw.conf derived from configs/mpkigw.conf.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p var/tls var/log
chmod 700 var/tls

if [ ! -s var/tls/server.crt ] || [ ! -s var/tls/server.key ]; then
  echo "setup: creating a self-signed TLS certificate for 127.0.0.1 and localhost"
  umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout var/tls/server.key -out var/tls/server.crt -days 825 \
    -subj "/CN=mpkigw demo (localhost)" \
    -addext "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null
  umask 022
fi

if [ ! -s var/mpkigw.conf ]; then
  echo "setup: writing var/mpkigw.conf from configs/mpkigw.conf"
  # The reference file names demo state as ../var/...; beside it in var/
  # the same files are plain relative paths.
  sed 's|"\.\./var/|"|g' configs/mpkigw.conf > var/mpkigw.conf
fi

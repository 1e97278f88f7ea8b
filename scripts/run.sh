#!/usr/bin/env bash
# Starts the demo in the foreground (make run). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
conf=var/mpkigw.conf

"$BUILD/mpkigw" --check-config "$conf" >/dev/null
port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*"[^"]*:\([0-9]*\)".*/\1/p' "$conf" | head -n 1)
port=${port:-8443}

cat <<MSG

  mpkigw — mobile SIM-PKI authentication gateway (demo)

  gateway      https://127.0.0.1:$port/   (HTTP/2 via ALPN h2, HTTP/1.1 fallback)
  health       https://127.0.0.1:$port/healthz
  metrics      https://127.0.0.1:$port/metrics   (Prometheus text)
  config       $conf   (reference with every key explained: configs/mpkigw.conf)
  TLS cert     var/tls/server.crt   (self-signed for 127.0.0.1 and localhost)
  store        var/mpkigw.db   (SQLite, WAL; also the subscriber registry)
  logs         this terminal (logfmt; set log.file in $conf to write a file)

  demo PKI     var/pki/   root-ca.pem, issuing-ca.pem, crl.pem (republished now),
                          index.txt (for openssl ocsp), ocsp.pem/ocsp.key
  tokens       var/tokens/ (SoftHSM: CA, gateway keys, one token per SIM)
  gateway keys var/keys/  es256.pem, rs256.pem, kids
  SIMs         $BUILD/mpkictl sim list        (PIN 1234, PUK 12345678)
               $BUILD/mpkictl sim show --msisdn +96899000001 --cert

  try:  curl --http2   -sk https://127.0.0.1:$port/healthz
        curl --http1.1 -sk https://127.0.0.1:$port/healthz
        curl -sk https://127.0.0.1:$port/metrics
        curl --cacert var/tls/server.crt https://localhost:$port/healthz
        openssl verify -CAfile var/pki/root-ca.pem -untrusted var/pki/issuing-ca.pem \
          -crl_check -CRLfile var/pki/crl.pem \
          <($BUILD/mpkictl sim show --msisdn +96899000004 --cert)   # revoked

  Ctrl-C stops the gateway (in-flight requests finish first).

MSG
exec "$BUILD/mpkigw" --config "$conf"

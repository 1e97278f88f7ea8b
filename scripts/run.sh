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
  store        var/mpkigw.db   (SQLite, WAL)
  logs         this terminal (logfmt; set log.file in $conf to write a file)

  try:  curl --http2   -sk https://127.0.0.1:$port/healthz
        curl --http1.1 -sk https://127.0.0.1:$port/healthz
        curl -sk https://127.0.0.1:$port/metrics
        curl --cacert var/tls/server.crt https://localhost:$port/healthz

  Ctrl-C stops the gateway (in-flight requests finish first).

MSG
exec "$BUILD/mpkigw" --config "$conf"

#!/usr/bin/env bash
# Starts the demo in the foreground (make run): the Omantel mock MSSP in the
# background, then the gateway. Ctrl-C stops both cleanly (the mock is
# stopped whenever the gateway stops).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
conf=var/mpkigw.conf
mock_conf=var/mssp-mock.conf
mock_log=var/log/mssp-omantel.log

"$BUILD/mpkigw" --check-config "$conf" >/dev/null
port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*"[^"]*:\([0-9]*\)".*/\1/p' "$conf" | head -n 1)
port=${port:-8443}

# ---- the Omantel mock MSSP (issue 4) ------------------------------------------
"$BUILD/mssp-mock" --check-config "$mock_conf" >/dev/null
# The listen address of the omantel { } group.
mock_addr=$(sed -n '/^omantel:/,/^};/s/^[[:space:]]*listen[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$mock_conf" | head -n 1)
mock_addr=${mock_addr:-127.0.0.1:9201}
mkdir -p var/log
"$BUILD/mssp-mock" --operator omantel --config "$mock_conf" >>"$mock_log" 2>&1 &
mock_pid=$!
stop_mock() {
  if kill -0 "$mock_pid" 2>/dev/null; then
    kill -TERM "$mock_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do # at most 5 s
      kill -0 "$mock_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$mock_pid" 2>/dev/null || true
  fi
  wait "$mock_pid" 2>/dev/null || true
}
trap stop_mock EXIT
mock_up=0
for _ in $(seq 1 100); do # at most 10 s
  if ! kill -0 "$mock_pid" 2>/dev/null; then
    break
  fi
  if curl -s --max-time 1 -o /dev/null "http://$mock_addr/healthz"; then
    mock_up=1
    break
  fi
  sleep 0.1
done
if [ "$mock_up" != 1 ]; then
  echo "run: the Omantel mock MSSP did not start; the end of $mock_log:" >&2
  tail -n 5 "$mock_log" >&2
  exit 1
fi

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

  Omantel MSSP http://$mock_addr/soap/services/MSS_SignaturePort   (mock, ETSI TS 102 204,
               SOAP 1.2; also MSS_StatusQueryPort, MSS_ReceiptPort; plain HTTP/1.1 + h2c)
               test AP: AP_ID http://demo_ap, AP_PWD demo   (config: $mock_conf)
               control: http://$mock_addr/control/subscribers/+96899000010   (see docs/operators.md)
               log: $mock_log

  try:  curl --http2   -sk https://127.0.0.1:$port/healthz
        curl --http1.1 -sk https://127.0.0.1:$port/healthz
        curl -sk https://127.0.0.1:$port/metrics
        curl --cacert var/tls/server.crt https://localhost:$port/healthz
        openssl verify -CAfile var/pki/root-ca.pem -untrusted var/pki/issuing-ca.pem \
          -crl_check -CRLfile var/pki/crl.pem \
          <($BUILD/mpkictl sim show --msisdn +96899000004 --cert)   # revoked

  Ctrl-C stops the gateway (in-flight requests finish first) and the mock.

MSG
# The gateway in the background so that this shell can pass signals on and
# stop the mock after it.
"$BUILD/mpkigw" --config "$conf" &
gw_pid=$!
trap 'kill -TERM "$gw_pid" 2>/dev/null || true' INT TERM
rc=0
while kill -0 "$gw_pid" 2>/dev/null; do
  wait "$gw_pid" && rc=0 || rc=$?
done
exit "$rc"

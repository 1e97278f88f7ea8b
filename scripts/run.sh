#!/usr/bin/env bash
# Starts the demo in the foreground (make run): the Omantel and Ooredoo mock
# MSSPs in the background, then the gateway. Ctrl-C stops all of them
# cleanly (the mocks are stopped whenever the gateway stops).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
conf=var/mpkigw.conf
mock_conf=var/mssp-mock.conf

"$BUILD/mpkigw" --check-config "$conf" >/dev/null
port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*"[^"]*:\([0-9]*\)".*/\1/p' "$conf" | head -n 1)
port=${port:-8443}

# ---- the mock operators' MSSPs (issues 4 and 5) ------------------------------
"$BUILD/mssp-mock" --check-config "$mock_conf" >/dev/null
mkdir -p var/log
mock_pids=()
stop_mocks() {
  local pid
  for pid in "${mock_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${mock_pids[@]}"; do
    for _ in $(seq 1 50); do # at most 5 s
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap stop_mocks EXIT

# The listen address of an operator's group in the mock's config.
mock_addr() {
  sed -n "/^$1:/,/^};/s/^[[:space:]]*listen[[:space:]]*=[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" "$mock_conf" | head -n 1
}

start_mock() { # operator default-address
  local op=$1 addr log pid up=0
  addr=$(mock_addr "$op")
  addr=${addr:-$2}
  log=var/log/mssp-$op.log
  "$BUILD/mssp-mock" --operator "$op" --config "$mock_conf" >>"$log" 2>&1 &
  pid=$!
  mock_pids+=("$pid")
  for _ in $(seq 1 100); do # at most 10 s
    kill -0 "$pid" 2>/dev/null || break
    if curl -s --max-time 1 -o /dev/null "http://$addr/healthz"; then
      up=1
      break
    fi
    sleep 0.1
  done
  if [ "$up" != 1 ]; then
    echo "run: the $op mock MSSP did not start; the end of $log:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
}
omantel_addr=$(mock_addr omantel)
omantel_addr=${omantel_addr:-127.0.0.1:9201}
ooredoo_addr=$(mock_addr ooredoo)
ooredoo_addr=${ooredoo_addr:-127.0.0.1:9202}
start_mock omantel "$omantel_addr"
start_mock ooredoo "$ooredoo_addr"

# The virtual handsets of the subscribers who wait for one (behaviour
# "handset" in configs/demo-subscribers.csv).
handsets=$(awk -F, -v om="$omantel_addr" -v oo="$ooredoo_addr" '
  /^#/ || $1 == "msisdn" { next }
  $7 == "handset" {
    addr = ($4 == "ooredoo") ? oo : om
    printf "               http://%s/handset/%s   (%s, %s)\n", addr, $1, $3, $4
  }' configs/demo-subscribers.csv)

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

  Omantel MSSP http://$omantel_addr/soap/services/MSS_SignaturePort   (mock, ETSI TS 102 204,
               SOAP 1.2; also MSS_StatusQueryPort, MSS_ReceiptPort; plain HTTP/1.1 + h2c)
               log: var/log/mssp-omantel.log
  Ooredoo MSSP http://$ooredoo_addr/rest/service   (mock, the same messages in JSON; POST;
               notifications to https://127.0.0.1:$port/operators/ooredoo/notify)
               log: var/log/mssp-ooredoo.log
               both: test AP_ID http://demo_ap, AP_PWD demo; config $mock_conf;
               control: http://$omantel_addr/control/stats   (see docs/operators.md)
  handsets     the virtual phones of the subscribers who answer by hand (PIN 1234):
$handsets
  OpenID       https://127.0.0.1:$port/.well-known/openid-configuration   (CIBA, code + PKCE)
               relying party demo-rp / demo-rp-secret   (var/clients.conf; README: the CIBA curls)
  login page   https://127.0.0.1:$port/authorize?response_type=code&client_id=demo-rp&redirect_uri=http://127.0.0.1:9300/callback&scope=openid%20profile&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256
               (a relying party for it: MPKIGW_ISSUER=https://127.0.0.1:$port NODE_EXTRA_CA_CERTS=var/tls/server.crt
               node tests/e2e/rp.mjs, then http://127.0.0.1:9300/ — npm ci --prefix tests/e2e first)
  audit        $BUILD/mpkictl audit verify | audit tail

  try:  curl --http2   -sk https://127.0.0.1:$port/healthz
        curl --http1.1 -sk https://127.0.0.1:$port/healthz
        curl -sk https://127.0.0.1:$port/metrics
        curl --cacert var/tls/server.crt https://localhost:$port/healthz
        openssl verify -CAfile var/pki/root-ca.pem -untrusted var/pki/issuing-ca.pem \\
          -crl_check -CRLfile var/pki/crl.pem \\
          <($BUILD/mpkictl sim show --msisdn +96899000004 --cert)   # revoked
        scripts/ooredoo-sign.sh +96895000001   # a JSON signature from the Ooredoo mock,
                                               # checked with openssl

  Ctrl-C stops the gateway (in-flight requests finish first) and the mocks.

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

#!/usr/bin/env bash
# tests/bench/run.sh — `make bench`: h2load against mpkigw's /healthz and
# against nghttpd (nghttp2's reference server) serving a file of the same 15
# bytes, over TLS, on this machine. Alternates the servers for 3 rounds and
# compares medians; once with multiplexing (-m 10) and once without (-m 1).
# mpkigw runs as in production (access log on) and once more with
# log.access = false. Builds nothing (the Makefile builds first); writes the
# figures to $BUILD/bench/results.txt. Exit 0 whatever the ratio: this is a
# measurement. Environment: ROUNDS (3), REQUESTS (200000), CONNS (50).
source "$(dirname "$0")/../integration/lib.sh"

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
CONNS=${CONNS:-50}
NPROC=$(nproc)
OUTDIR=$GW_ROOT/$BUILD/bench
RESULTS=$OUTDIR/results.txt
mkdir -p "$OUTDIR"

for tool in h2load nghttpd; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench: $tool is missing (apt-get install nghttp2-client nghttp2-server)" >&2
    exit 1
  fi
done

# ---- servers ------------------------------------------------------------------

start_server bench-log "server.workers=$NPROC" log.access=true || exit 1
LOG_PORT=$SRV_PORT
start_server bench-nolog "server.workers=$NPROC" log.access=false || exit 1
NOLOG_PORT=$SRV_PORT

# nghttpd serves $DOCS/healthz: the same 15 bytes as mpkigw's /healthz.
DOCS=$GW_TMP/htdocs
mkdir -p "$DOCS"
printf '{"status":"ok"}' >"$DOCS/healthz"
body=$(curl -sk --max-time 5 "https://127.0.0.1:$LOG_PORT/healthz")
if [ "${#body}" != "$(stat -c %s "$DOCS/healthz")" ]; then
  echo "bench: mpkigw's /healthz body is ${#body} bytes, nghttpd's file 15" >&2
fi
NGHTTPD_PORT=$(free_port)
nghttpd -n "$NPROC" -d "$DOCS" "$NGHTTPD_PORT" "$GW_KEY" "$GW_CERT" \
  >"$GW_TMP/nghttpd.out" 2>&1 &
NGHTTPD_PID=$!
track_pid "$NGHTTPD_PID"
if ! wait_healthy "$NGHTTPD_PORT" "$NGHTTPD_PID"; then
  echo "bench: nghttpd did not start: $(tail -n 3 "$GW_TMP/nghttpd.out")" >&2
  exit 1
fi

# ---- runs -----------------------------------------------------------------------

declare -A RUNS   # "server m" -> space-separated req/s of each round
FAILED_RUNS=0

# run SERVER PORT M: one h2load run; appends its req/s to RUNS.
run() {
  local server=$1 port=$2 m=$3 out rps failed
  out=$(h2load -n "$REQUESTS" -c "$CONNS" -m "$m" "https://127.0.0.1:$port/healthz" 2>&1)
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
  failed=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' <<<"$out")
  if [ -z "$rps" ] || [ "${failed:-1}" != 0 ] ||
    ! grep -q "^status codes: $REQUESTS 2xx" <<<"$out"; then
    FAILED_RUNS=$((FAILED_RUNS + 1))
    echo "  $server -m $m: h2load reported failures:" >&2
    grep -E '^(requests|status codes):' <<<"$out" | sed 's/^/    /' >&2
    rps=${rps:-0}
  fi
  RUNS["$server $m"]="${RUNS["$server $m"]:-} $rps"
  printf '  %-14s -m %-2s %10.0f req/s\n' "$server" "$m" "$rps"
}

median() { # values...
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) { print 0; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "mpkigw $("$MPKIGW" --version | head -n 1 | cut -d' ' -f2-) vs $(nghttpd --version 2>&1 | head -n 1)"
echo "h2load -n $REQUESTS -c $CONNS -m {10,1}, TLS, $NPROC CPUs, $ROUNDS rounds, workers = $NPROC"
t0=$SECONDS
for m in 10 1; do
  for round in $(seq 1 "$ROUNDS"); do
    echo "round $round, -m $m:"
    # Alternate the order so that neither server always runs first.
    if [ $((round % 2)) = 1 ]; then
      run mpkigw "$LOG_PORT" "$m"
      run nghttpd "$NGHTTPD_PORT" "$m"
      run mpkigw-nolog "$NOLOG_PORT" "$m"
    else
      run nghttpd "$NGHTTPD_PORT" "$m"
      run mpkigw-nolog "$NOLOG_PORT" "$m"
      run mpkigw "$LOG_PORT" "$m"
    fi
  done
done
elapsed=$((SECONDS - t0))

# ---- report ---------------------------------------------------------------------

{
  echo "# mpkigw bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# mpkigw $("$MPKIGW" --version | head -n 1 | cut -d' ' -f2-); $(nghttpd --version 2>&1 | head -n 1)"
  echo "# h2load -n $REQUESTS -c $CONNS over TLS to /healthz (15-byte body); $NPROC CPUs;" \
    "workers $NPROC; $ROUNDS rounds, alternating; median req/s"
  echo "# mpkigw = access log on (production); mpkigw-nolog = log.access false"
  printf '%-8s %12s %14s %12s %8s %12s\n' mode mpkigw mpkigw-nolog nghttpd ratio ratio-nolog
  for m in 10 1; do
    a=$(median ${RUNS["mpkigw $m"]})
    b=$(median ${RUNS["mpkigw-nolog $m"]})
    n=$(median ${RUNS["nghttpd $m"]})
    r=$(awk -v a="$a" -v n="$n" 'BEGIN { printf "%.2f", (n > 0 ? a / n : 0) }')
    rb=$(awk -v a="$b" -v n="$n" 'BEGIN { printf "%.2f", (n > 0 ? a / n : 0) }')
    printf '%-8s %12.0f %14.0f %12.0f %8s %12s\n' "-m $m" "$a" "$b" "$n" "$r" "$rb"
  done
  for m in 10 1; do
    echo "# runs -m $m: mpkigw:${RUNS["mpkigw $m"]}; mpkigw-nolog:${RUNS["mpkigw-nolog $m"]}; nghttpd:${RUNS["nghttpd $m"]}"
  done
} >"$RESULTS"

echo
grep -v '^# runs' "$RESULTS"
echo
for m in 10 1; do
  a=$(median ${RUNS["mpkigw $m"]})
  n=$(median ${RUNS["nghttpd $m"]})
  r=$(awk -v a="$a" -v n="$n" 'BEGIN { printf "%.2f", (n > 0 ? a / n : 0) }')
  echo "-m $m: mpkigw/nghttpd ratio $r (goal >= 1.0)"
  echo "ratio_m$m $r" >>"$RESULTS"
done
[ "$FAILED_RUNS" -gt 0 ] && echo "warning: $FAILED_RUNS run(s) had failed requests (counted as 0 req/s)"
echo "(${elapsed}s; figures in $RESULTS)"

stop_server bench-log
stop_server bench-nolog
kill "$NGHTTPD_PID" 2>/dev/null
wait "$NGHTTPD_PID" 2>/dev/null
GW_HELPERS=()  # ended above; nothing for the exit trap to kill

# ---- crypto: pkcs11/ and the verifier beside `openssl speed` ------------------
# One sign-in costs a SIM signature, a verification and a token signature;
# these lines show how close our paths come to raw OpenSSL in the same run.
echo
echo "crypto (same run; ratios against openssl speed; verify: bare = signature only,"
echo "cold = with chain + CRL + identity and no cache, cached = the hot path):"
speed=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ { print $(NF-1), $NF }')
ossl_sign=$(echo "$speed" | awk '{ print $1 }')
ossl_verify=$(echo "$speed" | awk '{ print $2 }')
crypto_line() { # label ops reference
  awk -v l="$1" -v a="$2" -v r="$3" 'BEGIN { printf "  %-44s %10.0f/s  openssl %10.0f/s  ratio %.2f\n", l, a, r, (r > 0 ? a / r : 0) }' | tee -a "$RESULTS"
}
if [ -x "$GW_ROOT/$BUILD/tests/bench/p11_bench" ]; then
  while read -r _ alg _ threads ops; do
    crypto_line "pkcs11 $alg sign ${threads}" "${ops#ops_per_s=}" "$ossl_sign"
  done < <(P11_BENCH_SECONDS=2 "$GW_ROOT/$BUILD/tests/bench/p11_bench")
fi
if [ -x "$GW_ROOT/$BUILD/tests/bench/verify_bench" ]; then
  while read -r _ alg mode ops; do
    # bare = the signature alone; cold = signature + chain, CRL and identity
    # with the cache off; cached = the hot path (one signature check)
    crypto_line "verify $alg $mode" "${ops#ops_per_s=}" "$ossl_verify"
  done < <("$GW_ROOT/$BUILD/tests/bench/verify_bench")
fi
if [ -x "$GW_ROOT/$BUILD/tests/bench/jose_bench" ]; then
  # JWT signatures through the gateway's PKCS#11 token and verifications,
  # beside openssl speed (ECDSA P-256 as above, RSA 2048 measured here).
  rsa=$(openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $(NF-1), $NF }')
  while read -r _ op alg ops; do
    case "$op $alg" in
    "sign ES256") ref=$ossl_sign ;;
    "verify ES256") ref=$ossl_verify ;;
    "sign RS256") ref=${rsa% *} ;;
    *) ref=${rsa#* } ;;
    esac
    crypto_line "jwt $op $alg" "${ops#ops_per_s=}" "$ref"
  done < <(cd "$GW_ROOT" && BUILD=$BUILD "$GW_ROOT/$BUILD/tests/bench/jose_bench")
fi
if [ -x "$GW_ROOT/$BUILD/tests/bench/op_bench" ] && [ -x "$GW_ROOT/$BUILD/mssp-mock" ]; then
  # Signature round trips through the Omantel and Ooredoo adapters and the
  # mocks (instant-approve SIMs) beside the raw SoftHSM signing rate.
  echo
  echo "operators (same run):"
  (cd "$GW_ROOT" && BUILD=$BUILD "$BUILD/tests/bench/op_bench") 2>&1 | sed 's/^/  /' | tee -a "$RESULTS"
fi
if [ -x "$GW_ROOT/$BUILD/tests/bench/ciba_bench" ] && [ -x "$GW_ROOT/$BUILD/mssp-mock" ]; then
  # Complete CIBA sign-ins through the real mpkigw and both mocks
  # (instant-approve SIMs) beside the crypto bound of the same run, and the
  # memory one pending sign-in costs with 10,000 waiting.
  echo
  echo "CIBA sign-ins (same run):"
  (cd "$GW_ROOT" && BUILD=$BUILD "$BUILD/tests/bench/ciba_bench") 2>&1 | sed 's/^/  /' | tee -a "$RESULTS"
fi
exit 0

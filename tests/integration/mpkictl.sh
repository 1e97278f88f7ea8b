#!/usr/bin/env bash
# mpkictl.sh — the admin CLI end to end, with the real build/mpkictl on a
# private var-like directory (its own SoftHSM token directory, PKI
# directory, PIN file and store) named by a generated configuration:
# ca init, gateway-key init, provisioning one SIM and a CSV (with a bad
# row), list and show, the certificates checked by `openssl verify`,
# revocation seen by a CRL and by `openssl ocsp -index` as the responder,
# `cert check` (the gateway's own verifier) agreeing with both and failing
# closed on a missing or stale CRL and on a dead responder,
# the relying parties (client add, list, remove: the secret generated and
# shown once, only its SHA-256 stored, the demo's short secrets, refusals),
# --help for every command, errors that name what is wrong, a wrong PIN.
source "$(dirname "$0")/lib.sh"

MPKICTL=${MPKICTL:-$GW_ROOT/$BUILD/mpkictl}
if [ ! -x "$MPKICTL" ]; then
  not_ok "setup" "$MPKICTL is not built (make -j2 all)"
  finish
fi

D=$GW_TMP/var # what var/ is for the demo
CONF=$D/mpkigw.conf
PKI=$D/pki
mkdir -p "$D/tokens"
chmod 700 "$D/tokens"
cat >"$D/softhsm2.conf" <<EOF
directories.tokendir = $D/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
write_config "$CONF"
# The PKI keys (lib.sh writes the server's); paths relative to $D.
cat >>"$CONF" <<'EOF'
pkcs11: {
  module = "/usr/lib/softhsm/libsofthsm2.so";
  softhsm_conf = "softhsm2.conf";
};
pki: {
  dir = "pki";
  ca_token = "mpki-ca";
  pin_file = "token-pins";
  crl = "pki/crl.pem";
  crl_days = 7;
  ocsp_url = "http://127.0.0.1:9/ocsp";
};
gateway_keys: {
  token = "mpki-gateway";
  dir = "keys";
};
EOF

# mpkictl with the test's config, bounded to a minute. Output in $OUT,
# stderr in $ERR, status in $RC (124: it hung); every stderr is kept for
# the sanitizer check at the end.
N=0
ctl() {
  N=$((N + 1))
  OUT=$(timeout $((60 * GW_SLOW)) "$MPKICTL" --config "$CONF" "$@" \
    2>"$GW_TMP/ctl.$N.err")
  RC=$?
  ERR=$(cat "$GW_TMP/ctl.$N.err")
}

# expect NAME RC [PATTERN_IN_OUTPUT_OR_ERR]
expect() {
  local name=$1 want=$2 pat=${3:-}
  if [ "$RC" != "$want" ]; then
    not_ok "$name" "exit status $RC, expected $want; stderr: ${ERR:0:300}"
    return 1
  fi
  if [ -n "$pat" ] && [[ "$OUT$ERR" != *"$pat"* ]]; then
    not_ok "$name" "no '$pat' in: ${OUT:0:200} ${ERR:0:300}"
    return 1
  fi
  ok "$name"
}

# The private tokens must be the only ones this test touches, whatever the
# environment says: mpkictl sets SOFTHSM2_CONF from the configuration.
export SOFTHSM2_CONF=/nonexistent/softhsm2.conf
hsm() { SOFTHSM2_CONF=$D/softhsm2.conf softhsm2-util "$@"; }
# has_token LABEL: the private token directory holds a token LABEL. (The
# listing is read whole: grep -q would close the pipe early, and pipefail
# would turn softhsm2-util's SIGPIPE into a false "no".)
has_token() {
  local slots
  slots=$(hsm --show-slots 2>&1)
  grep -qF "Label:            $1 " <<<"$slots"
}

# ---- ca init ------------------------------------------------------------

ctl ca init
expect "ca init" 0 "CA created in $PKI"
for f in root-ca.pem issuing-ca.pem ocsp.pem ocsp.key index.txt \
  index.txt.attr crlnumber crl.pem; do
  [ -s "$PKI/$f" ] || [ "$f" = index.txt ] || not_ok "ca init writes $f" "missing"
done
check "root CA is self-signed, the issuing CA chains to it" \
  openssl verify -CAfile "$PKI/root-ca.pem" "$PKI/issuing-ca.pem"
check "the OCSP signer chains to the root" \
  openssl verify -CAfile "$PKI/root-ca.pem" -untrusted "$PKI/issuing-ca.pem" \
  -purpose ocsphelper "$PKI/ocsp.pem"
subj=$(openssl x509 -in "$PKI/root-ca.pem" -noout -subject -nameopt utf8,sep_comma_plus 2>&1)
if [[ $subj == *"CN=Oman National PKI Root — demo"* ]]; then
  ok "root subject names the demo root"
else
  not_ok "root subject names the demo root" "$subj"
fi
ext=$(openssl x509 -in "$PKI/ocsp.pem" -noout -text)
if [[ $ext == *"OCSP Signing"* && $ext == *"OCSP No Check"* ]]; then
  ok "OCSP signer has EKU OCSPSigning and id-pkix-ocsp-nocheck"
else
  not_ok "OCSP signer has EKU OCSPSigning and id-pkix-ocsp-nocheck" "${ext:0:300}"
fi
mode=$(stat -c %a "$D/token-pins" 2>/dev/null)
[ "$mode" = 600 ] && ok "PIN file created with mode 0600" ||
  not_ok "PIN file created with mode 0600" "mode $mode"
mode=$(stat -c %a "$PKI/ocsp.key" 2>/dev/null)
[ "$mode" = 600 ] && ok "ocsp.key has mode 0600" || not_ok "ocsp.key has mode 0600" "mode $mode"
if has_token mpki-ca; then
  ok "the CA keys are on the token mpki-ca"
else
  not_ok "the CA keys are on the token mpki-ca" "$(hsm --show-slots 2>&1 | tail -n 3)"
fi
ctl ca init
expect "ca init twice is refused" 1 "a CA exists already"

# ---- gateway-key init -----------------------------------------------------

ctl gateway-key init
expect "gateway-key init" 0 "ES256"
es_kid=$(printf '%s\n' "$OUT" | sed -n 's/.*ES256 .* kid \([A-Za-z0-9_-]*\) .*/\1/p')
want=$(openssl pkey -pubin -in "$D/keys/es256.pem" -outform DER 2>/dev/null |
  openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
if [ -n "$es_kid" ] && [ "$es_kid" = "$want" ]; then
  ok "ES256 kid is base64url(SHA-256(public key DER))"
else
  not_ok "ES256 kid is base64url(SHA-256(public key DER))" "printed '$es_kid', openssl says '$want'"
fi
if openssl pkey -pubin -in "$D/keys/rs256.pem" -noout -text 2>&1 | grep -q 'Public-Key: (2048 bit)'; then
  ok "RS256 public key is RSA-2048"
else
  not_ok "RS256 public key is RSA-2048" "$(openssl pkey -pubin -in "$D/keys/rs256.pem" -noout -text 2>&1 | head -n 2)"
fi
ctl gateway-key init
expect "gateway-key init twice is refused" 1 "exists already"
ctl gateway-key list
expect "gateway-key list: the two keys of init sign" 0 "$es_kid  es256       signing"
ctl gateway-key rotate --alg ES256
expect "gateway-key rotate --alg ES256" 0 "es256-1"
ctl gateway-key list
expect "the new key is published, not signing yet" 0 "es256-1     published"
expect "the old key still signs" 0 "$es_kid  es256       signing"
if [ -s "$D/keys/es256-1.pem" ] && grep -q "^ES256 .* es256 es256.pem 0 0 [0-9]" "$D/keys/kids"; then
  ok "rotate wrote es256-1.pem and a retirement time for es256"
else
  not_ok "rotate wrote es256-1.pem and a retirement time for es256" "$(cat "$D/keys/kids")"
fi
ctl gateway-key rotate --alg HS256
expect "gateway-key rotate --alg HS256 is refused" 2 "--alg"

# ---- provisioning ---------------------------------------------------------

ctl sim provision --msisdn +96899000001 --civil-id 10000001 \
  --name "Salim Al-Harthy" --operator omantel --pin 1234 --puk 12345678
expect "sim provision one SIM" 0 "provisioned +96899000001 (omantel)"
ctl sim provision --msisdn +96899000001 --civil-id 10000001 \
  --name "Salim Al-Harthy" --operator omantel
expect "provisioning it again is refused" 1 "already provisioned"

cat >"$D/bulk.csv" <<'EOF'
msisdn,civil_id,name,operator,pin,puk,behaviour
+96899000002,10000002,Aisha Al-Balushi,omantel,1234,12345678,refuse
+96895000001,10000011,Fatma Al-Hinai,Ooredoo,,,approve:1000
+9689500000X,10000012,Bad Row,ooredoo,1234,12345678,
+96895000009,10000002,"Al-Balushi, Aisha",ooredoo,1234,12345678,handset
EOF
ctl sim provision --csv "$D/bulk.csv"
expect "CSV with a bad row exits 1" 1 "$D/bulk.csv:4: msisdn:"
expect "the bad row's reason names the MSISDN rule" 1 "is not +968 followed by 8 digits"
expect "the summary counts the rows" 1 "provisioned 3 of 4 SIMs"
ctl sim list
for m in +96899000002 +96895000001 +96895000009; do
  [[ $OUT == *"$m"* ]] || not_ok "the good rows were provisioned" "$m missing from: $OUT"
done
ok "the good rows around the bad one were provisioned"
ctl sim list --civil-id 10000002
if [ "$(printf '%s\n' "$OUT" | grep -c '^+968')" = 2 ] &&
  [[ $OUT == *omantel* && $OUT == *ooredoo* ]]; then
  ok "one civil number holds SIMs at both operators"
else
  not_ok "one civil number holds SIMs at both operators" "$OUT"
fi

# The demo set, already-provisioned rows skipped; a few seconds at most.
t0=$(now_ms)
ctl sim provision --csv "$GW_ROOT/configs/demo-subscribers.csv" --skip-existing
dt=$(($(now_ms) - t0))
# bulk.csv holds two of them, and +96899000001 was provisioned alone.
expect "demo CSV with --skip-existing" 0 "provisioned 8 of 11 SIMs"
if [ "$dt" -lt $((10000 * GW_SLOW)) ]; then
  ok "the demo CSV takes ${dt} ms (under $((10 * GW_SLOW)) s)"
else
  not_ok "the demo SIMs provision fast" "${dt} ms"
fi
ctl sim list
expect "sim list" 0 "12 SIMs: 12 active, 0 revoked"
if has_token +96899000099; then
  ok "one token per SIM, labelled with its MSISDN"
else
  not_ok "one token per SIM, labelled with its MSISDN" "no token +96899000099"
fi

# ---- certificates -----------------------------------------------------------

ctl sim show --msisdn +96899000001
expect "sim show" 0 "serialNumber=PNOOM-10000001"
expect "sim show names the SAN" 0 "URI:tel:+96899000001"
for m in +96899000001 +96899000004 +96899000099; do
  ctl sim show --msisdn "$m" --cert
  printf '%s\n' "$OUT" >"$D/$m.pem"
done
check "sim show --cert | openssl verify -CAfile root -untrusted issuing" \
  openssl verify -CAfile "$PKI/root-ca.pem" -untrusted "$PKI/issuing-ca.pem" \
  "$D/+96899000001.pem"
txt=$(openssl x509 -in "$D/+96899000001.pem" -noout -text)
if [[ $txt == *"Subject: C = OM, serialNumber = PNOOM-10000001, CN = Salim Al-Harthy"* &&
  $txt == *"URI:tel:+96899000001"* && $txt == *"Digital Signature"* &&
  $txt == *"OCSP - URI:http://127.0.0.1:9/ocsp"* ]]; then
  ok "SIM certificate: subject, SAN tel: URI, key usage, AIA from pki.ocsp_url"
else
  not_ok "SIM certificate: subject, SAN tel: URI, key usage, AIA" "${txt:0:400}"
fi
cn=$(openssl x509 -in "$D/+96899000099.pem" -noout -subject -nameopt utf8,sep_comma_plus)
if [[ $cn == *"CN=سالم بن راشد الشكيلي"* ]]; then
  ok "an Arabic name survives as UTF-8"
else
  not_ok "an Arabic name survives as UTF-8" "$cn"
fi

# ---- revocation -------------------------------------------------------------

ctl cert revoke --msisdn +96899000004 --reason keyCompromise
expect "cert revoke" 0 "revoked +96899000004"
grep -q $'^R\t.*,keyCompromise\t' "$PKI/index.txt" &&
  ok "index.txt has the R line with the reason" ||
  not_ok "index.txt has the R line with the reason" "$(grep '^R' "$PKI/index.txt")"
ctl cert revoke --msisdn +96899000004
expect "revoking again changes nothing" 0 "already revoked"
ctl sim show --msisdn +96899000004
expect "the registry says revoked" 0 "revoked"
ctl crl publish
expect "crl publish" 0 "with 1 revoked certificate"
num=$(openssl crl -in "$PKI/crl.pem" -noout -crlnumber 2>&1)
ctl crl publish
num2=$(openssl crl -in "$PKI/crl.pem" -noout -crlnumber 2>&1)
if [ "${num#crlNumber=}" != "${num2#crlNumber=}" ] &&
  [ "$((16#${num2#crlNumber=0x}))" -gt "$((16#${num#crlNumber=0x}))" ]; then
  ok "the CRL number increases ($num, $num2)"
else
  not_ok "the CRL number increases" "$num then $num2"
fi
check "CRL verifies against the issuing CA" \
  openssl crl -in "$PKI/crl.pem" -CAfile "$PKI/issuing-ca.pem" -noout
check "openssl verify -crl_check passes a good certificate" \
  openssl verify -crl_check -CRLfile "$PKI/crl.pem" -CAfile "$PKI/root-ca.pem" \
  -untrusted "$PKI/issuing-ca.pem" "$D/+96899000001.pem"
out=$(openssl verify -crl_check -CRLfile "$PKI/crl.pem" -CAfile "$PKI/root-ca.pem" \
  -untrusted "$PKI/issuing-ca.pem" "$D/+96899000004.pem" 2>&1)
if [ $? -ne 0 ] && [[ $out == *"certificate revoked"* ]]; then
  ok "openssl verify -crl_check fails the revoked certificate"
else
  not_ok "openssl verify -crl_check fails the revoked certificate" "$out"
fi

# ---- the gateway's verifier: cert check ---------------------------------------
#
# mpkictl cert check runs gw_verify as the gateway would. The configuration's
# pki.ocsp_url (port 9) has no responder: --no-ocsp where only the CRL is meant.

ctl cert check --msisdn +96899000001 --no-ocsp
expect "cert check with the CRL: good for an active SIM" 0 "+96899000001: good"
crl_good=$RC
expect "cert check prints the identity it extracted" 0 \
  'civil id 10000001, msisdn +96899000001, name "Salim Al-Harthy"'
ctl cert check --msisdn +96899000004 --no-ocsp
expect "cert check with the CRL: revoked (ETSI 501) for the revoked SIM" 1 \
  "+96899000004: revoked (ETSI 501): serial"
crl_revoked=$RC
ctl cert check --msisdn +96899000099 --no-ocsp
expect "cert check: an Arabic name comes out as UTF-8" 0 'name "سالم بن راشد الشكيلي"'
ctl cert check --cert "$D/+96899000004.pem" --no-ocsp
expect "cert check --cert FILE (PEM) says revoked too" 1 "$D/+96899000004.pem: revoked (ETSI 501)"
openssl x509 -in "$D/+96899000001.pem" -outform DER -out "$D/+96899000001.der"
ctl cert check --cert "$D/+96899000001.der" --no-ocsp
expect "cert check --cert FILE (DER)" 0 "$D/+96899000001.der: good"
ctl cert check --cert "$PKI/issuing-ca.pem" --no-ocsp
expect "cert check refuses a CA certificate (key_usage, ETSI 425)" 1 "key_usage (ETSI 425)"
printf 'not a certificate\n' >"$D/junk.pem"
ctl cert check --cert "$D/junk.pem" --no-ocsp
expect "cert check: garbage is bad_cert (ETSI 425)" 1 "bad_cert (ETSI 425)"
ctl cert check --msisdn +96899000001 --no-crl --no-ocsp
expect "cert check --no-crl --no-ocsp says revocation was not checked" 0 "revocation: not checked"

# Fail closed on the CRL: missing, then stale.
mv "$PKI/crl.pem" "$D/crl.pem.good"
ctl cert check --msisdn +96899000001 --no-ocsp
expect "cert check without the CRL file: crl_unavailable (ETSI 423)" 1 \
  "+96899000001: crl_unavailable (ETSI 423)"
# mpkictl cannot write a stale CRL (pki.crl_days is 1..365), but openssl ca
# can, signing with the issuing CA's key on its token through libp11's
# PKCS#11 engine: thisUpdate 8 days ago, nextUpdate yesterday.
engine=
for f in /usr/lib/*/engines-3/pkcs11.so; do
  [ -e "$f" ] && engine=$f && break
done
if [ -z "$engine" ]; then
  skip "no PKCS#11 engine for openssl (libengine-pkcs11-openssl): no stale CRL to test crl_expired with"
else
  mkdir -p "$D/stale"
  cp "$PKI/index.txt" "$D/stale/index.txt"
  echo 1000 >"$D/stale/crlnumber"
  cat >"$D/stale/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engines
[engines]
pkcs11 = pkcs11_engine
[pkcs11_engine]
engine_id = pkcs11
MODULE_PATH = /usr/lib/softhsm/libsofthsm2.so
init = 0
[ca]
default_ca = stale
[stale]
database = $D/stale/index.txt
crlnumber = $D/stale/crlnumber
default_md = sha256
EOF
  ca_pin=$(sed -n 's/^ca\.pin *= *//p' "$D/token-pins")
  out=$(SOFTHSM2_CONF=$D/softhsm2.conf OPENSSL_CONF=$D/stale/openssl.cnf \
    timeout 30 openssl ca -config "$D/stale/openssl.cnf" -gencrl \
    -engine pkcs11 -keyform engine -passin "pass:$ca_pin" \
    -keyfile "pkcs11:token=mpki-ca;object=issuing-ca;type=private" \
    -cert "$PKI/issuing-ca.pem" \
    -crl_lastupdate "$(date -u -d '-8 days' +%Y%m%d%H%M%SZ)" \
    -crl_nextupdate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" \
    -out "$PKI/crl.pem" 2>&1)
  rc=$?
  if [ "$rc" != 0 ] ||
    ! openssl crl -in "$PKI/crl.pem" -CAfile "$PKI/issuing-ca.pem" -noout >/dev/null 2>&1; then
    skip "openssl ca with the PKCS#11 engine could not write a stale CRL: $(printf '%s\n' "$out" | tail -n 1)"
  else
    out=$(openssl verify -crl_check -CRLfile "$PKI/crl.pem" -CAfile "$PKI/root-ca.pem" \
      -untrusted "$PKI/issuing-ca.pem" "$D/+96899000001.pem" 2>&1)
    if [[ $out == *"CRL has expired"* ]]; then
      ok "the stale CRL is signed by the issuing CA and past nextUpdate (openssl verify)"
    else
      not_ok "the stale CRL is signed by the issuing CA and past nextUpdate" "$out"
    fi
    ctl cert check --msisdn +96899000001 --no-ocsp
    expect "cert check with a stale CRL: crl_expired (ETSI 424)" 1 \
      "+96899000001: crl_expired (ETSI 424)"
  fi
fi
mv "$D/crl.pem.good" "$PKI/crl.pem"
ctl cert check --msisdn +96899000001 --no-ocsp
expect "cert check is good again with the fresh CRL" 0 "+96899000001: good"

# `openssl ocsp -index` as the responder on a free port: two requests from
# the openssl client, two from the gateway's verifier (no cache: each
# mpkictl asks once). The verdicts must agree.
port=$(free_port)
openssl ocsp -index "$PKI/index.txt" -CA "$PKI/issuing-ca.pem" \
  -rsigner "$PKI/ocsp.pem" -rkey "$PKI/ocsp.key" -port "$port" -nrequest 4 \
  >"$GW_TMP/ocsp.log" 2>&1 &
ocsp_pid=$!
track_pid "$ocsp_pid"
deadline=$(($(now_ms) + 5000))
until grep -q 'waiting for OCSP client' "$GW_TMP/ocsp.log" 2>/dev/null ||
  [ "$(now_ms)" -gt "$deadline" ]; do
  sleep 0.05
done
ocsp_query() {
  timeout 10 openssl ocsp -issuer "$PKI/issuing-ca.pem" -cert "$1" \
    -url "http://127.0.0.1:$port" -CAfile "$PKI/root-ca.pem" \
    -verify_other "$PKI/issuing-ca.pem" -timeout 5 2>&1
}
# verdict OUTPUT: what openssl ocsp said, good, revoked or none.
verdict() {
  case $1 in
  *": good"*) echo good ;;
  *": revoked"*) echo revoked ;;
  *) echo none ;;
  esac
}
out=$(ocsp_query "$D/+96899000001.pem")
v1=$(verdict "$out")
if [ "$v1" = good ] && [[ $out == *"Response verify OK"* ]]; then
  ok "openssl ocsp responder: good for +96899000001"
else
  not_ok "openssl ocsp responder: good for +96899000001" "$out $(cat "$GW_TMP/ocsp.log")"
fi
out=$(ocsp_query "$D/+96899000004.pem")
v4=$(verdict "$out")
if [ "$v4" = revoked ] && [[ $out == *"Reason: keyCompromise"* ]]; then
  ok "openssl ocsp responder: revoked (keyCompromise) for +96899000004"
else
  not_ok "openssl ocsp responder: revoked for +96899000004" "$out $(cat "$GW_TMP/ocsp.log")"
fi
ctl cert check --msisdn +96899000001 --no-crl --ocsp-url "http://127.0.0.1:$port"
expect "cert check by OCSP alone: good for +96899000001" 0 "+96899000001: good"
g1=$([ "$RC" = 0 ] && echo good || echo "${OUT%%$'\n'*}")
ctl cert check --msisdn +96899000004 --no-crl --ocsp-url "http://127.0.0.1:$port"
expect "cert check by OCSP alone: revoked (ETSI 501) for +96899000004" 1 \
  "+96899000004: revoked (ETSI 501)"
g4=$([[ $OUT == *": revoked (ETSI 501)"* ]] && echo revoked || echo "${OUT%%$'\n'*}")
if [ "$v1/$v4" = good/revoked ] && [ "$g1/$g4" = good/revoked ]; then
  ok "the gateway's verifier agrees with openssl ocsp (good, revoked)"
else
  not_ok "the gateway's verifier agrees with openssl ocsp" "openssl: $v1/$v4, gw_verify: $g1/$g4"
fi
if [ "$crl_good/$crl_revoked" = 0/1 ] && [ "$g1/$g4" = good/revoked ]; then
  ok "the CRL and OCSP give the same verdicts"
else
  not_ok "the CRL and OCSP give the same verdicts" "CRL exit $crl_good/$crl_revoked, OCSP $g1/$g4"
fi
# The responder exits after its 4 requests; bounded, then stopped.
deadline=$(($(now_ms) + 5000))
while kill -0 "$ocsp_pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
  sleep 0.05
done
if kill -0 "$ocsp_pid" 2>/dev/null; then
  diag "openssl ocsp still running after its 4 requests: stopped"
  kill "$ocsp_pid" 2>/dev/null
fi
wait "$ocsp_pid" 2>/dev/null

# With the responder gone, OCSP fails closed, promptly.
t0=$(now_ms)
ctl cert check --msisdn +96899000001 --no-crl --ocsp-url "http://127.0.0.1:$port"
dt=$(($(now_ms) - t0))
expect "cert check with the responder down: ocsp_unavailable (ETSI 423)" 1 \
  "+96899000001: ocsp_unavailable (ETSI 423)"
if [ "$dt" -lt $((10000 * GW_SLOW)) ]; then
  ok "a dead responder is reported in ${dt} ms"
else
  not_ok "a dead responder is reported promptly" "${dt} ms"
fi

# Usage and other errors.
ctl cert check
expect "cert check without --msisdn or --cert" 2 "missing --msisdn"
ctl cert check --msisdn +96899000001 --cert "$D/+96899000001.pem"
expect "cert check with both --msisdn and --cert" 2 "not both"
ctl cert check --msisdn +96899000001 --ocsp-url ftp://127.0.0.1/
expect "cert check refuses a non-http OCSP URL" 2 "is not an http:// URL"
ctl cert check --msisdn +96899000001 --ocsp-url http://127.0.0.1:1/ --no-ocsp
expect "cert check: --ocsp-url with --no-ocsp" 2 "contradict"
ctl cert check --msisdn +96891234567 --no-ocsp
expect "cert check of an unknown SIM names it" 1 "+96891234567 is not in the subscriber registry"
ctl cert check --cert "$D/none.pem"
expect "cert check of a missing file names it" 1 "$D/none.pem"

# ---- relying parties: client add / list / remove ------------------------------

DB=$D/mpkigw.db
# stored_hash ID: the secret_sha256 column of client ID, lower-case hex.
stored_hash() {
  "$GW_PY" - "$DB" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
row = db.execute("SELECT hex(secret_sha256) FROM clients WHERE client_id = ?",
                 (sys.argv[2],)).fetchone()
print(row[0].lower() if row else "none")
PY
}
sha256_hex() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

ctl client list
expect "client list on an empty registry" 0 "no client in the registry"
ctl client add --id demo-rp --name "Demo RP" --scope "openid profile" \
  --resource https://127.0.0.1:8443/licensing
expect "client add generates a secret" 0 "added client demo-rp (Demo RP)"
secret=$(printf '%s\n' "$OUT" | sed -n 's/^client_secret: //p')
if [[ $secret =~ ^[A-Za-z0-9_-]{43}$ ]]; then
  ok "the generated secret is 43 base64url characters, printed once"
else
  not_ok "the generated secret is 43 base64url characters" "'$secret'"
fi
hash=$(stored_hash demo-rp)
if [ -n "$secret" ] && [ "$hash" = "$(sha256_hex "$secret")" ]; then
  ok "the store keeps the SHA-256 of the secret"
else
  not_ok "the store keeps the SHA-256 of the secret" "stored $hash"
fi
ctl client add --id licensing-rs --resource-server \
  --resource https://127.0.0.1:8443/licensing \
  --secret "rs-secret-of-thirty-two-bytes-or-more"
expect "client add of a resource server with a given secret" 0 "grants none"
if [[ $OUT == *client_secret:* ]]; then
  not_ok "a given secret is not printed" "$OUT"
else
  ok "a given secret is not printed"
fi
[ "$(stored_hash licensing-rs)" = "$(sha256_hex rs-secret-of-thirty-two-bytes-or-more)" ] &&
  ok "the given secret's SHA-256 is stored" ||
  not_ok "the given secret's SHA-256 is stored" "$(stored_hash licensing-rs)"
ctl client list
expect "client list shows the clients" 0 "2 clients"
if [[ $OUT == *"demo-rp "*"basic,post"*"ciba"*"poll"*"ES256"*"Demo RP"* &&
  $OUT == *"licensing-rs "*"yes"* ]]; then
  ok "client list: id, methods, grants, mode, algorithm, resource server, name"
else
  not_ok "client list: the rows" "$OUT"
fi
list_out=$OUT
ctl client list --json
expect "client list --json" 0 '"client_id": "demo-rp"'
json_ok=$(printf '%s' "$OUT" | "$GW_PY" -c '
import json, sys
a = json.load(sys.stdin)
d = {c["client_id"]: c for c in a}
rp, rs = d["demo-rp"], d["licensing-rs"]
assert rp["scopes"] == ["openid", "profile"], rp
assert rp["grant_types"] == ["urn:openid:params:grant-type:ciba"], rp
assert rp["auth_methods"] == ["client_secret_basic", "client_secret_post"]
assert rp["resources"] == ["https://127.0.0.1:8443/licensing"]
assert rp["ciba_mode"] == "poll" and rp["id_token_alg"] == "ES256"
assert rs["resource_server"] is True and rs["grant_types"] == []
assert not any("secret" in k for c in a for k in c), "a secret field"
print("yes")' 2>&1)
[ "$json_ok" = yes ] && ok "client list --json has every field but the secret" ||
  not_ok "client list --json has every field but the secret" "$json_ok"
if [[ "$list_out$OUT" == *"$secret"* || "${list_out,,}${OUT,,}" == *"$hash"* ]]; then
  not_ok "client list never prints a secret or its hash" "found"
else
  ok "client list never prints a secret or its hash"
fi

ctl client add --id demo-rp
expect "client add refuses an existing id" 1 "client demo-rp exists already"
[ "$(stored_hash demo-rp)" = "$hash" ] && ok "a refused add changes nothing" ||
  not_ok "a refused add changes nothing" "hash changed"
ctl client add --id demo-rp --name "Demo RP" --replace \
  --secret "a-new-secret-of-thirty-two-bytes-or-more" --grant ciba,refresh_token
expect "client add --replace" 0 "replaced client demo-rp"
[ "$(stored_hash demo-rp)" = "$(sha256_hex a-new-secret-of-thirty-two-bytes-or-more)" ] &&
  ok "--replace stores the new secret's hash" ||
  not_ok "--replace stores the new secret's hash" "$(stored_hash demo-rp)"
ctl client add --id short-rp --secret "short-secret"
expect "a secret under 32 bytes is refused" 2 "--secret: 12 bytes, at least 32"
# The demo configuration allows it.
cp "$CONF" "$D/demo.conf"
printf 'oidc: {\n  demo = true;\n};\n' >>"$D/demo.conf"
N=$((N + 1))
OUT=$(timeout $((60 * GW_SLOW)) "$MPKICTL" --config "$D/demo.conf" client add \
  --id short-rp --secret "short-secret" 2>"$GW_TMP/ctl.$N.err")
RC=$?
ERR=$(cat "$GW_TMP/ctl.$N.err")
expect "a short secret is allowed with oidc.demo = true" 0 "added client short-rp"
ctl client add --id "bad id"
expect "client add refuses a bad id" 2 "--id: \"bad id\" is not 1 to 64 of"
ctl client add --id x --grant password
expect "client add refuses an unknown grant" 2 "--grant: \"password\" is not one of"
ctl client add --id x --auth basic,jwt
expect "client add refuses an unknown method" 2 "--auth: \"jwt\" is not one of basic, post"
ctl client add --id x --resource http://rs.example.om/api
expect "client add refuses plain http off loopback" 2 "http:// only to 127.0.0.1 or localhost"
ctl client add --id x --ciba-mode ping
expect "ping mode needs an endpoint" 2 "ping mode needs an https:// endpoint"
ctl client add --id x --grant authorization_code
expect "a code client needs a redirect URI" 2 "redirect_uris: the authorization_code grant needs"
ctl client add --name x
expect "client add without --id" 2 "missing --id"
ctl client add --id x --frob
expect "client add: an unknown option is named" 2 "unknown option --frob"
ctl client list
[[ $OUT != *" x "* && $OUT == *"3 clients"* ]] && ok "refused adds wrote nothing" ||
  not_ok "refused adds wrote nothing" "$OUT"

ctl client remove --id licensing-rs
expect "client remove" 0 "removed client licensing-rs"
ctl client remove --id licensing-rs
expect "client remove of a missing client" 1 "no client licensing-rs in the registry"
ctl client remove
expect "client remove without --id" 2 "missing --id"
ctl client list
[[ $OUT != *licensing-rs* && $OUT == *"2 clients"* ]] && ok "a removed client is gone" ||
  not_ok "a removed client is gone" "$OUT"
ctl client
expect "client without a subcommand lists them" 2 "mpkictl client add|list|remove"
if grep -rqs -e "-or-more" -e "short-secret" -e "$secret" "$GW_TMP"/ctl.*.err; then
  not_ok "client secrets never appear in messages" "$(grep -rs -e -or-more -e short-secret "$GW_TMP"/ctl.*.err | head -n 2)"
else
  ok "client secrets never appear in messages"
fi

# ---- help -------------------------------------------------------------------

for c in "ca init" "sim provision" "sim list" "sim show" "cert revoke" \
  "cert check" "crl publish" "gateway-key init" "client add" "client list" \
  "client remove" "help"; do
  # shellcheck disable=SC2086
  ctl $c --help
  if [ "$RC" = 0 ] && [[ $OUT == "Usage: mpkictl [--config FILE] $c"* ]]; then
    ok "mpkictl $c --help"
  else
    not_ok "mpkictl $c --help" "status $RC: ${OUT:0:120} ${ERR:0:120}"
  fi
done
ctl help cert revoke
expect "mpkictl help cert revoke" 0 "--reason R"
ctl --help
expect "mpkictl --help lists the commands" 0 "gateway-key init"

# ---- errors name what is wrong ------------------------------------------------

ctl sim provision --msisdn +96812 --civil-id 1 --name X --operator omantel
expect "a bad MSISDN is a usage error" 2 "--msisdn: \"+96812\" is not +968 followed by 8 digits"
ctl sim provision --msisdn +96891000001 --civil-id 1 --name X --operator zain
expect "a bad operator is named" 2 "--operator: \"zain\" is not omantel or ooredoo"
ctl sim provision --msisdn +96891000001 --civil-id 1 --name X
expect "a missing option is named" 2 "missing --operator"
ctl sim provision --msisdn +96891000001 --civil-id 1 --name X --operator omantel --pin 12
expect "a short PIN is refused, without echoing it" 2 "--pin: a SIM PIN is 4 to 8 digits"
ctl sim provision --csv "$D/bulk.csv" --msisdn +96891000001
expect "--csv with --msisdn is a usage error" 2 "cannot be combined"
ctl sim provision --csv "$D/none.csv"
expect "a missing CSV file is named" 1 "$D/none.csv"
ctl sim provision --frobnicate
expect "an unknown option is named" 2 "unknown option --frobnicate"
ctl sim show
expect "sim show without --msisdn" 2 "missing --msisdn"
ctl sim show --msisdn +96891234567
expect "an unknown SIM is named" 1 "+96891234567 is not in the subscriber registry"
ctl cert revoke --msisdn +96899000001 --reason whim
expect "an unknown reason lists the known ones" 2 "keyCompromise|"
ctl sim
expect "a missing subcommand lists them" 2 "mpkictl sim provision|list|show"
ctl frob
expect "an unknown command is named" 2 'unknown command "frob"'
out=$(timeout 60 "$MPKICTL" --config "$D/nope.conf" sim list 2>&1)
rc=$?
[ "$rc" = 2 ] && [[ $out == *"$D/nope.conf"* ]] && ok "a missing config file is named (status 2)" ||
  not_ok "a missing config file is named" "status $rc: $out"

# ---- PINs ---------------------------------------------------------------------

cp "$D/token-pins" "$D/token-pins.good"
sed -i 's/^ca.pin = .*/ca.pin = 00000000/' "$D/token-pins"
ctl crl publish
expect "a wrong CA PIN is reported as such" 1 "token \"mpki-ca\": wrong PIN"
ctl sim provision --msisdn +96891000042 --civil-id 42 --name "Wrong Pin" --operator omantel
expect "provisioning with a wrong CA PIN fails" 1 "wrong PIN"
if ! has_token +96899000001; then
  not_ok "a wrong CA PIN leaves no token behind" "the token check itself fails"
elif has_token +96891000042; then
  not_ok "a wrong CA PIN leaves no token behind" "token +96891000042 exists"
else
  ok "a wrong CA PIN leaves no token behind"
fi
if grep -rqs -- "00000000" "$GW_TMP"/ctl.*.err; then
  not_ok "PINs never appear in messages" "$(grep -rs -- 00000000 "$GW_TMP"/ctl.*.err | head -n 2)"
else
  ok "PINs never appear in messages"
fi
cp "$D/token-pins.good" "$D/token-pins"
chmod 644 "$D/token-pins"
ctl crl publish
expect "a PIN file others can read is refused" 1 "chmod 600"
chmod 600 "$D/token-pins"
ctl crl publish
expect "crl publish works again with the right PIN file" 0 "published CRL"

# ---- sanitizers -----------------------------------------------------------------

hit=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$GW_TMP"/ctl.*.err 2>/dev/null | head -n 1)
if [ -n "$hit" ]; then
  not_ok "mpkictl sanitizer clean" "$(grep -m 1 -E 'Sanitizer|runtime error' "$hit")"
  diag "$(head -n 30 "$hit")"
else
  ok "mpkictl sanitizer clean ($N runs)"
fi

finish

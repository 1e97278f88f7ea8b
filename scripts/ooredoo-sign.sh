#!/usr/bin/env bash
# scripts/ooredoo-sign.sh — ask the Ooredoo mock MSSP (make run) for a synch
# signature in the JSON rendering of ETSI TS 102 204, as any JSON client
# would, and check the answer with openssl alone:
#
#   scripts/ooredoo-sign.sh [MSISDN] [TEXT]      (default +96895000001)
#
# POSTs an MSS_SignatureReq (test AP http://demo_ap / demo, MessagingMode
# synch, DataToBeSigned text/plain, MSS_Format FiCom PKCS1) with curl to
# $OOREDOO_URL (http://127.0.0.1:9202/rest/service) and prints the answer.
# For status 500 it verifies that the X509Certificate chains to
# var/pki/root-ca.pem (openssl verify, issuing CA as intermediate) and that
# the SignatureValue (raw ECDSA r||s) verifies over SHA-256 of TEXT's UTF-8
# bytes (openssl dgst). Exit 0 when signed and verified; 1 for a fault or a
# failed check (the fault's SubCode is printed, e.g. _402 for +96895000002).
set -euo pipefail
cd "$(dirname "$0")/.."
MSISDN=${1:-+96895000001}
TEXT=${2:-Sign in to Demo RP}
URL=${OOREDOO_URL:-http://127.0.0.1:9202/rest/service}
PKI=${PKI:-var/pki}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A fresh AP_TransID each run: the MSSP refuses a repeated one (101).
tid="A$(date +%s%N)"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
python3 - "$MSISDN" "$TEXT" "$tid" "$now" >"$tmp/req.json" <<'PY'
import json, sys
msisdn, text, tid, now = sys.argv[1:5]
print(json.dumps({"MSS_SignatureReq": {
    "MajorVersion": "1", "MinorVersion": "2",
    "MessagingMode": "synch", "TimeOut": "80",
    "AP_Info": {"AP_ID": "http://demo_ap", "AP_PWD": "demo",
                "AP_TransID": tid, "Instant": now},
    "MSSP_Info": {"MSSP_ID": {"URI": "http://mssp.mock/ooredoo"}},
    "MobileUser": {"MSISDN": msisdn},
    "DataToBeSigned": {"MimeType": "text/plain", "Encoding": "UTF-8",
                       "Data": text},
    "MSS_Format": "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"}},
    ensure_ascii=False, indent=1))
PY
echo "POST $URL"
sed 's/^/  > /' "$tmp/req.json"
http=$(curl -s --max-time 120 -o "$tmp/resp.json" -w '%{http_code}' \
  -H 'Content-Type: application/json' --data-binary @"$tmp/req.json" "$URL") || {
  echo "ooredoo-sign: no answer from $URL (is make run up?)" >&2
  exit 1
}
echo "HTTP $http"
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), indent=1)[:3000])' \
  "$tmp/resp.json" | sed 's/^/  < /'

# Status code (or fault subcode), certificate and signature, as files.
python3 - "$tmp" <<'PY'
import base64, json, sys
d = sys.argv[1]
doc = json.load(open(d + "/resp.json"))
if "Fault" in doc:
    print("fault", doc["Fault"]["Code"]["SubCode"]["Value"],
          file=open(d + "/status", "w"))
    sys.exit(0)
m = doc["MSS_SignatureResp"]
print("status", m["Status"]["StatusCode"]["Value"], file=open(d + "/status", "w"))
p = m.get("MSS_Signature", {}).get("PKCS1")
if p:
    open(d + "/cert.der", "wb").write(base64.b64decode(p["X509Certificate"]))
    raw = base64.b64decode(p["SignatureValue"])
    def der_int(b):
        b = b.lstrip(b"\0") or b"\0"
        return b"\x02" + bytes([len(b) + (b[0] >> 7)]) + (b"\0" if b[0] & 0x80 else b"") + b
    n = len(raw) // 2
    body = der_int(raw[:n]) + der_int(raw[n:])
    open(d + "/sig.der", "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
read -r kind code <"$tmp/status"
if [ "$kind" = fault ]; then
  echo "fault: SubCode $code"
  exit 1
fi
echo "status: $code"
[ "$code" = 500 ] && [ -s "$tmp/cert.der" ] || exit 1
openssl x509 -inform DER -in "$tmp/cert.der" -out "$tmp/cert.pem"
openssl x509 -in "$tmp/cert.pem" -noout -subject | sed 's/^/certificate: /'
openssl verify -CAfile "$PKI/root-ca.pem" -untrusted "$PKI/issuing-ca.pem" "$tmp/cert.pem"
openssl x509 -in "$tmp/cert.pem" -pubkey -noout >"$tmp/pub.pem"
printf '%s' "$TEXT" >"$tmp/text"
openssl dgst -sha256 -verify "$tmp/pub.pem" -signature "$tmp/sig.der" "$tmp/text"

#!/usr/bin/env bash
# http_basic.sh — the gateway answers real HTTP/2 and HTTP/1.1 clients over
# TLS (curl, nghttp, h2load, openssl s_client) and h2c: /healthz, HEAD, 405,
# 404, security headers, /metrics as valid Prometheus text, SETTINGS,
# keep-alive, chunked bodies, TLS versions and ALPN.
source "$(dirname "$0")/lib.sh"

start_server basic server.h2c_listen=auto || finish

# fetch NAME CURL-ARGS...: runs curl, leaves the status in $code, the
# protocol in $ver, the body in $T/NAME.body and the headers in
# $T/NAME.hdr (lower-cased).
fetch() {
  local name=$1 out
  shift
  out=$(gw_curl -D "$GW_TMP/$name.hdr.raw" -o "$GW_TMP/$name.body" \
    -w '%{http_code} %{http_version}' "$@")
  code=${out% *}
  ver=${out#* }
  # Header names in lower case (HTTP/1.1 names are case-insensitive).
  tr -d '\r' <"$GW_TMP/$name.hdr.raw" | sed -E 's/^([^:]+):/\L\1:/' >"$GW_TMP/$name.hdr"
}

# has_header NAME HEADER [SUBSTRING]
has_header() {
  local line
  line=$(grep -m 1 "^$2:" "$GW_TMP/$1.hdr") || {
    echo "no $2 header"
    return 1
  }
  if [ -n "${3:-}" ] && [[ $line != *"$3"* ]]; then
    echo "$line (want '$3')"
    return 1
  fi
}

# json_error FILE CODE: the body is JSON with "error": CODE.
json_error() {
  "$GW_PY" - "$1" "$2" <<'PY'
import json, sys
body = open(sys.argv[1], "rb").read()
try:
    err = json.loads(body).get("error")
except Exception as e:
    sys.exit("body is not JSON (%s): %r" % (e, body[:120]))
if err != sys.argv[2]:
    sys.exit("error is %r, want %r: %r" % (err, sys.argv[2], body[:200]))
PY
}

# ---- /healthz -------------------------------------------------------------

for proto in http2 http1.1; do
  want_ver=2
  [ "$proto" = http1.1 ] && want_ver=1.1
  fetch "healthz-$proto" "--$proto" "$SRV_URL/healthz"
  body=$(cat "$GW_TMP/healthz-$proto.body")
  if [ "$code" = 200 ] && [ "$body" = '{"status":"ok"}' ]; then
    ok "$proto GET /healthz: 200 {\"status\":\"ok\"}"
  else
    not_ok "$proto GET /healthz: 200 {\"status\":\"ok\"}" "got $code '$body'"
  fi
  if [ "$ver" = "$want_ver" ]; then
    ok "$proto GET /healthz: spoken over HTTP/$want_ver"
  else
    not_ok "$proto GET /healthz: spoken over HTTP/$want_ver" "curl says HTTP/$ver"
  fi
  check "$proto: x-content-type-options nosniff" \
    has_header "healthz-$proto" x-content-type-options nosniff
  check "$proto: strict-transport-security" \
    has_header "healthz-$proto" strict-transport-security max-age=
  check "$proto: content-security-policy with frame-ancestors 'none'" \
    has_header "healthz-$proto" content-security-policy "frame-ancestors 'none'"
  check "$proto: content-type application/json" \
    has_header "healthz-$proto" content-type application/json

  # HEAD: the headers of GET, no body.
  out=$(gw_curl "--$proto" -I -D "$GW_TMP/head-$proto.hdr.raw" -o /dev/null \
    -w '%{http_code} %{size_download}' "$SRV_URL/healthz")
  clen=$(tr -d '\r' <"$GW_TMP/head-$proto.hdr.raw" | grep -i '^content-length:')
  if [ "$out" = "200 0" ] && [ "${clen,,}" = "content-length: 15" ]; then
    ok "$proto HEAD /healthz: 200, content-length 15, no body"
  else
    not_ok "$proto HEAD /healthz: 200, content-length 15, no body" \
      "status and body bytes '$out', '$clen'"
  fi
done

# ---- errors ----------------------------------------------------------------
# Over HTTP/1.1 a request answered from its headers alone (405, 404, ...)
# crashes the server (bug h1_early_answer_null_h1x, see the report): these
# checks are named after it and the server is restarted when it died.

for proto in http2 http1.1; do
  bug=""
  [ "$proto" = http1.1 ] && bug=" (bug h1_early_answer_null_h1x)"
  fetch "delete-$proto" "--$proto" -X DELETE "$SRV_URL/healthz"
  if [ "$code" = 405 ]; then
    ok "$proto DELETE /healthz: 405$bug"
    check "$proto DELETE /healthz: JSON error method_not_allowed" \
      json_error "$GW_TMP/delete-$proto.body" method_not_allowed
    check "$proto DELETE /healthz: allow header lists GET" \
      has_header "delete-$proto" allow GET
  else
    not_ok "$proto DELETE /healthz: 405$bug" "got '$code'"
  fi
  server_alive "$proto DELETE /healthz"

  fetch "notfound-$proto" "--$proto" "$SRV_URL/no/such/path"
  if [ "$code" = 404 ]; then
    ok "$proto GET /no/such/path: 404$bug"
    check "$proto GET /no/such/path: JSON error not_found" \
      json_error "$GW_TMP/notfound-$proto.body" not_found
  else
    not_ok "$proto GET /no/such/path: 404$bug" "got '$code'"
  fi
  server_alive "$proto GET /no/such/path"
done

# ---- /metrics --------------------------------------------------------------

# Validates the Prometheus text exposition format (0.0.4) and prints the
# healthz request counts as "h2=N http/1.1=N".
cat >"$GW_TMP/promcheck.py" <<'PY'
import math, re, sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,(?:%s))*,?)?\})? (\S+)(?: (-?\d+))?$"
                    % (NAME, LABEL, LABEL))
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

def fail(msg):
    sys.exit("invalid exposition: " + msg)

def value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        fail("bad value %r" % s)

text = open(sys.argv[1], encoding="utf-8").read()
if not text.endswith("\n"):
    fail("does not end with a newline")
types, helps, seen, samples = {}, set(), set(), []
for n, line in enumerate(text.split("\n")[:-1], 1):
    if line.startswith("#"):
        parts = line.split(" ", 3)
        if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                fail("line %d: malformed %s line %r" % (n, parts[1], line))
            if parts[1] == "TYPE":
                if parts[3] not in TYPES:
                    fail("line %d: unknown type %r" % (n, parts[3]))
                if parts[2] in types:
                    fail("line %d: second TYPE for %s" % (n, parts[2]))
                if any(s[0] == parts[2] or s[0].startswith(parts[2] + "_")
                       and types.get(parts[2]) for s in samples):
                    fail("line %d: TYPE after samples of %s" % (n, parts[2]))
                types[parts[2]] = parts[3]
            else:
                if parts[2] in helps:
                    fail("line %d: second HELP for %s" % (n, parts[2]))
                helps.add(parts[2])
        continue
    if not line.strip():
        fail("line %d: empty line" % n)
    m = SAMPLE.match(line)
    if not m:
        fail("line %d: not 'name{labels} value': %r" % (n, line))
    name, labels, v = m.group(1), m.group(2) or "", value(m.group(3))
    lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
    key = (name, tuple(sorted(lab.items())))
    if key in seen:
        fail("line %d: duplicate series %r" % (n, line))
    seen.add(key)
    samples.append((name, lab, v))

def family(name):
    for suffix in ("_bucket", "_sum", "_count", ""):
        base = name[: len(name) - len(suffix)] if suffix else name
        if name.endswith(suffix) and base in types:
            return base
    return None

for name, lab, v in samples:
    fam = family(name)
    if fam is None:
        fail("sample %s has no TYPE" % name)
    t = types[fam]
    if t == "counter" and (v < 0 or math.isnan(v)):
        fail("counter %s is %r" % (name, v))
    if t != "histogram" and name != fam:
        fail("sample %s does not belong to %s %s" % (name, t, fam))

def series_key(lab):
    return tuple(sorted((k, v) for k, v in lab.items() if k != "le"))

for fam, t in types.items():
    if t != "histogram":
        continue
    # One histogram per label set (e.g. {operator="omantel"}), each with its
    # own buckets, _sum and _count.
    keys = {series_key(lab) for name, lab, v in samples if name == fam + "_bucket"}
    if not keys:
        fail("histogram %s without buckets or _count" % fam)
    for key in keys:
        buckets = [(lab, v) for name, lab, v in samples
                   if name == fam + "_bucket" and series_key(lab) == key]
        count = [v for name, lab, v in samples
                 if name == fam + "_count" and series_key(lab) == key]
        if len(count) != 1:
            fail("histogram %s%r without buckets or _count" % (fam, key))
        if not any(name == fam + "_sum" and series_key(lab) == key
                   for name, lab, _ in samples):
            fail("histogram %s%r without _sum" % (fam, key))
        les = [value(lab.get("le", "x")) for lab, _ in buckets]
        if les != sorted(les) or len(set(les)) != len(les):
            fail("histogram %s: le bounds not increasing: %r" % (fam, les))
        counts = [v for _, v in buckets]
        if any(b < a for a, b in zip(counts, counts[1:])):
            fail("histogram %s: bucket counts not monotonic: %r" % (fam, counts))
        if les[-1] != math.inf:
            fail("histogram %s: no +Inf bucket" % fam)
        if counts[-1] != count[0]:
            fail("histogram %s: +Inf bucket %r != _count %r" % (fam, counts[-1], count[0]))

if types.get("mpkigw_http_requests_total") != "counter":
    fail("mpkigw_http_requests_total is not a counter")
got = {"h2": 0, "http/1.1": 0}
for name, lab, v in samples:
    if name == "mpkigw_http_requests_total" and lab.get("route") == "healthz":
        got[lab.get("protocol")] = got.get(lab.get("protocol"), 0) + int(v)
print("h2=%d http/1.1=%d" % (got["h2"], got["http/1.1"]))
PY

fetch metrics1 --http2 "$SRV_URL/metrics"
if [ "$code" = 200 ]; then
  ok "GET /metrics: 200"
else
  not_ok "GET /metrics: 200" "got '$code'"
fi
check "GET /metrics: content-type text/plain; version=0.0.4" \
  has_header metrics1 content-type "text/plain; version=0.0.4"
check "GET /metrics: valid Prometheus text format" \
  "$GW_PY" "$GW_TMP/promcheck.py" "$GW_TMP/metrics1.body"
before=$("$GW_PY" "$GW_TMP/promcheck.py" "$GW_TMP/metrics1.body" 2>/dev/null)
for _ in 1 2 3; do gw_curl --http2 -o /dev/null "$SRV_URL/healthz"; done
for _ in 1 2; do gw_curl --http1.1 -o /dev/null "$SRV_URL/healthz"; done
fetch metrics2 --http1.1 "$SRV_URL/metrics"
check "GET /metrics over HTTP/1.1: valid Prometheus text format" \
  "$GW_PY" "$GW_TMP/promcheck.py" "$GW_TMP/metrics2.body"
after=$("$GW_PY" "$GW_TMP/promcheck.py" "$GW_TMP/metrics2.body" 2>/dev/null)
counts_grew() {
  local b2 b1 a2 a1
  read -r b2 b1 <<<"$(sed 's/[a-z0-9./]*=//g' <<<"$1")"
  read -r a2 a1 <<<"$(sed 's/[a-z0-9./]*=//g' <<<"$2")"
  if [ -z "$b2" ] || [ -z "$a2" ]; then
    echo "no counts ('$1' / '$2')"
    return 1
  fi
  if [ $((a2 - b2)) -ne 3 ] || [ $((a1 - b1)) -ne 2 ]; then
    echo "healthz counter went from '$1' to '$2', want +3 h2 and +2 http/1.1"
    return 1
  fi
}
check "mpkigw_http_requests_total{route=healthz} counts each request by protocol" \
  counts_grew "$before" "$after"

# ---- HTTP/2 details ----------------------------------------------------------

nghttp -nv "$SRV_URL/healthz" >"$GW_TMP/nghttp.out" 2>&1
settings_ok() {
  local want
  for want in 'SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100' \
    'SETTINGS_MAX_HEADER_LIST_SIZE(0x06):16384' \
    'SETTINGS_HEADER_TABLE_SIZE(0x01):4096' \
    'SETTINGS_NO_RFC7540_PRIORITIES(0x09):1'; do
    # Only the server's SETTINGS (the "recv SETTINGS" block).
    if ! awk '/recv SETTINGS frame/{r=1;next} /(send|recv) [A-Z_]+ frame/{r=0} r' \
      "$GW_TMP/nghttp.out" | grep -qF "[$want]"; then
      echo "server SETTINGS lack $want"
      return 1
    fi
  done
  grep -q ':status: 200' "$GW_TMP/nghttp.out" || {
    echo "no :status 200 in nghttp output"
    return 1
  }
}
check "nghttp -nv: server SETTINGS (MAX_CONCURRENT_STREAMS 100, MAX_HEADER_LIST_SIZE 16384, HEADER_TABLE_SIZE 4096, NO_RFC7540_PRIORITIES 1)" \
  settings_ok

h2load -n 2000 -c 10 -m 10 "$SRV_URL/healthz" >"$GW_TMP/h2load.out" 2>&1
h2load_ok() {
  grep -q ' 0 failed, 0 errored, 0 timeout' "$GW_TMP/h2load.out" &&
    grep -q '^status codes: 2000 2xx' "$GW_TMP/h2load.out" || {
    grep -E '^(requests|status codes):' "$GW_TMP/h2load.out" | tr '\n' ' '
    echo
    return 1
  }
}
check "h2load -n 2000 -c 10 -m 10: 0 failed, 2000 2xx" h2load_ok
diag "$(grep '^finished in' "$GW_TMP/h2load.out")"

if [ "$SRV_H2C_PORT" != 0 ]; then
  out=$(curl -s --max-time 5 --http2-prior-knowledge -w ' %{http_code} %{http_version}' \
    "http://127.0.0.1:$SRV_H2C_PORT/healthz")
  if [ "$out" = '{"status":"ok"} 200 2' ]; then
    ok "h2c (prior knowledge) GET /healthz: 200 over HTTP/2"
  else
    not_ok "h2c (prior knowledge) GET /healthz: 200 over HTTP/2" "got '$out'"
  fi
fi

# ---- HTTP/1.1 details --------------------------------------------------------

out=$(gw_curl --http1.1 -w '%{http_code}:%{num_connects} ' -o /dev/null \
  -o /dev/null "$SRV_URL/healthz" "$SRV_URL/healthz")
if [ "$out" = "200:1 200:0 " ]; then
  ok "HTTP/1.1 keep-alive: two requests on one connection"
else
  not_ok "HTTP/1.1 keep-alive: two requests on one connection" \
    "status:new-connections per request '$out', want '200:1 200:0'"
fi

check "HTTP/1.1 pipelining: three requests in one write, three answers in order, close on Connection: close" \
  py - "$SRV_PORT" <<'PY'
import sys, gwtest
s = gwtest.tls_connect(int(sys.argv[1]), ["http/1.1"])
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
          b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
got, how, secs = gwtest.read_until_close(s, 5)
st1, h1, b1, rest = gwtest.parse_h1(got)
st2, h2, b2, rest = gwtest.parse_h1(rest)
head, sep, rest = rest.partition(b"\r\n\r\n")
if (st1, b1) != (200, b'{"status":"ok"}'):
    sys.exit("first answer %r %r" % (st1, b1))
if st2 != 200 or not h2.get("content-type", "").startswith("text/plain"):
    sys.exit("second answer %r %r" % (st2, h2.get("content-type")))
if not head.startswith(b"HTTP/1.1 200") or rest:
    sys.exit("third answer %r + %d bytes" % (head[:20], len(rest)))
if how != "eof":
    sys.exit("connection %s after Connection: close" % how)
print("3 answers, then eof")
PY

check "HTTP/1.0 without Host: 200, then close" \
  py - "$SRV_PORT" <<'PY'
import sys, gwtest
s = gwtest.tls_connect(int(sys.argv[1]), ["http/1.1"])
s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
got, how, secs = gwtest.read_until_close(s, 5)
st, h, body, rest = gwtest.parse_h1(got)
if st != 200 or body != b'{"status":"ok"}' or how != "eof":
    sys.exit("%r %r, connection %s" % (st, body, how))
print("200, eof")
PY

check "TLS without ALPN is spoken to in HTTP/1.1" \
  py - "$SRV_PORT" <<'PY'
import sys, gwtest
s = gwtest.tls_connect(int(sys.argv[1]))
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(5)
got = s.recv(4096)
st, h, body, rest = gwtest.parse_h1(got)
if st != 200:
    sys.exit("%r" % got[:40])
print("200")
PY

fetch chunked --http1.1 -X POST -H 'Transfer-Encoding: chunked' \
  -H 'Content-Type: application/json' --data-binary '{"a":1}' "$SRV_URL/healthz"
if [ "$code" = 405 ]; then
  ok "HTTP/1.1 chunked POST /healthz: 405"
  check "HTTP/1.1 chunked POST /healthz: JSON error method_not_allowed" \
    json_error "$GW_TMP/chunked.body" method_not_allowed
else
  not_ok "HTTP/1.1 chunked POST /healthz: 405" "got '$code'"
fi
server_alive "a chunked POST"

# ---- TLS ---------------------------------------------------------------------

s_client() { # args...: openssl s_client against the server, output on stdout
  timeout 10 openssl s_client -connect "127.0.0.1:$SRV_PORT" \
    -servername localhost "$@" </dev/null 2>&1 | tr -d '\0'
}

# The client is allowed TLS 1.1 (SECLEVEL=0), so a failure is the server's
# refusal, not the client's.
out=$(s_client -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
if grep -q 'Cipher is (NONE)' <<<"$out" && grep -qi 'alert protocol version' <<<"$out"; then
  ok "TLS 1.1 refused (protocol_version alert)"
elif grep -q 'Cipher is (NONE)' <<<"$out"; then
  ok "TLS 1.1 refused"
  diag "$(grep -i -m 1 'error' <<<"$out")"
else
  not_ok "TLS 1.1 refused" "$(grep -m 1 -E 'Protocol|Cipher is' <<<"$out")"
fi
for v in 1.2 1.3; do
  out=$(s_client "-tls${v/./_}")
  if grep -q "^ *Protocol *: TLSv$v" <<<"$out" ||
    grep -q "^New, TLSv$v, Cipher is" <<<"$out"; then
    ok "TLS $v accepted ($(grep -m 1 -o 'Cipher is .*' <<<"$out"))"
  else
    not_ok "TLS $v accepted" "$(grep -m 1 -E 'Cipher is|error' <<<"$out")"
  fi
done
for a in h2 http/1.1; do
  out=$(s_client -alpn "$a")
  if grep -q "^ALPN protocol: $a\$" <<<"$out"; then
    ok "ALPN $a negotiated"
  else
    not_ok "ALPN $a negotiated" "$(grep -m 1 ALPN <<<"$out")"
  fi
done
out=$(s_client -alpn h2,http/1.1)
if grep -q "^ALPN protocol: h2\$" <<<"$out"; then
  ok "ALPN prefers h2 over http/1.1"
else
  not_ok "ALPN prefers h2 over http/1.1" "$(grep -m 1 ALPN <<<"$out")"
fi

server_alive "the whole suite"
stop_server_checked
finish

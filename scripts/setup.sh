#!/usr/bin/env bash
# First-run set-up of the demo under var/ (made once, reused afterwards):
# a self-signed TLS certificate for 127.0.0.1 and localhost, the demo
# configuration var/mpkigw.conf derived from configs/mpkigw.conf, and the
# demo national PKI: SoftHSM tokens in var/tokens/, the CA in var/pki/, the
# gateway's signing keys, the demo SIMs of configs/demo-subscribers.csv with
# +96899000004 revoked. At every run it publishes a fresh CRL.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

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

# ---- the demo PKI --------------------------------------------------------
# The paths below are the defaults of var/mpkigw.conf (pkcs11.softhsm_conf,
# pki.dir, gateway_keys.dir); mpkictl and mpkigw set SOFTHSM2_CONF from it.

conf=var/mpkigw.conf
ctl() { "$BUILD/mpkictl" --config "$conf" "$@"; }

# SoftHSM's own configuration: the demo's tokens live in var/tokens/. It is
# rewritten when the repository has moved (the token directory is absolute).
mkdir -p var/tokens
chmod 700 var/tokens
tokendir=$PWD/var/tokens
if ! grep -qsxF "directories.tokendir = $tokendir" var/softhsm2.conf; then
  echo "setup: writing var/softhsm2.conf (tokens in var/tokens/)"
  cat > var/softhsm2.conf <<CONF
# SoftHSM 2 configuration of the demo, written by scripts/setup.sh.
# mpkigw and mpkictl set SOFTHSM2_CONF to this file (pkcs11.softhsm_conf).
directories.tokendir = $tokendir
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi

# First run only (the marker says it is done). Each step is skipped when
# its result exists, so that a run that stopped half-way goes on where it
# stopped.
marker=var/pki/.demo-ready
if [ ! -e "$marker" ]; then
  echo "setup: creating the demo PKI: CA in var/pki/, tokens in var/tokens/"
  [ -s var/pki/root-ca.pem ] || ctl ca init
  [ -s var/keys/kids ] || ctl gateway-key init
  ctl sim provision --csv configs/demo-subscribers.csv --skip-existing
  ctl cert revoke --msisdn +96899000004 --reason keyCompromise
  date -u +%Y-%m-%dT%H:%M:%SZ > "$marker"
fi

# Every run: a fresh CRL, since verifiers refuse one past its nextUpdate.
ctl crl publish | sed 's/^/setup: /'

# ---- the mock operators (issues 4 and 5) ---------------------------------
# var/mssp-mock.conf from configs/mssp-mock.conf: paths made relative to
# var/, the control endpoint on (the demo listens on 127.0.0.1 only). It
# holds no secret of its own (the gateway's AP comes from var/mpkigw.conf),
# so a copy older than its notifications group is simply made again. The
# SIM retry counters live in var/mssp-mock/.
if [ ! -s var/mssp-mock.conf ] || ! grep -q '^notifications:' var/mssp-mock.conf; then
  echo "setup: writing var/mssp-mock.conf from configs/mssp-mock.conf"
  sed -e 's|"\.\./var/|"|g' \
    -e '/^control: {/,/^};/s/^\([[:space:]]*enabled[[:space:]]*=[[:space:]]*\)false;/\1true;/' \
    configs/mssp-mock.conf > var/mssp-mock.conf
fi

# A var/mpkigw.conf written before the Ooredoo adapter existed has no
# operators.ooredoo group: add the reference one after the omantel group.
if ! grep -q '^[[:space:]]*ooredoo:[[:space:]]*{' "$conf"; then
  echo "setup: adding the operators.ooredoo group to var/mpkigw.conf"
  block=$(sed -n '/^  ooredoo:[[:space:]]*{/,/^  };/p' configs/mpkigw.conf)
  tmp=$(mktemp var/mpkigw.conf.XXXXXX)
  awk -v block="$block" '
    { print }
    /^  omantel:[[:space:]]*{/ { in_om = 1 }
    in_om && /^  };/ { print ""; print block; in_om = 0 }
  ' "$conf" > "$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$conf"
fi

# The gateway's application provider at each mock operator: when a group
# operators.<operator> of var/mpkigw.conf still has an empty ap_id, give it
# the demo's AP_ID and a random AP_PWD; at Ooredoo also the notification
# URL (this gateway's POST /operators/ooredoo/notify) and a random HMAC
# secret. The mocks accept the gateway's AP from that same file
# (gateway_ap = true in var/mssp-mock.conf), so each secret is written
# once, in one file (mode 0600).
gw_port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*"[^"]*:\([0-9]*\)".*/\1/p' "$conf" | head -n 1)
gw_port=${gw_port:-8443}
give_ap() { # operator
  local op=$1 group ap_pwd secret tmp
  group=$(sed -n "/^[[:space:]]*$op:[[:space:]]*{/,/^[[:space:]]*};/p" "$conf")
  grep -q '^[[:space:]]*ap_id[[:space:]]*=[[:space:]]*"";' <<<"$group" || return 0
  echo "setup: giving the gateway an AP identity at the $op mock (var/mpkigw.conf)"
  ap_pwd=$(openssl rand -hex 16)
  secret=$(openssl rand -hex 32)
  tmp=$(mktemp var/mpkigw.conf.XXXXXX)
  sed -e "/^[[:space:]]*$op:[[:space:]]*{/,/^[[:space:]]*};/{" \
    -e 's|^\([[:space:]]*ap_id[[:space:]]*=[[:space:]]*\)"";|\1"http://mpkigw.demo/ap";|' \
    -e "s|^\\([[:space:]]*ap_pwd[[:space:]]*=[[:space:]]*\\)\"\";|\\1\"$ap_pwd\";|" \
    -e "s|^\\([[:space:]]*notify_url[[:space:]]*=[[:space:]]*\\)\"\";|\\1\"https://127.0.0.1:$gw_port/operators/$op/notify\";|" \
    -e "s|^\\([[:space:]]*notify_secret[[:space:]]*=[[:space:]]*\\)\"\";|\\1\"$secret\";|" \
    -e '}' "$conf" > "$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$conf"
}
give_ap omantel
give_ap ooredoo

# ---- the OpenID Connect provider (issue 6) ---------------------------------
# A var/mpkigw.conf older than the provider has no oidc group: add the
# reference one. Then the demo's settings: demo = true (short demo client
# secrets), the licensing officers of configs/demo-subscribers.csv (role
# licensing_officer), and var/clients.conf with the demo's relying parties.
if ! grep -q '^oidc:[[:space:]]*{' "$conf"; then
  echo "setup: adding the oidc group to var/mpkigw.conf"
  sed -n '/^oidc:[[:space:]]*{/,/^};/p' configs/mpkigw.conf >> "$conf"
fi
officers=$(awk -F, '!/^#/ && $9 == "licensing_officer" { printf "%s%s", sep, $2; sep = " " }' \
  configs/demo-subscribers.csv)
if grep -q '^[[:space:]]*demo[[:space:]]*=[[:space:]]*false;' "$conf"; then
  echo "setup: the demo's OpenID provider settings (var/mpkigw.conf: demo, officers)"
  tmp=$(mktemp var/mpkigw.conf.XXXXXX)
  sed -e '/^oidc:[[:space:]]*{/,/^};/{' \
    -e 's/^\([[:space:]]*demo[[:space:]]*=[[:space:]]*\)false;/\1true;/' \
    -e "s/^\\([[:space:]]*licensing_officers[[:space:]]*=[[:space:]]*\\)\"\";/\\1\"$officers\";/" \
    -e '}' "$conf" > "$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$conf"
fi
if [ ! -s var/clients.conf ]; then
  echo "setup: writing var/clients.conf (demo-rp, licensing-portal, licensing-rs)"
  umask 077
  portal_secret=$(openssl rand -hex 32)
  rs_secret=$(openssl rand -hex 32)
  cat > var/clients.conf <<CONF
# The demo's relying parties, written by scripts/setup.sh (make run).
# Format: configs/clients.conf. demo-rp's secret is the short demo one
# (oidc.demo = true in var/mpkigw.conf allows it); the others are random.
clients = (
  { client_id = "demo-rp";
    name = "Demo RP";
    secret = "demo-rp-secret";
    auth_methods = ["client_secret_basic", "client_secret_post"];
    grant_types = ["urn:openid:params:grant-type:ciba", "authorization_code",
                   "refresh_token"];
    scopes = ["openid", "profile", "licensing"];
    resources = ["https://127.0.0.1:$gw_port/licensing"];
    redirect_uris = ["http://127.0.0.1:9300/callback"];
    ciba_mode = "poll";
    id_token_alg = "ES256"; },
  { client_id = "licensing-portal";
    name = "Domestic Worker Licensing";
    secret = "$portal_secret";
    auth_methods = ["client_secret_basic", "client_secret_post"];
    grant_types = ["urn:openid:params:grant-type:ciba"];
    scopes = ["openid", "profile", "licensing", "licensing.officer"];
    resources = ["https://127.0.0.1:$gw_port/licensing"];
    ciba_mode = "poll";
    id_token_alg = "ES256"; },
  { client_id = "licensing-rs";
    name = "Licensing backend";
    secret = "$rs_secret";
    auth_methods = ["client_secret_basic"];
    grant_types = [];
    scopes = [];
    resources = ["https://127.0.0.1:$gw_port/licensing"];
    resource_server = true; }
);
CONF
  umask 022
  unset portal_secret rs_secret
fi
# A var/clients.conf from before issue 7: give demo-rp the browser flow
# (the redirect URI and the authorization_code and refresh_token grants).
if [ -s var/clients.conf ] && ! grep -q '9300/callback' var/clients.conf; then
  echo "setup: adding the browser flow to demo-rp in var/clients.conf"
  tmp=$(mktemp var/clients.conf.XXXXXX)
  awk '
    /client_id = "demo-rp"/ { in_rp = 1 }
    in_rp && /grant_types = \[/ && !done_g {
      sub(/\]/, ", \"authorization_code\", \"refresh_token\"]"); done_g = 1 }
    in_rp && /redirect_uris/ { has_ru = 1 }
    in_rp && /ciba_mode|id_token_alg/ && !done_r && !has_ru {
      print "    redirect_uris = [\"http://127.0.0.1:9300/callback\"];"
      done_r = 1 }
    in_rp && /}/ { in_rp = 0 }
    { print }
  ' var/clients.conf >"$tmp" && chmod 600 "$tmp" && mv "$tmp" var/clients.conf
fi

#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs, only those missing,
# non-interactively. Run as root (make deps / make run / make check do).
set -euo pipefail

packages=(
  # build
  gcc make pkg-config
  libssl-dev libnghttp2-dev libevent-dev libjansson-dev
  libhttp-parser-dev libconfig-dev libsqlite3-dev sqlite3
  # PKCS#11: libp11 over a real module (SoftHSM 2), pkcs11-tool for checks
  libp11-dev libp11-kit-dev softhsm2 opensc
  # openssl's PKCS#11 engine: tests forge a stale CRL with the CA's token key
  libengine-pkcs11-openssl
  # operators: ETSI TS 102 204 over SOAP (libxml2) and xmllint for schema checks
  libxml2-dev libxml2-utils
  # run and demo set-up
  openssl ca-certificates
  # tests and benchmarks: real clients and a reference server
  libcurl4-openssl-dev curl nghttp2-client nghttp2-server python3 python3-h2
  # interop tests: real OpenID Connect relying-party libraries (tests/interop)
  nodejs npm
  # end-to-end test: headless Chromium driven by playwright-core (tests/e2e);
  # Noto Sans/Naskh Arabic for the Arabic login page and its screenshots
  chromium fonts-noto-core
)

# REFERENCE §4: the HTTP/2 flood fixes are in Debian's 1.52.0-1+deb12u3
# update; the version string says 1.52.0 either way, so check the package.
min_nghttp2=1.52.0-1+deb12u3

missing=()
for p in "${packages[@]}"; do
  # NodeSource's nodejs bundles npm (and conflicts with Debian's): a working
  # npm command will do.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
have_nghttp2=$(dpkg-query -W -f='${Version}' libnghttp2-14 2>/dev/null || true)
if [ -n "$have_nghttp2" ] &&
  dpkg --compare-versions "$have_nghttp2" lt "$min_nghttp2"; then
  echo "deps: libnghttp2-14 $have_nghttp2 is older than $min_nghttp2; upgrading"
  missing+=(libnghttp2-14)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: these Debian packages are missing: ${missing[*]}" >&2
  echo "deps: run as root (e.g. 'sudo make deps'), or install them with:" >&2
  echo "      apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists; an old list may name versions that
# are gone from the mirror. Update when the lists are missing or stale.
lists=/var/lib/apt/lists
if [ -z "$(find "$lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
  apt-get update -qq
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/mpkigw-deps.log 2>&1; then
  echo "deps: install failed; retrying after apt-get update" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
    echo "deps: apt-get install failed; see the output above" >&2
    exit 1
  }
fi
echo "deps: done"

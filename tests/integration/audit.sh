#!/usr/bin/env bash
# audit.sh — `mpkictl audit verify` and `audit tail` on a real audit log:
# a store written through gw_audit with a real ES256 signer (the unit test
# binary's --make-db mode), then edited with the sqlite3 CLI: an edited
# row is named, deleted last rows are caught by the last checkpoint, a
# forged checkpoint signature is caught. Acceptance of issue 7 part 5.
source "$(dirname "$0")/lib.sh"

MPKICTL=${MPKICTL:-$GW_ROOT/$BUILD/mpkictl}
MAKEDB=$GW_ROOT/$BUILD/tests/unit/gateway/gw_audit_test
if [ ! -x "$MPKICTL" ] || [ ! -x "$MAKEDB" ]; then
  not_ok "setup" "$MPKICTL or $MAKEDB is not built (make -j2 all)"
  finish
fi
if ! command -v sqlite3 >/dev/null; then
  skip "no sqlite3 CLI (make deps installs it)"
  finish
fi

D=$GW_TMP/var
CONF=$D/mpkigw.conf
DB=$D/mpkigw.db
mkdir -p "$D/keys"
write_config "$CONF"
cat >>"$CONF" <<'EOF2'
gateway_keys: {
  token = "mpki-gateway";
  dir = "keys";
};
EOF2

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
    not_ok "$name" "exit status $RC, expected $want; out: ${OUT:0:300} err: ${ERR:0:300}"
    return 1
  fi
  if [ -n "$pat" ] && [[ "$OUT$ERR" != *"$pat"* ]]; then
    not_ok "$name" "no '$pat' in: ${OUT:0:300} ${ERR:0:300}"
    return 1
  fi
  ok "$name"
}

ctl audit verify
expect "verify refuses a missing store" 1 "cannot read the store"
[ ! -e "$DB" ] && ok "verify creates no store" || not_ok "verify creates no store"

# 35 events, a checkpoint every 10 rows and a final one at 35.
"$MAKEDB" --make-db "$DB" "$D/keys" 35 || not_ok "make-db" "status $?"
ctl audit verify
expect "verify: intact" 0 "audit: 35 rows,"
expect "verify: says intact" 0 "chain intact"
[[ $OUT == *"35 rows, 4 checkpoints"* ]] && ok "a checkpoint per 10 rows and a final one" ||
  not_ok "a checkpoint per 10 rows and a final one" "$OUT"
ctl audit tail -n 3
expect "tail -n 3" 0 "signin.begin"
[ "$(printf '%s\n' "$OUT" | wc -l)" = 3 ] && ok "tail prints 3 rows" ||
  not_ok "tail prints 3 rows" "$OUT"
ctl audit tail --json -n 2
expect "tail --json" 0 '"seq": 35'
ctl audit tail -n 0
expect "tail -n 0 is a usage error" 2 "-n"
ctl audit verify --from x
expect "verify --from x is a usage error" 2 "--from"

cp "$DB" "$D/orig.db"
sqlite3 "$DB" "UPDATE audit SET data='{}' WHERE seq=5"
ctl audit verify
expect "an edited row is named" 1 "audit: row 5: hash mismatch"

cp "$D/orig.db" "$DB"
sqlite3 "$DB" "DELETE FROM audit WHERE seq > 32"
ctl audit verify
expect "deleted last rows are caught by the last checkpoint" 1 \
  "checkpoint at 35 covers them"

cp "$D/orig.db" "$DB"
sqlite3 "$DB" "UPDATE audit_checkpoints SET jws = substr(jws, 1, length(jws) - 2) || CASE WHEN substr(jws, -2, 1) = 'A' THEN 'B' ELSE 'A' END || substr(jws, -1) WHERE seq = (SELECT MIN(seq) FROM audit_checkpoints)"
ctl audit verify
expect "a forged checkpoint signature is caught" 1 \
  ": bad signature"

cp "$D/orig.db" "$DB"
rm -f "$D/keys/es256.pem"
ctl audit verify
expect "verify without a public key fails" 1 "no EC P-256 public key"

ctl audit verify --help
expect "verify --help" 0 "Usage: mpkictl [--config FILE] audit verify"
finish

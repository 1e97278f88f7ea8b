#!/usr/bin/env bash
# config_errors.sh — the command line and the configuration checks: bad
# files are refused with "FILE:LINE: reason" and a non-zero status, good
# ones pass, --help/--version/--help-config work, and a daemon that cannot
# bind its port says so and exits non-zero.
source "$(dirname "$0")/lib.sh"

D=$GW_TMP/conf
mkdir -p "$D"

# bad_config NAME LINE REASON_SUBSTRING: $D/NAME.conf (already written)
# must fail --check-config with "$D/NAME.conf:LINE: ...REASON..." and a
# non-zero status.
bad_config() {
  local name=$1 line=$2 want=$3 file=$D/$1.conf out rc
  out=$("$MPKIGW" --check-config "$file" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    not_ok "--check-config refuses $name" "exit status 0: $out"
    return
  fi
  if [[ $out != *"$file:$line: "* ]]; then
    not_ok "--check-config refuses $name with $file:$line" "message: $out"
    return
  fi
  if [[ $out != *"$want"* ]]; then
    not_ok "--check-config refuses $name: reason mentions '$want'" "message: $out"
    return
  fi
  ok "--check-config refuses $name (status $rc): ${out#*"$D/"}"
}

# The TLS part every test file needs (3 lines); errors go below it.
tls='tls: {
  certificate = "server.crt";
  private_key = "server.key";'

cat >"$D/unknown_key.conf" <<EOF
$tls
};
server: {
  workers = 2;
  bogus_key = 1;
};
EOF
bad_config unknown_key 7 'unknown key "server.bogus_key"'

cat >"$D/unknown_group.conf" <<EOF
$tls
};

nonsense: {
  a = 1;
};
EOF
bad_config unknown_group 6 'unknown key "nonsense"'

cat >"$D/wrong_type.conf" <<EOF
$tls
};
server: {
  workers = "two";
};
EOF
bad_config wrong_type 6 'server.workers: expected an integer, got a string'

cat >"$D/wrong_type_bool.conf" <<EOF
$tls
};
log: {
  level = "info";
  access = "yes";
};
EOF
bad_config wrong_type_bool 7 'log.access: expected true or false'

cat >"$D/out_of_range.conf" <<EOF
$tls
};
limits: {
  max_connections = 100;

  max_concurrent_streams = 0;
};
EOF
bad_config out_of_range 8 'limits.max_concurrent_streams: 0 is below the minimum 1'

cat >"$D/out_of_range_high.conf" <<EOF
$tls
};
limits: {
  idle_timeout_ms = 3600001;
};
EOF
bad_config out_of_range_high 6 'limits.idle_timeout_ms: 3600001 is above the maximum 3600000'

# libconfig keeps 4294968320 in a 32-bit int as 1024 (which is in range);
# the checker must still see the literal.
cat >"$D/wrapping_int.conf" <<EOF
$tls
};
limits: {
  max_header_list_size = 4294968320;
};
EOF
bad_config wrapping_int 6 'limits.max_header_list_size: 4294968320 is above the maximum'

cat >"$D/bad_bytes.conf" <<EOF
$tls
};
limits: {
  max_body_size = "64x";
};
EOF
bad_config bad_bytes 6 'limits.max_body_size: "64x" is not a byte count'

cat >"$D/tls_1_1.conf" <<EOF
$tls
  min_version = "1.1";
};
EOF
bad_config tls_1_1 4 'tls.min_version: "1.1" is not one of "1.2", "1.3"'

cat >"$D/bad_listen.conf" <<EOF
$tls
};
server: {
  listen = "127.0.0.1:70000";
};
EOF
bad_config bad_listen 6 'server.listen: "127.0.0.1:70000" is not host:port'

cat >"$D/syntax_error.conf" <<EOF
$tls
};
server: {
  workers == 2;
};
EOF
bad_config syntax_error 6 'syntax error'

cat >"$D/unclosed_group.conf" <<EOF
$tls
};
server: {
  workers = 2;
EOF
# The missing "};" is noticed where it should be: at the end, line 7.
bad_config unclosed_group 7 'syntax error'

# Missing file: no line to name.
out=$("$MPKIGW" --check-config "$D/no_such.conf" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [[ $out == *"$D/no_such.conf: No such file or directory"* ]]; then
  ok "--check-config refuses a missing file (status $rc): FILE: No such file or directory"
else
  not_ok "--check-config refuses a missing file" "status $rc: $out"
fi

cat >"$D/no_key.conf" <<EOF
tls: {
  certificate = "server.crt";
};
EOF
out=$("$MPKIGW" --check-config "$D/no_key.conf" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [[ $out == *"$D/no_key.conf: missing required key \"tls.private_key\""* ]]; then
  ok "--check-config refuses a file without tls.private_key (status $rc)"
else
  not_ok "--check-config refuses a file without tls.private_key" "status $rc: $out"
fi

# ---- good files --------------------------------------------------------------

write_config "$D/generated.conf"
out=$("$MPKIGW" --check-config "$D/generated.conf" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [[ $out == *"configuration is valid"* ]]; then
  ok "--check-config accepts the generated test config"
else
  not_ok "--check-config accepts the generated test config" "status $rc: $out"
fi

# Relative paths are resolved against the file's directory, so the reference
# file checks the same from the repository and from elsewhere.
for dir in "$GW_ROOT" /; do
  out=$(cd "$dir" && "$MPKIGW" --check-config "$GW_ROOT/configs/mpkigw.conf" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    ok "--check-config accepts configs/mpkigw.conf (run from $dir)"
  else
    not_ok "--check-config accepts configs/mpkigw.conf (run from $dir)" "status $rc: $out"
  fi
done

cat >"$D/bytes_suffix.conf" <<EOF
$tls
};
limits: {
  max_header_list_size = "32k";
  max_body_size = "2m";
};
EOF
check "--check-config accepts byte sizes with k and m suffixes" \
  "$MPKIGW" --check-config "$D/bytes_suffix.conf"

# The reference file lists every key the gateway knows ("Every key the
# gateway knows is listed below"), and the test config sets only known keys.
keys_agree() {
  local table ref lib extra
  table=$("$MPKIGW" --help-config | awk '{print $1}' | sort)
  # Groups nest ("operators: { omantel: { url = ...; }; };"): keep a stack
  # of open group names; comments are skipped.
  ref=$(awk '
    { sub(/#.*/, "") }
    /^[ \t]*[a-z0-9_]+[ \t]*:[ \t]*\{/ { g = $1; sub(/:.*/, "", g); stack[++n] = g; next }
    /^[ \t]*[a-z0-9_]+[ \t]*=/ { k = $1; sub(/=.*/, "", k); p = "";
      for (i = 1; i <= n; i++) p = p stack[i] "."; print p k }
    /^[ \t]*\}[ \t]*;?/ { if (n > 0) n-- }
  ' "$GW_ROOT/configs/mpkigw.conf" | sort)
  lib=$(printf '%s\n' "${GW_CONF_KEYS[@]}" | sort)
  if [ "$table" != "$ref" ]; then
    echo "--help-config and configs/mpkigw.conf differ (< only in --help-config, > only in the file): $(diff <(echo "$table") <(echo "$ref") | grep '^[<>]' | tr '\n' ' ')"
    return 1
  fi
  extra=$(comm -13 <(echo "$table") <(echo "$lib"))
  if [ -n "$extra" ]; then
    echo "tests/integration/lib.sh sets keys --help-config does not list: $extra"
    return 1
  fi
  echo "$(wc -l <<<"$table") keys"
}
check "configs/mpkigw.conf lists exactly the keys of --help-config" keys_agree

# ---- command line --------------------------------------------------------------

out=$("$MPKIGW" --help 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [[ $out == *--config* ]] && [[ $out == *--check-config* ]]; then
  ok "--help exits 0 and mentions --config"
else
  not_ok "--help exits 0 and mentions --config" "status $rc"
fi
out=$("$MPKIGW" --version 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -qE '^mpkigw [0-9]+\.[0-9]+\.[0-9]+' <<<"$out"; then
  ok "--version prints a version ($(head -n 1 <<<"$out"))"
else
  not_ok "--version prints a version" "status $rc: $out"
fi
out=$("$MPKIGW" --no-such-option 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [[ $out == *Usage:* ]]; then
  ok "an unknown option exits non-zero ($rc) with the usage"
else
  not_ok "an unknown option exits non-zero with the usage" "status $rc: $out"
fi
out=$("$MPKIGW" --config "$D/generated.conf" extra-arg 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [[ $out == *"unexpected argument"* ]]; then
  ok "a stray argument exits non-zero ($rc)"
else
  not_ok "a stray argument exits non-zero" "status $rc: $out"
fi

# ---- the daemon refuses to start ------------------------------------------------

# run_daemon NAME CONF: runs the daemon expected to fail at start-up; waits
# up to 5 s. Sets RUN_RC ("running" when it did not exit) and RUN_OUT.
run_daemon() {
  local name=$1 conf=$2 pid deadline
  "$MPKIGW" --config "$conf" >"$GW_TMP/$name.out" 2>&1 &
  pid=$!
  echo "$pid" >"$GW_TMP/$name.pid"
  deadline=$(($(now_ms) + 3000 + 1000 * GW_SLOW))
  while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    RUN_RC=running
    stop_server "$name" 5 >/dev/null
  else
    wait "$pid"
    RUN_RC=$?
    rm -f "$GW_TMP/$name.pid"
    sanitizer_check "$name"
  fi
  RUN_OUT=$(grep -v '^ts=' "$GW_TMP/$name.out" | tail -n 3)
}

# A port held by another program's listening socket.
port=$(free_port)
py - "$port" >"$GW_TMP/holder.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
time.sleep(30)
PY
holder=$!
track_pid "$holder"
for _ in $(seq 1 100); do
  grep -q listening "$GW_TMP/holder.out" 2>/dev/null && break
  sleep 0.05
done
write_config "$D/busy.conf" "server.listen=\"127.0.0.1:$port\""
run_daemon busy "$D/busy.conf"
if [ "$RUN_RC" != running ] && [ "$RUN_RC" -ne 0 ] &&
  [[ $RUN_OUT == *"cannot listen on 127.0.0.1:$port: Address already in use"* ]]; then
  ok "a port held by another program: exit status $RUN_RC, 'cannot listen on 127.0.0.1:$port: Address already in use'"
else
  not_ok "a port held by another program: clear message and non-zero exit" \
    "status $RUN_RC: $RUN_OUT"
fi
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# A port held by a running mpkigw. Every listening socket sets SO_REUSEPORT
# (one per worker), so a second daemon of the same user binds the same port
# and the kernel splits new connections between the two
# (bug second_instance_shares_port_via_reuseport).
start_server first || finish
write_config "$D/second.conf" "server.listen=\"127.0.0.1:$SRV_PORT\""
run_daemon second "$D/second.conf"
if [ "$RUN_RC" != running ] && [ "$RUN_RC" -ne 0 ] &&
  [[ $RUN_OUT == *"Address already in use"* ]]; then
  ok "a port held by another mpkigw: refused with 'Address already in use' (status $RUN_RC)"
elif [ "$RUN_RC" = running ]; then
  not_ok "a port held by another mpkigw: refused (bug second_instance_shares_port_via_reuseport)" \
    "the second daemon started on port $SRV_PORT and shares it with the first"
else
  not_ok "a port held by another mpkigw: refused (bug second_instance_shares_port_via_reuseport)" \
    "status $RUN_RC: $RUN_OUT"
fi
server_alive "a second daemon tried its port"
stop_server_checked

# A certificate that does not exist: check-config does not open files, the
# daemon must.
write_config "$D/nocert.conf" "server.listen=\"127.0.0.1:$(free_port)\"" \
  "tls.certificate=\"$D/missing.crt\""
run_daemon nocert "$D/nocert.conf"
if [ "$RUN_RC" != running ] && [ "$RUN_RC" -ne 0 ] &&
  [[ $RUN_OUT == *"$D/missing.crt"* ]]; then
  ok "a missing certificate: exit status $RUN_RC naming the file"
else
  not_ok "a missing certificate: non-zero exit naming the file" "status $RUN_RC: $RUN_OUT"
fi

# A store path in a directory that does not exist.
write_config "$D/nostore.conf" "server.listen=\"127.0.0.1:$(free_port)\"" \
  "store.path=\"$D/no/such/dir/x.db\""
run_daemon nostore "$D/nostore.conf"
if [ "$RUN_RC" != running ] && [ "$RUN_RC" -ne 0 ] &&
  [[ $RUN_OUT == *"$D/no/such/dir/x.db"* ]]; then
  ok "an unusable store path: exit status $RUN_RC naming the file"
else
  not_ok "an unusable store path: non-zero exit naming the file" "status $RUN_RC: $RUN_OUT"
fi

# The daemon reads its config through the same checks as --check-config.
run_daemon badconf "$D/out_of_range.conf"
if [ "$RUN_RC" != running ] && [ "$RUN_RC" -ne 0 ] &&
  [[ $RUN_OUT == *"$D/out_of_range.conf:8: "* ]]; then
  ok "the daemon refuses a bad config with FILE:LINE (status $RUN_RC)"
else
  not_ok "the daemon refuses a bad config with FILE:LINE" "status $RUN_RC: $RUN_OUT"
fi

finish

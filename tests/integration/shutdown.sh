#!/usr/bin/env bash
# shutdown.sh — orderly shutdown under load (SIGTERM, SIGINT) within
# server.shutdown_grace_ms, the store left intact, new connections refused
# while draining, and a restart on the same store after kill -9.
source "$(dirname "$0")/lib.sh"

GRACE_MS=2000
MARGIN_MS=$((2000 * GW_SLOW))

# integrity FILE: PRAGMA integrity_check of an SQLite file is "ok" (python's
# sqlite3 module: the sqlite3 CLI is not guaranteed).
integrity() {
  "$GW_PY" - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
res = [r[0] for r in db.execute("PRAGMA integrity_check")]
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
db.close()
if res != ["ok"]:
    sys.exit("integrity_check: %r" % res)
if not tables:
    sys.exit("no tables in the store")
print("integrity ok; tables: %s" % ", ".join(sorted(tables)))
PY
}

# under_load_stop SIGNAL: starts a server, runs h2load against it, sends
# SIGNAL a second in, and checks the exit.
under_load_stop() {
  local sig=$1 name=load-${1,,} h2pid
  start_server "$name" "server.shutdown_grace_ms=$GRACE_MS" || return
  h2load -D 10 -c 10 -m 10 "$SRV_URL/healthz" >"$GW_TMP/$name.h2load" 2>&1 &
  h2pid=$!
  track_pid "$h2pid"
  sleep 1
  if ! kill -0 "$h2pid" 2>/dev/null; then
    not_ok "$sig under load: h2load is running" "$(tail -n 3 "$GW_TMP/$name.h2load")"
  fi
  stop_server "$name" 15 "$sig"
  if [ "$STOP_RC" = 0 ] && [ "$STOP_MS" -le $((GRACE_MS + MARGIN_MS)) ]; then
    ok "$sig under h2load: exit 0 in $STOP_MS ms (grace $GRACE_MS ms)"
  else
    not_ok "$sig under h2load: exit 0 within $((GRACE_MS + MARGIN_MS)) ms" \
      "exit status $STOP_RC after $STOP_MS ms"
    diag "$(tail -n 5 "$SRV_OUT" "$SRV_LOG" 2>/dev/null)"
  fi
  kill "$h2pid" 2>/dev/null
  wait "$h2pid" 2>/dev/null
  served=$(grep -c 'msg="access"' "$SRV_LOG")
  if [ "$served" -ge 1000 ]; then
    ok "$sig: the server was under load ($served requests answered before the signal)"
  else
    not_ok "$sig: the server was under load" "only $served requests answered"
  fi
  if grep -q 'msg="shutting down" signal=SIG'"$sig" "$SRV_LOG" &&
    grep -q 'msg="stopped"' "$SRV_LOG"; then
    ok "$sig: the log says shutting down and stopped"
  else
    not_ok "$sig: the log says shutting down and stopped" "$(tail -n 2 "$SRV_LOG")"
  fi
  check "$sig: store passes PRAGMA integrity_check" integrity "$SRV_STORE"
  if [ ! -s "$SRV_STORE-wal" ]; then
    ok "$sig: store closed cleanly (no WAL left behind)"
  else
    not_ok "$sig: store closed cleanly (no WAL left behind)" \
      "$(stat -c %s "$SRV_STORE-wal") bytes in $SRV_STORE-wal"
  fi
}

under_load_stop TERM
under_load_stop INT

# ---- idle connections do not hold the shutdown ------------------------------------

start_server idle "server.shutdown_grace_ms=10000" || finish
py - "$SRV_PORT" >"$GW_TMP/idle.py.out" 2>&1 <<'PY' &
import sys, time, gwtest
port = int(sys.argv[1])
h1 = gwtest.tls_connect(port, ["http/1.1"])
h1.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
h1.recv(4096)
c = gwtest.H2(port)
sid = c.request("/healthz")
c.response(sid, 5)
print("connected", flush=True)
h1.settimeout(15)
try:
    rest = h1.recv(4096)
except OSError:
    pass
c.pump(15)
print("h2 closed: %s, GOAWAY %s" % (c.closed, c.goaway and gwtest.goaway_code(c.goaway)),
      flush=True)
PY
idlepid=$!
track_pid "$idlepid"
for _ in $(seq 1 100); do
  grep -q connected "$GW_TMP/idle.py.out" && break
  sleep 0.05
done
stop_server idle 15 TERM
if [ "$STOP_RC" = 0 ] && [ "$STOP_MS" -le $((1000 * GW_SLOW)) ]; then
  ok "idle keep-alive connections (http/1.1 and h2) do not hold the shutdown: exit 0 in $STOP_MS ms"
else
  not_ok "idle keep-alive connections do not hold the shutdown" \
    "exit status $STOP_RC after $STOP_MS ms (grace 10000 ms)"
fi
wait "$idlepid" 2>/dev/null
if grep -q 'GOAWAY NO_ERROR' "$GW_TMP/idle.py.out"; then
  ok "idle h2 connection gets GOAWAY NO_ERROR on shutdown"
else
  not_ok "idle h2 connection gets GOAWAY NO_ERROR on shutdown" "$(tail -n 1 "$GW_TMP/idle.py.out")"
fi

# ---- a slow request: bounded by the grace period, listeners closed at once -----------

start_server partial "server.shutdown_grace_ms=$GRACE_MS" || finish
py - "$SRV_PORT" >"$GW_TMP/partial.py.out" 2>&1 <<'PY' &
import sys, time, gwtest
s = gwtest.tls_connect(int(sys.argv[1]), ["http/1.1"])
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
print("connected", flush=True)
got, how, secs = gwtest.read_until_close(s, 15)
print("closed: %s after %.2f s" % (how, secs), flush=True)
PY
partpid=$!
track_pid "$partpid"
for _ in $(seq 1 100); do
  grep -q connected "$GW_TMP/partial.py.out" && break
  sleep 0.05
done
pid=$SRV_PID
t0=$(now_ms)
kill -TERM "$pid"
sleep 0.5
refused() {
  "$GW_PY" - "$SRV_PORT" <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
except ConnectionRefusedError:
    print("refused")
    sys.exit(0)
sys.exit("a new connection was accepted during the grace period")
PY
}
if kill -0 "$pid" 2>/dev/null; then
  check "during the grace period new connections are refused" refused
else
  skip "the server was gone before the grace period could be observed"
fi
stop_server partial 15 TERM
total=$(($(now_ms) - t0))
if [ "$STOP_RC" = 0 ] && [ "$total" -le $((GRACE_MS + MARGIN_MS)) ]; then
  ok "an unfinished request holds the shutdown at most the grace period: exit 0 in $total ms"
else
  not_ok "an unfinished request holds the shutdown at most the grace period" \
    "exit status $STOP_RC after $total ms (grace $GRACE_MS ms)"
fi
wait "$partpid" 2>/dev/null

# ---- kill -9 and restart on the same store ------------------------------------------

start_server crash || finish
store=$SRV_STORE
for _ in $(seq 1 20); do gw_curl -o /dev/null "$SRV_URL/healthz"; done
stop_server crash 5 KILL
if [ "$STOP_RC" = 137 ]; then
  ok "kill -9 ends the server (status 137)"
else
  not_ok "kill -9 ends the server" "exit status $STOP_RC"
fi
# Same name, so the same config, store and log.
start_server crash || finish
if [ "$SRV_STORE" = "$store" ]; then
  code=$(gw_curl -o /dev/null -w '%{http_code}' "$SRV_URL/healthz")
  if [ "$code" = 200 ]; then
    ok "restart on the store of a killed server: /healthz 200"
  else
    not_ok "restart on the store of a killed server: /healthz 200" "got '$code'"
  fi
else
  not_ok "restart on the same store" "store moved from $store to $SRV_STORE"
fi
stop_server_checked crash
check "after kill -9 and a restart: store passes PRAGMA integrity_check" integrity "$store"

finish

# shellcheck shell=bash
# lib.sh — shared helpers of the integration tests (sourced, not run).
#
# Each script sources this file, starts real mpkigw processes on free
# loopback ports with generated configs (h2o's t/Util.pm, redis'
# start_server), talks to them with real clients and prints TAP-like lines
# that tests/run.sh counts:
#
#   ok - NAME
#   not ok - NAME: reason
#   # anything else (diagnostics, "# skip: ...")
#
# Environment: MPKIGW (the binary; tests/run.sh exports it), BUILD,
# KEEP_TMP=1 keeps the temporary directory for a post-mortem.
#
# Helpers:
#   ok NAME / not_ok NAME REASON / skip REASON / diag TEXT
#   check NAME CMD...       ok when CMD exits 0; else not ok with CMD's
#                           last output line as the reason
#   free_port               prints a free loopback TCP port
#   write_config FILE [group.key=VALUE...]
#                           a complete config (VALUE is libconfig text:
#                           '"a string"', 1000, true)
#   start_server NAME [group.key=VALUE...]
#                           starts $MPKIGW, waits for /healthz 200; sets
#                           SRV_NAME SRV_PID SRV_PORT SRV_H2C_PORT SRV_CONF
#                           SRV_LOG SRV_OUT SRV_STORE SRV_URL. The value
#                           "auto" for server.h2c_listen picks a free port.
#   stop_server [NAME] [TIMEOUT_S] [SIGNAL]
#                           signals the server (TERM), waits; sets STOP_RC
#                           (exit status, or "timeout") and STOP_MS
#   server_alive NAME       ok when the current server still answers
#   finish                  prints the tally and exits (1 on any failure)
#   py ARGS...              runs Debian's python3 (with python3-h2) with the
#                           helper module gwtest (written below) importable

set -uo pipefail

# tests/run.sh runs every tests/integration/*.sh; this file only helps.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "# lib.sh holds helpers sourced by the integration tests; nothing to run"
  exit 0
fi

GW_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GW_ROOT=$(cd "$GW_LIB_DIR/../.." && pwd)
: "${BUILD:=build}"
: "${MPKIGW:=$GW_ROOT/$BUILD/mpkigw}"
export MPKIGW

GW_PASSED=0
GW_FAILED=0
GW_TMP=$(mktemp -d /tmp/mpkigw-it.XXXXXX)
GW_CHECKED=" "   # servers whose output was already scanned for sanitizers
GW_HELPERS=()    # background helper processes to end on exit

# ---- TAP-like output ---------------------------------------------------

ok() {
  echo "ok - $1"
  GW_PASSED=$((GW_PASSED + 1))
}

not_ok() {
  local reason=${2:-failed}
  reason=${reason//$'\n'/ }
  echo "not ok - $1: $reason"
  GW_FAILED=$((GW_FAILED + 1))
}

skip() { echo "# skip: $*"; }

diag() {
  local line
  while IFS= read -r line; do
    echo "# $line"
  done <<<"$*"
}

# check NAME CMD...: runs CMD (stdin is passed on, so a heredoc works);
# its output is shown as diagnostics on failure.
check() {
  local name=$1 out rc last
  shift
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    ok "$name"
    return 0
  fi
  last=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)
  not_ok "$name" "${last:-exit status $rc}"
  if [ -n "$out" ]; then
    diag "$(printf '%s\n' "$out" | tail -n 8)"
  fi
  return 1
}

finish() {
  echo "# $GW_PASSED passed, $GW_FAILED failed"
  [ "$GW_FAILED" -eq 0 ] && exit 0
  exit 1
}

# ---- tools -------------------------------------------------------------

# Debian's python3 has python3-h2; a python3 earlier in PATH (pyenv) may not.
GW_PY=
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null 2>&1 &&
    "$p" -c 'import h2, ssl, sqlite3' >/dev/null 2>&1; then
    GW_PY=$(command -v "$p")
    break
  fi
done
if [ -z "$GW_PY" ]; then
  GW_PY=$(command -v python3 || echo /usr/bin/python3)
  echo "# warning: no python3 with the h2 module (apt-get install python3-h2)"
fi

py() { PYTHONPATH="$GW_TMP${PYTHONPATH:+:$PYTHONPATH}" "$GW_PY" "$@"; }

free_port() {
  "$GW_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# Leak checking in sanitizer builds, when LeakSanitizer can run here (it
# cannot under ptrace, for instance).
if [ -x "$MPKIGW" ] && ldd "$MPKIGW" 2>/dev/null | grep -q libasan; then
  GW_SANITIZED=1
  if ASAN_OPTIONS=detect_leaks=1 "$MPKIGW" --version 2>&1 |
    grep -q 'LeakSanitizer has encountered a fatal error'; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
  else
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
  fi
else
  GW_SANITIZED=0
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Sanitized binaries are slower to start and to serve.
if [ "$GW_SANITIZED" = 1 ]; then GW_SLOW=3; else GW_SLOW=1; fi

if [ ! -x "$MPKIGW" ]; then
  echo "not ok - setup: $MPKIGW is not built (make -j2 all)"
  rm -rf "$GW_TMP"
  exit 1
fi

# ---- certificate -------------------------------------------------------

GW_CERT=$GW_TMP/server.crt
GW_KEY=$GW_TMP/server.key
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$GW_KEY" -out "$GW_CERT" -days 2 -subj "/CN=mpkigw test" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" >"$GW_TMP/openssl.out" 2>&1; then
  echo "not ok - setup: cannot create a test certificate: $(tail -n 1 "$GW_TMP/openssl.out")"
  rm -rf "$GW_TMP"
  exit 1
fi
chmod 600 "$GW_KEY"

# ---- configuration -----------------------------------------------------

# Every key, in file order, with the value written when no override is
# given (the reference defaults, except paths and a short grace period).
GW_CONF_KEYS=(
  server.listen server.h2c_listen server.workers server.shutdown_grace_ms
  server.housekeeping_interval_ms
  tls.certificate tls.private_key tls.min_version
  limits.max_connections limits.max_connections_per_ip
  limits.max_concurrent_streams limits.max_header_list_size
  limits.max_header_count limits.max_body_size limits.max_output_buffer
  limits.handshake_timeout_ms limits.header_timeout_ms
  limits.request_timeout_ms limits.idle_timeout_ms
  limits.settings_ack_timeout_ms limits.stream_error_budget
  limits.stream_reset_burst limits.stream_reset_rate
  log.level log.file log.access
  store.backend store.path store.busy_timeout_ms
  operators.numbering_plan operators.portability
)

# write_config FILE [group.key=VALUE...]
write_config() {
  local file=$1 k v g prev="" base
  shift
  base=${file%.conf}
  declare -A val=(
    [server.listen]='"127.0.0.1:8443"'
    [server.h2c_listen]='""'
    [server.workers]=2
    [server.shutdown_grace_ms]=3000
    [server.housekeeping_interval_ms]=1000
    [tls.certificate]="\"$GW_CERT\""
    [tls.private_key]="\"$GW_KEY\""
    [tls.min_version]='"1.2"'
    [limits.max_connections]=10000
    [limits.max_connections_per_ip]=512
    [limits.max_concurrent_streams]=100
    [limits.max_header_list_size]=16384
    [limits.max_header_count]=100
    [limits.max_body_size]=1048576
    [limits.max_output_buffer]=1048576
    [limits.handshake_timeout_ms]=10000
    [limits.header_timeout_ms]=10000
    [limits.request_timeout_ms]=30000
    [limits.idle_timeout_ms]=60000
    [limits.settings_ack_timeout_ms]=10000
    [limits.stream_error_budget]=100
    [limits.stream_reset_burst]=200
    [limits.stream_reset_rate]=10
    [log.level]='"info"'
    [log.file]="\"$base.log\""
    [log.access]=true
    [store.backend]='"sqlite"'
    [store.path]="\"$base.db\""
    [store.busy_timeout_ms]=5000
    [operators.numbering_plan]="\"$GW_ROOT/configs/numbering-plan.conf\""
    [operators.portability]="\"$GW_ROOT/configs/portability.csv\""
  )
  for kv in "$@"; do
    k=${kv%%=*}
    v=${kv#*=}
    if [ -z "${val[$k]+set}" ]; then
      echo "write_config: unknown key $k" >&2
      return 1
    fi
    val[$k]=$v
  done
  {
    echo "# generated by tests/integration/lib.sh"
    for k in "${GW_CONF_KEYS[@]}"; do
      g=${k%%.*}
      if [ "$g" != "$prev" ]; then
        [ -n "$prev" ] && echo "};"
        echo "$g: {"
        prev=$g
      fi
      echo "  ${k#*.} = ${val[$k]};"
    done
    echo "};"
  } >"$file"
}

# ---- servers -----------------------------------------------------------

# curl against the TLS port of the current server.
gw_curl() { curl -sk --max-time $((5 * GW_SLOW)) "$@"; }

# wait_healthy PORT PID OUT: polls /healthz until 200, the process dies or
# the time is up (10 s, more for sanitizer builds).
wait_healthy() {
  local port=$1 pid=$2 deadline code
  deadline=$(($(now_ms) + 10000 * GW_SLOW))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      return 2
    fi
    code=$(curl -sk --max-time 1 -o /dev/null -w '%{http_code}' \
      "https://127.0.0.1:$port/healthz" 2>/dev/null)
    if [ "$code" = 200 ]; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# Reports sanitizer findings in a server's output and log, once per server.
sanitizer_check() {
  local name=$1 f hit
  case $GW_CHECKED in *" $name "*) return 0 ;; esac
  GW_CHECKED="$GW_CHECKED$name "
  for f in "$GW_TMP/$name.out" "$GW_TMP/$name.log"; do
    [ -f "$f" ] || continue
    hit=$(grep -m 1 -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$f")
    if [ -n "$hit" ]; then
      not_ok "sanitizer clean ($name)" "$hit"
      diag "$(grep -E -A 6 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" | grep -v -E '^ *#[0-9]+ .* in (__|_start|start_thread|clone)' | head -n 6)"
      return 1
    fi
  done
  return 0
}

# start_server NAME [group.key=VALUE...]; returns non-zero (after a not ok
# line) when the server does not come up.
start_server() {
  local name=$1 attempt rv h2c=0 args=() kv
  shift
  SRV_ARGS=("$@")
  for kv in "$@"; do
    if [ "$kv" = "server.h2c_listen=auto" ]; then
      h2c=1
    else
      args+=("$kv")
    fi
  done
  for attempt in 1 2 3; do
    SRV_NAME=$name
    SRV_PORT=$(free_port)
    SRV_H2C_PORT=0
    SRV_CONF=$GW_TMP/$name.conf
    SRV_LOG=$GW_TMP/$name.log
    SRV_OUT=$GW_TMP/$name.out
    SRV_STORE=$GW_TMP/$name.db
    SRV_URL=https://127.0.0.1:$SRV_PORT
    local extra=("server.listen=\"127.0.0.1:$SRV_PORT\"")
    if [ "$h2c" = 1 ]; then
      SRV_H2C_PORT=$(free_port)
      extra+=("server.h2c_listen=\"127.0.0.1:$SRV_H2C_PORT\"")
    fi
    write_config "$SRV_CONF" "${extra[@]}" "${args[@]}" || {
      not_ok "start $name" "bad test configuration"
      return 1
    }
    "$MPKIGW" --config "$SRV_CONF" >>"$SRV_OUT" 2>&1 &
    SRV_PID=$!
    echo "$SRV_PID" >"$GW_TMP/$name.pid"
    wait_healthy "$SRV_PORT" "$SRV_PID"
    rv=$?
    if [ "$rv" -eq 0 ]; then
      return 0
    fi
    if [ "$rv" -eq 2 ]; then
      wait "$SRV_PID" 2>/dev/null
      rm -f "$GW_TMP/$name.pid"
      # Lost a race for the port with another process: try another one.
      if grep -q 'Address already in use' "$SRV_OUT" && [ "$attempt" -lt 3 ]; then
        continue
      fi
      not_ok "start $name" "mpkigw exited during start-up: $(tail -n 1 "$SRV_OUT")"
      diag "$(tail -n 5 "$SRV_OUT")"
      sanitizer_check "$name"
      return 1
    fi
    not_ok "start $name" "no 200 from /healthz on port $SRV_PORT within $((10 * GW_SLOW)) s"
    diag "$(tail -n 5 "$SRV_OUT" "$SRV_LOG" 2>/dev/null)"
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    rm -f "$GW_TMP/$name.pid"
    return 1
  done
  return 1
}

# stop_server [NAME] [TIMEOUT_S] [SIGNAL]: sets STOP_RC and STOP_MS.
# Returns 0 when the server exited with status 0 within the time.
stop_server() {
  local name=${1:-$SRV_NAME} timeout=${2:-10} sig=${3:-TERM} pid t0 deadline
  STOP_RC=none
  STOP_MS=0
  [ -f "$GW_TMP/$name.pid" ] || return 1
  pid=$(cat "$GW_TMP/$name.pid")
  t0=$(now_ms)
  deadline=$((t0 + timeout * 1000 * GW_SLOW))
  kill "-$sig" "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.02
  done
  if kill -0 "$pid" 2>/dev/null; then
    STOP_RC=timeout
    STOP_MS=$(($(now_ms) - t0))
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  else
    wait "$pid" 2>/dev/null
    STOP_RC=$?
    STOP_MS=$(($(now_ms) - t0))
  fi
  rm -f "$GW_TMP/$name.pid"
  sanitizer_check "$name"
  [ "$STOP_RC" = 0 ]
}

# stop_server_checked [NAME]: stop_server plus an ok line for a clean exit.
stop_server_checked() {
  local name=${1:-$SRV_NAME}
  if stop_server "$name"; then
    ok "$name: clean shutdown on SIGTERM (exit 0, ${STOP_MS} ms)"
  else
    not_ok "$name: clean shutdown on SIGTERM" "exit status $STOP_RC after ${STOP_MS} ms"
    diag "$(tail -n 5 "$GW_TMP/$name.out" 2>/dev/null)"
  fi
}

# server_alive WHAT: the current server still answers /healthz with 200.
# When it does not, says why (exit status, last line of its output) and
# starts a fresh one with the same settings, so that the tests after it
# still mean something.
server_alive() {
  local code why rc
  code=$(gw_curl -o /dev/null -w '%{http_code}' "$SRV_URL/healthz")
  if [ "$code" = 200 ]; then
    ok "server alive after $1"
    return 0
  fi
  sleep 0.2
  if kill -0 "$SRV_PID" 2>/dev/null; then
    why="GET /healthz gave '$code', the process is still running"
    stop_server "$SRV_NAME" 3
  else
    wait "$SRV_PID" 2>/dev/null
    rc=$?
    rm -f "$GW_TMP/$SRV_NAME.pid"
    if [ "$rc" -gt 128 ]; then
      why="mpkigw died of signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
    else
      why="mpkigw exited with status $rc"
    fi
    rc=$(grep -v '^ts=' "$SRV_OUT" | tail -n 1)
    [ -n "$rc" ] && why="$why; last output: $rc"
    sanitizer_check "$SRV_NAME"
  fi
  not_ok "server alive after $1" "$why"
  GW_RESTARTS=$((${GW_RESTARTS:-0} + 1))
  start_server "${SRV_NAME%-r*}-r$GW_RESTARTS" "${SRV_ARGS[@]}"
  return 1
}

track_pid() { GW_HELPERS+=("$1"); }

gw_cleanup() {
  local rc=$? f pid name
  for pid in "${GW_HELPERS[@]}"; do
    kill -KILL "$pid" 2>/dev/null
  done
  for f in "$GW_TMP"/*.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.03
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    sanitizer_check "$name" || rc=1
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then
    echo "# kept $GW_TMP"
  else
    rm -rf "$GW_TMP"
  fi
  exit "$rc"
}
trap gw_cleanup EXIT
trap 'exit 130' INT TERM

# ---- python helpers ----------------------------------------------------

cat >"$GW_TMP/gwtest.py" <<'PYEOF'
"""Raw-socket helpers for the integration tests (written by lib.sh)."""
import json
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def tls_context(alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tcp_connect(port, timeout=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def tls_connect(port, alpn=None, timeout=5.0):
    sock = tcp_connect(port, timeout)
    try:
        return tls_context(alpn).wrap_socket(sock, server_hostname="127.0.0.1")
    except Exception:
        sock.close()
        raise


def read_until_close(sock, timeout):
    """Reads until EOF, an error or |timeout| seconds. Returns (data, how,
    seconds) where how is "eof", "reset", "timeout" or an error name."""
    data = b""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, "timeout", time.monotonic() - t0
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return data, "timeout", time.monotonic() - t0
        except ConnectionResetError:
            return data, "reset", time.monotonic() - t0
        except ssl.SSLError as e:
            return data, "ssl:" + (e.reason or str(e)), time.monotonic() - t0
        except OSError as e:
            return data, "error:" + str(e), time.monotonic() - t0
        if not b:
            return data, "eof", time.monotonic() - t0
        data += b


def parse_h1(data):
    """Parses one HTTP/1.1 response with a Content-Length body. Returns
    (status, headers dict lower-case, body bytes, rest bytes)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no complete response head in %r" % data[:200])
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    return status, headers, rest[:n], rest[n:]


def json_error(body):
    """The "error" member of a JSON body, or raises."""
    return json.loads(body.decode("utf-8"))["error"]


class H2:
    """A raw HTTP/2 client over TLS with python3-h2."""

    def __init__(self, port, timeout=5.0, ack_settings=True, tls=True):
        self.sock = (tls_connect(port, ["h2"], timeout) if tls
                     else tcp_connect(port, timeout))
        if tls and self.sock.selected_alpn_protocol() != "h2":
            raise RuntimeError("ALPN h2 not negotiated")
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.events = []
        self.closed = None  # "eof", "reset", ...
        self.goaway = None  # the ConnectionTerminated event
        self.ack_settings = ack_settings
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def pump(self, timeout):
        """Reads for up to |timeout| s or until the connection ends; feeds
        h2. Returns the new events."""
        new = []
        deadline = time.monotonic() + timeout
        while self.closed is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except ConnectionResetError:
                self.closed = "reset"
                break
            except (ssl.SSLError, OSError) as e:
                self.closed = "error:%s" % e
                break
            if not b:
                self.closed = "eof"
                break
            new += self.feed(b)
            if new and timeout == 0:
                break
        return new

    def feed(self, b):
        try:
            evs = self.conn.receive_data(b)
        except Exception as e:  # protocol errors on our side
            self.closed = "client-error:%r" % e
            return []
        for ev in evs:
            if isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        self.events += evs
        if self.ack_settings:
            try:
                self.flush()
            except OSError:
                pass
        else:
            # h2 queues a SETTINGS ACK by itself; drop it but send the rest.
            data = self.conn.data_to_send()
            data = strip_settings_ack(data)
            if data:
                try:
                    self.sock.sendall(data)
                except OSError:
                    pass
        return evs

    def request(self, path, method="GET", headers=(), end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https"),
                (":authority", "127.0.0.1"), (":path", path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end)
        self.flush()
        return sid

    def response(self, sid, timeout=5.0):
        """Waits for stream |sid|'s response. Returns (status or None,
        headers dict, body bytes, reset error code or None)."""
        deadline = time.monotonic() + timeout
        while True:
            status, hdrs, body, reset, done = self._collect(sid)
            if done or self.closed is not None:
                return status, hdrs, body, reset
            left = deadline - time.monotonic()
            if left <= 0:
                return status, hdrs, body, reset
            self.pump(min(left, 0.2))

    def _collect(self, sid):
        status, hdrs, body, reset, done = None, {}, b"", None, False
        for ev in self.events:
            if getattr(ev, "stream_id", None) != sid:
                continue
            if isinstance(ev, h2.events.ResponseReceived):
                hdrs = dict(ev.headers)
                status = int(hdrs.get(":status", "0"))
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                self.conn.acknowledge_received_data(
                    ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
            elif isinstance(ev, h2.events.StreamReset):
                reset = ev.error_code
                done = True
        return status, hdrs, body, reset, done

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def strip_settings_ack(data):
    """Removes SETTINGS frames with the ACK flag from raw frame bytes."""
    out = b""
    i = 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        ftype, flags = data[i + 3], data[i + 4]
        frame = data[i:i + 9 + n]
        if not (ftype == 0x4 and flags & 0x1):
            out += frame
        i += 9 + n
    return out + data[i:]


def goaway_code(ev):
    """The error code of a ConnectionTerminated event as a name."""
    try:
        return ev.error_code.name
    except AttributeError:
        return str(ev.error_code)
PYEOF

#!/usr/bin/env bash
# The test runner behind `make check`. Runs every unit-test binary, every
# fuzz-corpus replay and every integration script, counting their
# "ok - name" / "not ok - name" lines; a program that exits non-zero without
# reporting a failure counts as one more failure. Last line:
# "N passed, N failed". Exit status non-zero on any failure.
#
#   BUILD=build bash tests/run.sh [PATTERN]   (PATTERN filters program names)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD MPKIGW="$PWD/$BUILD/mpkigw"
pattern=${1:-}
passed=0
failed=0
failures=()
logdir=$(mktemp -d /tmp/mpkigw-tests.XXXXXX)

run_one() { # name command...
  local name=$1 out rc p f
  shift
  if [ -n "$pattern" ] && [[ $name != *$pattern* ]]; then
    return
  fi
  out="$logdir/$(echo "$name" | tr '/ ' '__').log"
  local t0=$SECONDS
  "$@" >"$out" 2>&1
  rc=$?
  p=$(grep -c '^ok - ' "$out")
  f=$(grep -c '^not ok - ' "$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "not ok - $name exited with status $rc" >>"$out"
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  printf '%-48s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - t0))
  if [ "$f" -ne 0 ]; then
    failures+=("$name")
    grep -E '^(not ok|#)' "$out" | head -40 | sed 's/^/    /'
    echo "    (full output: $out)"
  fi
}

for t in "$BUILD"/tests/unit/*/*_test; do
  [ -x "$t" ] && run_one "unit/${t##*/}" "$t"
done
for r in "$BUILD"/tests/fuzz/*_replay; do
  [ -x "$r" ] || continue
  name=${r##*/}
  corpus=tests/fuzz/corpus/${name%_replay}
  run_one "fuzz/$name" "$r" "$corpus"/*
done
for t in tests/integration/*.sh; do
  case ${t##*/} in lib.sh | stack.sh) continue ;; esac # helpers, not tests
  [ -f "$t" ] && run_one "integration/${t##*/}" bash "$t"
done

if [ "${#failures[@]}" -ne 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

#!/usr/bin/env bash
# Runs a command that must fail: it has to end within MAX_SECONDS, with a non-zero status, printing
# a line that matches every REGEX given. A hang is caught by an outer timeout and reported as such.
#   expect_job_end.sh MAX_SECONDS(integer) REGEX [REGEX ...] -- COMMAND ...
set -u
max=$1; shift
patterns=()
while [[ $1 != -- ]]; do patterns+=("$1"); shift; done
shift
log=$(mktemp)
start=$(date +%s%3N)
timeout -k 5 $((max + 60)) "$@" >"$log" 2>&1
status=$?
ms=$(( $(date +%s%3N) - start ))
elapsed="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
fail() { echo "FAIL: $*"; echo "---- output ----"; cat "$log"; rm -f "$log"; exit 1; }
(( ms >= (max + 60) * 1000 )) && fail "the job hung (killed by the outer timeout after $elapsed s)"
[[ $status -eq 0 ]] && fail "the job exited 0; it should have failed"
for p in "${patterns[@]}"; do grep -Eq "$p" "$log" || fail "no line matches /$p/"; done
(( ms > max * 1000 )) && fail "the job took $elapsed s, more than $max s"
echo "ok: exit status $status after $elapsed s (limit $max s)"
grep -E "${patterns[0]}" "$log" | head -3
rm -f "$log"

#!/usr/bin/env bash
# Note [One read per step] (train/host_reads.h): with VTB_COUNT_HOST_READS=1 `vtb train` counts every step's
# reads of the device, from drawing its batch to logging it: at most one read_to_host and no read ATen makes
# on its own (.item(), nonzero(), ...) in any step, for the plain data-parallel step with two micro-batches,
# for dist.zero = 2, and with the fused AdamW kernel (its own .item() of each step count on CPU is not the
# step's: Note [Fused AdamW]). tests/unit/test_host_reads.cpp shows the counter sees an .item() when there is one.
# usage: host_reads.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
source "$(dirname "$0")/tiny_common.sh" "$@"
export VTB_COUNT_HOST_READS=1
check() {  # DIR: the run's summary line says 12 steps, ≤ 1 explicit read and 0 implicit ones
  local line
  line=$(grep -h "host reads:" "$1.log" | head -1)
  [[ -n $line ]] || fail "$1: no 'host reads:' line"
  echo "$1: ${line#*] }"
  [[ $line =~ host\ reads:\ 12\ steps,\ at\ most\ ([0-9]+)\ read_to_host\ in\ a\ step,\ ([0-9]+)\ implicit ]] ||
    fail "$1: unexpected line: $line"
  ((BASH_REMATCH[1] <= 1)) || fail "$1: ${BASH_REMATCH[1]} reads in a step (expected at most 1)"
  ((BASH_REMATCH[2] == 0)) || fail "$1: ${BASH_REMATCH[2]} implicit reads: $line"
}
tiny 2 plain --train.max_steps=12 --train.micro_batches=2 --ckpt.every_steps=5 || fail "plain run"
check plain
tiny 2 zero2 --train.max_steps=12 --dist.zero=2 --ckpt.every_steps=0 || fail "zero2 run"
check zero2
tiny 2 fused --train.max_steps=12 --train.fused_adamw=on --ckpt.every_steps=0 || fail "fused AdamW run"
check fused
echo "PASS"

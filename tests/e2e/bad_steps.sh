#!/usr/bin/env bash
# A NaN loss on one rank: every rank skips the step (the averaged gradient is NaN everywhere), counts it,
# and after train.max_bad_steps in a row the run stops with a message and a non-zero exit.
# usage: bad_steps.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$vtb" data synth --scale 0.05 >/dev/null || { echo "FAIL: data synth"; exit 1; }
VTB_FAULT_NAN_FROM_STEP=6 timeout 300 mpirun -np 2 --oversubscribe --bind-to none "$vtb" train --config "$src/configs/tiny.ini" \
  --run.dir run --train.max_steps=30 --train.max_bad_steps=3 --ckpt.every_steps=0 >train.log 2>&1
status=$?
[[ $status -ne 0 && $status -ne 124 ]] || { echo "FAIL: exit status $status"; tail -20 train.log; exit 1; }
grep -q "3 steps in a row with a non-finite loss or gradient; stopping" train.log || { echo "FAIL: no stop message"; tail -20 train.log; exit 1; }
/usr/bin/python3 - <<'PY'
import json, sys
rows = [json.loads(l) for l in open("run/metrics.jsonl")]
skipped = [r["step"] for r in rows if r["skipped"]]
print("steps logged:", [r["step"] for r in rows], "skipped:", skipped)
sys.exit(0 if [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 7] and skipped == [6, 7] else 1)
PY

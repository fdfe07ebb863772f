#!/usr/bin/env bash
# On configs/small.ini with 2 ranks, the loss falls on the synthetic corpus (a loose bound: the mean loss
# of steps 51–70 is at least 0.3 nats below that of steps 1–10).
# usage: loss_falls.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$vtb" data synth --scale 0.3 >/dev/null || { echo "FAIL: data synth"; exit 1; }
mpirun -np 2 --oversubscribe --bind-to none "$vtb" train --config "$src/configs/small.ini" --run.dir run \
  --train.max_steps=70 --ckpt.every_steps=0 --log.level=warn >train.log 2>&1 || { echo "FAIL: training"; tail -20 train.log; exit 1; }
/usr/bin/python3 - <<'PY'
import json, sys
loss = [json.loads(l)["loss"] for l in open("run/metrics.jsonl")]
first, last = sum(loss[:10]) / 10, sum(loss[50:70]) / 20
print(f"mean loss: steps 1-10 {first:.3f}, steps 51-70 {last:.3f}")
sys.exit(0 if last < first - 0.3 else 1)
PY

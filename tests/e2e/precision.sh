#!/usr/bin/env bash
# run.precision (train/precision.h) on the tiny config, 1 rank, 200 steps:
#   1. bf16 autocast trains like fp32: the losses differ (the autocast is in effect) but every step's loss is
#      within 2% of fp32's and the curve averaged over windows of 20 steps within 1% (measured on a 2-core AMD
#      EPYC with AVX512-BF16: steps within 0.055%, windows within 0.003%);
#   2. auto prints both matmul rates and picks bf16 exactly when it is at least 2x fp32
#      (Note [Choosing the precision]), and every rank trains with that choice.
# usage: precision.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
source "$(dirname "$0")/tiny_common.sh" "$@"
train() { tiny "$@" --ckpt.every_steps=0; }  # ranks, run_dir, then extra arguments

train 1 fp32 --train.max_steps=200 --run.precision=fp32 || fail "fp32 run"
train 1 bf16 --train.max_steps=200 --run.precision=bf16 || fail "bf16 run"
grep -q "run.precision = bf16" bf16.log || fail "the bf16 run does not say it uses bf16"
out=$(/usr/bin/python3 - <<'PY'
import json, sys
def losses(d): return [j["loss"] for j in map(json.loads, open(f"{d}/metrics.jsonl"))]
a, b = losses("fp32"), losses("bf16")
if len(a) != 200 or len(b) != 200: print(f"{len(a)} and {len(b)} steps logged, expected 200"); sys.exit(1)
if a == b: print("bf16 losses equal fp32's bit for bit: the autocast did nothing"); sys.exit(1)
windows = [(sum(a[i:i + 20]) / 20, sum(b[i:i + 20]) / 20) for i in range(0, 200, 20)]
worst = max(abs(y - x) / x for x, y in windows)
step = max(abs(y - x) / x for x, y in zip(a, b))
print(f"loss fp32 {a[0]:.4f} -> {windows[-1][0]:.4f}, bf16 {b[0]:.4f} -> {windows[-1][1]:.4f} (last 20 steps); "
      f"steps within {step:.3%}, 20-step windows within {worst:.3%}")
sys.exit(0 if step <= 0.02 and worst <= 0.01 else 1)
PY
) || fail "bf16 strays from fp32: $out"
echo "ok: bf16 autocast tracks fp32 over 200 steps: $out"

train 2 auto --train.max_steps=3 --run.precision=auto || fail "auto run"
line=$(grep -o "run.precision = auto: .*" auto.log | head -1)
[[ -n $line ]] || fail "auto printed no choice"
/usr/bin/python3 - "$line" <<'PY' || fail "auto's choice does not follow its figures: $line"
import re, sys
m = re.search(r"([0-9.]+) GFLOP/s in fp32 and ([0-9.]+) in bf16 .* → (bf16|fp32)", sys.argv[1])
fp32, bf16, pick = float(m[1]), float(m[2]), m[3]
sys.exit(0 if (pick == "bf16") == (bf16 >= 2 * fp32) else 1)
PY
echo "ok: ${line}"

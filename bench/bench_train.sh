#!/usr/bin/env bash
# Training throughput on configs/small.ini with 1 and 2 ranks on this machine: steps/s, LLM positions/s,
# answer tokens/s, model TFLOP/s (and MFU with PEAK_TFLOPS per rank), and 2-rank vs 1-rank scaling.
#   bash bench/bench_train.sh [STEPS=40]      (needs data/synth: `vtb data synth`)
# Unbound ranks: 1 rank gets every core as intra-op threads, 2 ranks half each. Per-rank batch limits stay fixed, so 2 ranks process twice the data per step. The first 5 steps are
# warm-up and not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-40}
vtb=build/launch/vtb
[[ -f data/synth/asr_train.jsonl ]] || "$vtb" data synth >/dev/null
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
for np in 1 2; do
  dir=$(mktemp -d)
  mpirun -np "$np" --oversubscribe --bind-to none "$vtb" train --config configs/small.ini --run.dir "$dir" \
    --train.max_steps="$steps" --ckpt.every_steps=0 --log.level=warn --run.peak_tflops="${PEAK_TFLOPS:-0}" >/dev/null 2>&1
  /usr/bin/python3 - "$dir/metrics.jsonl" "$np" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][5:]
t = sum(r["step_s"] for r in rows)
pos = sum(r["positions_per_s"] * r["step_s"] for r in rows) / t
tok = sum(r["tokens"] for r in rows) / t
tf = sum(r["model_tflops"] * r["step_s"] for r in rows) / t
mfu = f", MFU {sum(r['mfu'] * r['step_s'] for r in rows) / t:.1%}" if "mfu" in rows[0] else ""
print(f"{sys.argv[2]} rank(s): {len(rows) / t:.2f} steps/s, {pos:,.0f} positions/s, {tok:,.0f} answer tokens/s, "
      f"{tf * 1000:.1f} model GFLOP/s{mfu}")
open(f"/tmp/vtb_bench_train_{sys.argv[2]}", "w").write(str(pos))
PY
  rm -rf "$dir"
done
/usr/bin/python3 -c "
p1 = float(open('/tmp/vtb_bench_train_1').read()); p2 = float(open('/tmp/vtb_bench_train_2').read())
print(f'2 ranks vs 1 rank on the same {__import__(\"os\").cpu_count()} cores: {p2 / p1:.2f}x the positions/s '
      f'(scaling efficiency {p2 / (2 * p1):.0%} of linear in ranks)')"

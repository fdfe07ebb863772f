#!/usr/bin/env bash
# Layouts of one node's cores on configs/small.ini (README "Threads"): 1 rank × 1 thread, 1 rank × all cores,
# the same in bf16, and all cores as ranks × 1 thread, in alternating rounds; per layout the median step
# time of steps 6–STEPS and the LLM positions/s, each round's figure, and the speed against 1 × 1.
#   bash bench/bench_threads.sh [STEPS=35] [ROUNDS=2]      (needs data/synth: `vtb data synth`)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-35} rounds=${2:-2}
vtb=$PWD/build/launch/vtb
cores=$(nproc)
[[ -f data/synth/asr_train.jsonl ]] || "$vtb" data synth >/dev/null
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layouts=("1x1 1 1 fp32" "1x$cores 1 $cores fp32" "1x$cores-bf16 1 $cores bf16" "${cores}x1 $cores 1 fp32")
for ((round = 1; round <= rounds; ++round)); do
  for layout in "${layouts[@]}"; do
    read -r name np threads precision <<<"$layout"
    mpirun -np "$np" --oversubscribe --bind-to none "$vtb" train --config configs/small.ini --run.dir "$work/$name-$round" \
      --train.max_steps="$steps" --ckpt.every_steps=0 --log.level=warn --run.threads="$threads" \
      --run.precision="$precision" >"$work/$name-$round.log" 2>&1
  done
done
grep -m1 "model name" /proc/cpuinfo | sed 's/.*: /CPU: /'
echo "ISA: $(grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
/usr/bin/python3 - "$work" "$rounds" "${layouts[@]}" <<'PY'
import json, statistics, sys
work, rounds, layouts = sys.argv[1], int(sys.argv[2]), [l.split()[0] for l in sys.argv[3:]]
print("| layout (ranks x threads) | median step s (per round) | LLM positions/s (per round) | vs 1x1 |")
print("|---|---|---|---|")
base = None
for name in layouts:
    steps, pos = [], []
    for r in range(1, rounds + 1):
        rows = [json.loads(l) for l in open(f"{work}/{name}-{r}/metrics.jsonl")][5:]
        steps.append(statistics.median(x["step_s"] for x in rows))
        t = sum(x["step_s"] for x in rows)
        pos.append(sum(x["positions_per_s"] * x["step_s"] for x in rows) / t)
    base = base or statistics.median(pos)
    print(f"| {name} | {' / '.join(f'{s:.3f}' for s in steps)} | {' / '.join(f'{p:,.0f}' for p in pos)} | "
          f"{statistics.median(pos) / base:.2f} |")
PY

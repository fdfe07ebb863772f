#!/usr/bin/env bash
# dist.zero 0, 1 and 2 on configs/small.ini with 2 ranks, runs alternating (0 1 2 0 1 2 ...): the median step
# time after 5 warm-up steps (min–max over the rounds), rank 0's resident memory while it trains (median of
# metrics.jsonl's mem_gib), and each rank's peak resident memory (/usr/bin/time's maximum RSS, which the
# final checkpoint sets: with dist.zero ≥ 1 every rank writes its optimizer shard, with 0 only rank 0).
# `small` is tiny next to the paper's model (its gradients and AdamW moments are a few MiB), so the memory
# difference here is small; `vtb model summary --config configs/paper-3b.ini --ranks N` gives
# the paper's figures.
#   bash bench/bench_zero.sh [STEPS=40] [ROUNDS=2]      (needs data/synth: `vtb data synth`)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-40} rounds=${2:-2}
vtb=$PWD/build/launch/vtb
[[ -f data/synth/asr_train.jsonl ]] || "$vtb" data synth >/dev/null
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((round = 1; round <= rounds; ++round)); do
  for zero in 0 1 2; do
    dir=$work/z$zero-$round
    mpirun -np 2 --oversubscribe --bind-to none \
      sh -c 'exec /usr/bin/time -f "maxrss_kib %M" -o "$0.rank$OMPI_COMM_WORLD_RANK" "$@"' "$dir" "$vtb" train --config configs/small.ini --run.dir "$dir" --train.max_steps="$steps" --ckpt.every_steps=0 \
      --run.threads=1 --log.level=warn --dist.zero=$zero >"$dir.log" 2>&1
  done
done 2>/dev/null || true
/usr/bin/python3 - "$work" "$rounds" <<'PY'
import glob, json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
print("dist.zero | median step s (rounds) | rank 0 RSS while training MiB | peak RSS MiB (rank 0, rank 1)")
for zero in (0, 1, 2):
    steps, training, rss = [], [], {0: [], 1: []}
    for r in range(1, rounds + 1):
        d = f"{work}/z{zero}-{r}"
        rows = [j for j in map(json.loads, open(f"{d}/metrics.jsonl")) if j["step"] > 5]
        steps.append(statistics.median(j["step_s"] for j in rows))
        training.append(statistics.median(j["mem_gib"] for j in rows) * 1024)
        for k in (0, 1):
            rss[k].append(int(open(f"{d}.rank{k}").read().split()[-1]) / 1024)
    print(f"{zero} | {statistics.median(steps):.3f} ({min(steps):.3f}-{max(steps):.3f}) | "
          f"{statistics.median(training):.0f} | {max(rss[0]):.0f}, {max(rss[1]):.0f}")
PY
